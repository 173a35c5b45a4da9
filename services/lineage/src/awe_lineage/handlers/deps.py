from __future__ import annotations

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from awecore.web import Identity

from ..factory import Factory

_bearer = HTTPBearer(auto_error=False, description="an AWE API token")


def get_factory(request: Request) -> Factory:
    return Factory(request.app.state.context)


async def get_caller(
    credentials: HTTPAuthorizationCredentials | None = Depends(_bearer),
    factory: Factory = Depends(get_factory),
) -> Identity:
    return await factory.context.auth.identify(credentials.credentials if credentials else None)
