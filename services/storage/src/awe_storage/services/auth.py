"""Who is calling: the catalog knows every token; answers are cached for a short while."""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass

from awecore.client import AsyncCatalogClient
from awecore.errors import Unauthorized

__all__ = ["Authenticator", "Caller"]


@dataclass(frozen=True)
class Caller:
    name: str
    is_admin: bool
    is_service: bool


class Authenticator:
    def __init__(self, catalog: AsyncCatalogClient, ttl: float) -> None:
        self.catalog = catalog
        self.ttl = ttl
        self._cache: dict[str, tuple[float, Caller]] = {}

    async def caller(self, token: str | None) -> Caller:
        if not token:
            raise Unauthorized("send your API token as 'Authorization: Bearer <token>'")
        key = hashlib.sha256(token.encode()).hexdigest()
        hit = self._cache.get(key)
        if hit is not None and hit[0] > time.monotonic():
            return hit[1]
        me = await self.catalog.whoami(token)
        caller = Caller(me["name"], bool(me["is_admin"]), bool(me["is_service"]))
        self._cache[key] = (time.monotonic() + self.ttl, caller)
        return caller
