"""Request dependencies: the factory (the kit's, generic) and the authenticated caller."""

from __future__ import annotations

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from awecore.server import get_factory, refuse_writes

from ..factory import Factory
from ..models import Caller

__all__ = ["get_caller", "get_factory"]

_bearer = HTTPBearer(auto_error=False, description="an AWE API token")


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
