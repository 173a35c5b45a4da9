"""Process context (pool, clients, one follower per peer) and the factory of services."""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass, field

import asyncpg

from awecore import pg
from awecore.client import AsyncCatalogClient
from awecore.web import TokenAuthenticator

from .config import FederationSettings
from .services.follow import PeerFollower
from .services.status import StatusService

__all__ = ["Factory", "ProcessContext"]

_MIGRATIONS_LOCK = 7_031_201


@dataclass
class ProcessContext:
    settings: FederationSettings
    pool: asyncpg.Pool
    local: AsyncCatalogClient
    auth: TokenAuthenticator
    followers: dict[str, PeerFollower]
    _stop: asyncio.Event = field(default_factory=asyncio.Event)
    _tasks: list[asyncio.Task[None]] = field(default_factory=list)

    @classmethod
    async def create(cls, settings: FederationSettings) -> ProcessContext:
        pool = await pg.create_pool(settings.database_url.get_secret_value())
        async with pool.acquire() as conn:
            await pg.apply_migrations(conn, "awe_federation", _MIGRATIONS_LOCK)
        token = settings.service_token.get_secret_value() if settings.service_token else None
        local = AsyncCatalogClient(settings.catalog_url, token)
        followers = {p.site: PeerFollower(p, settings.site, pool, local, settings.batch,
                                          settings.catch_up_seconds,
                                          settings.session_timeout_ms)
                     for p in settings.peers}
        context = cls(settings, pool, local,
                      TokenAuthenticator(local, settings.auth_cache_seconds), followers)
        if settings.follow:
            context._tasks = [asyncio.create_task(f.run(context._stop))
                              for f in followers.values()]
        return context

    async def aclose(self) -> None:
        self._stop.set()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        for f in self.followers.values():
            await f.aclose()
        await self.local.aclose()
        await self.pool.close()


class Factory:
    def __init__(self, context: ProcessContext) -> None:
        self.context = context

    def status(self) -> StatusService:
        return StatusService(self.context.pool, self.context.local, self.context.followers,
                             self.context.settings.site)
