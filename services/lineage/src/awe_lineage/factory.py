"""Process context (pool, catalog client, follower) and the factory of services."""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass, field

import asyncpg

from awecore import pg
from awecore.bus import KafkaSettings
from awecore.client import AsyncCatalogClient
from awecore.events import catalog_changes_topic
from awecore.web import TokenAuthenticator

from .config import LineageSettings
from .services.follow import Follower
from .services.lineage import LineageService

__all__ = ["Factory", "ProcessContext"]

_MIGRATIONS_LOCK = 7_031_101


@dataclass
class ProcessContext:
    settings: LineageSettings
    pool: asyncpg.Pool
    catalog: AsyncCatalogClient
    auth: TokenAuthenticator
    follower: Follower
    _stop: asyncio.Event = field(default_factory=asyncio.Event)
    _task: asyncio.Task[None] | None = None

    @classmethod
    async def create(cls, settings: LineageSettings) -> ProcessContext:
        pool = await pg.create_pool(settings.database_url.get_secret_value())
        async with pool.acquire() as conn:
            await pg.apply_migrations(conn, "awe_lineage", _MIGRATIONS_LOCK)
        token = settings.service_token.get_secret_value() if settings.service_token else None
        catalog = AsyncCatalogClient(settings.catalog_url, token)
        kafka = (KafkaSettings(bootstrap_servers=settings.kafka_bootstrap_servers,
                               client_id="awe-lineage",
                               session_timeout_ms=settings.session_timeout_ms)
                 if settings.kafka_bootstrap_servers else None)
        follower = Follower(pool, catalog, kafka, catalog_changes_topic(settings.site),
                            f"awe-lineage-{settings.site}", settings.catch_up_seconds)
        context = cls(settings, pool, catalog,
                      TokenAuthenticator(catalog, settings.auth_cache_seconds), follower)
        if settings.follow:
            context._task = asyncio.create_task(follower.run(context._stop))
        return context

    async def aclose(self) -> None:
        self._stop.set()
        if self._task is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        await self.catalog.aclose()
        await self.pool.close()


class Factory:
    def __init__(self, context: ProcessContext) -> None:
        self.context = context

    def lineage(self) -> LineageService:
        return LineageService(self.context.pool, self.context.settings.site)
