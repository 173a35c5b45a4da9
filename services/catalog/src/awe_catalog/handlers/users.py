from __future__ import annotations

from fastapi import APIRouter, Depends, Query

from ..factory import Factory
from ..models import (
    Caller,
    MemberIn,
    ProjectIn,
    ProjectOut,
    TokenIn,
    TokenInfo,
    TokenOut,
    UserIn,
    UserOut,
)
from .deps import get_caller, get_factory

router = APIRouter(tags=["users"])


@router.get("/whoami", response_model=UserOut, summary="The user the token belongs to")
async def whoami(caller: Caller = Depends(get_caller),
                 factory: Factory = Depends(get_factory)) -> UserOut:
    """With the token's scope and expiry: the other services enforce the scope too."""
    user = await factory.users().get_user(caller.name, caller)
    return user.model_copy(update={"scope": caller.scope, "expires": caller.expires})


@router.post("/users", response_model=UserOut, status_code=201, summary="Add a user (admin)")
async def add_user(body: UserIn, caller: Caller = Depends(get_caller),
                   factory: Factory = Depends(get_factory)) -> UserOut:
    return await factory.users().add_user(body, caller)


@router.get("/users/{name}", response_model=UserOut, summary="A user (self or admin)")
async def get_user(name: str, caller: Caller = Depends(get_caller),
                   factory: Factory = Depends(get_factory)) -> UserOut:
    return await factory.users().get_user(name, caller)


@router.post("/projects", response_model=ProjectOut, status_code=201,
             summary="Add a project (admin)")
async def add_project(body: ProjectIn, caller: Caller = Depends(get_caller),
                      factory: Factory = Depends(get_factory)) -> ProjectOut:
    return await factory.users().add_project(body, caller)


@router.post("/projects/{name}/members", response_model=ProjectOut,
             summary="Add a user to a project (admin)")
async def add_member(name: str, body: MemberIn, caller: Caller = Depends(get_caller),
                     factory: Factory = Depends(get_factory)) -> ProjectOut:
    return await factory.users().add_member(name, body.user, caller, body.role)


@router.post("/tokens", response_model=TokenOut, status_code=201,
             summary="Create an API token (yours; admins may create one for any user)")
async def create_token(body: TokenIn, caller: Caller = Depends(get_caller),
                       factory: Factory = Depends(get_factory)) -> TokenOut:
    return await factory.users().create_token(body, caller)


@router.get("/tokens", response_model=list[TokenInfo],
            summary="Your API tokens (admins: a user's, or everyone's with user=*)")
async def list_tokens(user: str | None = Query(default=None, max_length=64,
                                               description="whose (admin); * for everyone"),
                      caller: Caller = Depends(get_caller),
                      factory: Factory = Depends(get_factory)) -> list[TokenInfo]:
    """Ids, labels, when made and last used: never the secret, nor its hash."""
    return await factory.users().tokens(user, caller)


@router.post("/tokens/{token_id}/revoke", response_model=TokenInfo,
             summary="Revoke a token (yours; admins: anyone's) by its id or a unique start")
async def revoke_token(token_id: str, caller: Caller = Depends(get_caller),
                       factory: Factory = Depends(get_factory)) -> TokenInfo:
    """The token is refused (401) from the next request on."""
    return await factory.users().revoke_token(token_id, caller)
