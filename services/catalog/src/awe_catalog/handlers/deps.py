"""Request dependencies: the factory (the kit's, generic) and the authenticated caller.

``get_caller`` needs a token; ``get_reader`` is for the routes that serve public data
(privilege 5: objects, queries, best calibrations, sources), where a read without an
Authorization header is the anonymous caller (``awecore.server.get_reader``)."""

from __future__ import annotations

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from awecore.server import get_factory, is_anonymous_read, refuse_writes

from ..factory import Factory
from ..models import Caller

__all__ = ["ANONYMOUS", "get_caller", "get_factory", "get_reader"]

_bearer = HTTPBearer(auto_error=False, description="an AWE API token")

#: the caller of a public read: no name (the anonymous viewer), no project, read only
ANONYMOUS = Caller(name="", scope="read", default_project="")


async def get_caller(
    request: Request,
    credentials: HTTPAuthorizationCredentials | None = Depends(_bearer),
    factory: Factory = Depends(get_factory),
) -> Caller:
    """The caller; a read-only token is refused (403) on a write (``refuse_writes``)."""
    caller = await factory.users().authenticate(
        credentials.credentials if credentials else None)
    refuse_writes(caller, request)
    return caller


async def get_reader(
    request: Request,
    credentials: HTTPAuthorizationCredentials | None = Depends(_bearer),
    factory: Factory = Depends(get_factory),
) -> Caller:
    """``get_caller``, except that a read without an Authorization header is ``ANONYMOUS``
    (a wrong token is still 401)."""
    if is_anonymous_read(request):
        return ANONYMOUS
    return await get_caller(request, credentials, factory)
