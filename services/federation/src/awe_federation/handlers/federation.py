from __future__ import annotations

from fastapi import APIRouter, Depends

from awecore.errors import Forbidden
from awecore.server import Identity, get_factory, get_identity
from awecore.visibility import Viewer, may_operate

from ..factory import Factory
from ..services.status import SiteStatus

router = APIRouter()


get_caller = get_identity


@router.get("/federation/status", response_model=SiteStatus, tags=["federation"],
            summary="Per peer: applied sequence, lag in changes and seconds, errors; digest")
async def status(caller: Identity = Depends(get_caller),
                 factory: Factory = Depends(get_factory)) -> SiteStatus:
    return await factory.status().status()


@router.post("/federation/catch-up", tags=["federation"],
             summary="Read every peer's changelog now (after a partition, say); admins and "
                     "service accounts only",
             responses={403: {"description": "the caller is not an admin"}})
async def catch_up(caller: Identity = Depends(get_caller),
                   factory: Factory = Depends(get_factory)) -> dict[str, int]:
    """An operation on the site (it reads every peer's whole changelog): not for users,
    who could otherwise make the site read its peers at will."""
    if not may_operate(Viewer.of(caller)):
        raise Forbidden("only an admin or a service account may make the site catch up "
                        "with its peers")
    return {site: await f.catch_up() for site, f in factory.context.followers.items()}
