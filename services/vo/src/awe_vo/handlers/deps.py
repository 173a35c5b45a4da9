"""Request dependencies of the VO handlers: the factory, the caller, the parameters.

VO clients are mostly anonymous: no bearer token means the anonymous viewer (who sees only
what is public), a token means that user (``awecore.visibility``'s rule, like every other
service); a bad token is a 401 DALI error, never a silent downgrade to anonymous."""

from __future__ import annotations

from dataclasses import dataclass

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from awecore.errors import AweError
from awecore.server import TokenAuthenticator, get_factory
from awecore.visibility import Viewer

from ..factory import Factory
from ..votable import VOParams, aweerror_as_vo, vo_params

__all__ = ["Caller", "Factory", "VOParams", "get_caller", "get_factory", "get_params"]

_bearer = HTTPBearer(auto_error=False, description="an AWE API token (optional)")


@dataclass(frozen=True)
class Caller:
    """Who asks: the viewer for the privilege rule, and the token to forward to storage."""

    viewer: Viewer
    token: str | None = None
    name: str | None = None


async def get_caller(
    request: Request, credentials: HTTPAuthorizationCredentials | None = Depends(_bearer),
) -> Caller:
    if credentials is None or not credentials.credentials:
        return Caller(Viewer.anonymous())
    auth: TokenAuthenticator = request.app.state.context.auth
    try:
        who = await auth.identify(credentials.credentials)
    except AweError as exc:
        raise aweerror_as_vo(exc) from None
    return Caller(Viewer.of(who), credentials.credentials, who.name)


async def get_params(request: Request) -> VOParams:
    return await vo_params(request)
