"""Process context (pool, clients, one follower per peer) and the factory of services."""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import Any

import asyncpg
from prometheus_client import Gauge

from awecore.client import AsyncCatalogClient
from awecore.errors import AweError
from awecore.server import Kit, Metrics, ServiceContext, TokenAuthenticator, pg

from .config import FederationSettings
from .services.follow import PeerFollower
from .services.status import StatusService

__all__ = ["Factory", "ProcessContext"]

_MIGRATIONS_LOCK = 7_031_201


@dataclass
class ProcessContext(ServiceContext):
    settings: FederationSettings
    pool: asyncpg.Pool
    local: AsyncCatalogClient
    auth: TokenAuthenticator
    followers: dict[str, PeerFollower]

    @classmethod
    async def create(cls, settings: FederationSettings, kit: Kit) -> ProcessContext:
        pool = await pg.create_pool(settings.database(), settings.pool_min_size,
                                    settings.pool_max_size)
        async with pool.acquire() as conn:
            await pg.apply_migrations(conn, "awe_federation", _MIGRATIONS_LOCK)
        local = AsyncCatalogClient(settings.catalog_url, settings.token())
        followers = {p.site: PeerFollower(p, settings.site, pool, local, settings.batch,
                                          settings.catch_up_seconds,
                                          settings.session_timeout_ms, kit.metrics)
                     for p in settings.peers}
        context = cls(settings, pool, local,
                      TokenAuthenticator(local, settings.auth_cache_seconds), followers)
        context._measure(kit.metrics)
        if settings.follow:
            for follower in followers.values():
                follower.add_loops(kit.loops)
        return context

    def _measure(self, metrics: Metrics) -> None:
        """Per peer, read when scraped: the sequence applied here, changes applied since
        start, and the lag (the peer's newest sequence less the one applied)."""
        applied = metrics.gauge("applied_sequence", "peer sequence applied here", ["peer"])
        events: Gauge = metrics.gauge("events_applied", "peer changes applied since start",
                                      ["peer"])

        async def scrape() -> None:
            for site, follower in self.followers.items():
                applied.labels(site).set(await follower.cursor())
                events.labels(site).set(follower.applied)

        async def lags() -> None:
            for follower in self.followers.values():
                with contextlib.suppress(AweError, OSError):  # that peer's lag stays as was
                    await follower.measure_lag()

        metrics.on_scrape(scrape)
        metrics.on_scrape(lags)

    async def checks(self) -> dict[str, str]:
        return {"database": await pg.ping(self.pool)}

    async def details(self) -> dict[str, Any]:
        return {"peers": [p.site for p in self.settings.peers]}

    async def aclose(self) -> None:
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
