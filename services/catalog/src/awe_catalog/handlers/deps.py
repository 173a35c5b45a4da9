"""Request dependencies: the factory and the authenticated caller."""

from __future__ import annotations

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from ..factory import Factory
from ..models import Caller

__all__ = ["get_caller", "get_factory"]

_bearer = HTTPBearer(auto_error=False, description="an AWE API token")


def get_factory(request: Request) -> Factory:
    return Factory(request.app.state.context)


async def get_caller(
    credentials: HTTPAuthorizationCredentials | None = Depends(_bearer),
    factory: Factory = Depends(get_factory),
) -> Caller:
    return await factory.users().authenticate(credentials.credentials if credentials else None)
