"""Who calls a service: services other than the catalog ask the catalog (which holds every
token) and cache the answer briefly."""

from __future__ import annotations

import hashlib
import time

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel

from ..client import AsyncCatalogClient
from ..errors import Unauthorized

__all__ = ["Identity", "TokenAuthenticator", "get_identity"]


class Identity(BaseModel):
    """Who calls a service, as the catalog says."""

    name: str
    is_admin: bool = False
    is_service: bool = False
    projects: list[str] = []

    @property
    def sees_all(self) -> bool:
        return self.is_admin or self.is_service


class TokenAuthenticator:
    def __init__(self, catalog: AsyncCatalogClient, ttl: float = 5.0) -> None:
        self.catalog = catalog
        self.ttl = ttl
        self._cache: dict[str, tuple[float, Identity]] = {}

    async def identify(self, token: str | None) -> Identity:
        if not token:
            raise Unauthorized("send your API token as 'Authorization: Bearer <token>'")
        key = hashlib.sha256(token.encode()).hexdigest()
        hit = self._cache.get(key)
        if hit is not None and hit[0] > time.monotonic():
            return hit[1]
        me = await self.catalog.whoami(token)
        who = Identity(name=me["name"], is_admin=bool(me["is_admin"]),
                       is_service=bool(me["is_service"]), projects=list(me.get("projects", [])))
        self._cache[key] = (time.monotonic() + self.ttl, who)
        return who


_bearer = HTTPBearer(auto_error=False, description="an AWE API token")


async def get_identity(
    request: Request, credentials: HTTPAuthorizationCredentials | None = Depends(_bearer),
) -> Identity:
    """FastAPI dependency: the caller of a service whose context has a TokenAuthenticator
    at ``app.state.context.auth``."""
    auth: TokenAuthenticator = request.app.state.context.auth
    return await auth.identify(credentials.credentials if credentials else None)
