"""Process context (pool, catalog client, follower) and the factory of services."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import asyncpg

from awecore.client import AsyncCatalogClient
from awecore.events import catalog_changes_topic
from awecore.server import Kit, ServiceContext, TokenAuthenticator, pg

from .config import LineageSettings
from .services.follow import Follower
from .services.lineage import LineageService
from .storage.graph import GraphStore

__all__ = ["Factory", "ProcessContext"]

_MIGRATIONS_LOCK = 7_031_101


@dataclass
class ProcessContext(ServiceContext):
    settings: LineageSettings
    pool: asyncpg.Pool
    catalog: AsyncCatalogClient
    auth: TokenAuthenticator
    follower: Follower

    @classmethod
    async def create(cls, settings: LineageSettings, kit: Kit) -> ProcessContext:
        pool = await pg.create_pool(settings.database(), settings.pool_min_size,
                                    settings.pool_max_size)
        async with pool.acquire() as conn:
            await pg.apply_migrations(conn, "awe_lineage", _MIGRATIONS_LOCK)
        catalog = AsyncCatalogClient(settings.catalog_url, settings.token())
        follower = Follower(pool, catalog, settings.kafka_or_none("awe-lineage"),
                            catalog_changes_topic(settings.site),
                            f"awe-lineage-{settings.site}", settings.catch_up_seconds,
                            kit.metrics)
        if settings.follow:
            follower.add_loops(kit.loops)
        return cls(settings, pool, catalog,
                   TokenAuthenticator(catalog, settings.auth_cache_seconds), follower)

    async def checks(self) -> dict[str, str]:
        return {"database": await pg.ping(self.pool)}

    async def details(self) -> dict[str, Any]:
        """How far the graph has followed the catalog."""
        async with self.pool.acquire() as conn:
            applied = await GraphStore(conn).last_applied()
        return {"applied_sequence": applied, "events_applied": self.follower.applied,
                "duplicates_ignored": self.follower.duplicates}

    async def aclose(self) -> None:
        await self.catalog.aclose()
        await self.pool.close()


class Factory:
    def __init__(self, context: ProcessContext) -> None:
        self.context = context

    def lineage(self) -> LineageService:
        return LineageService(self.context.pool, self.context.settings.site)
