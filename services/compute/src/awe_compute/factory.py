"""Process context of the compute API: pool, queue, the reaper, and the job service."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

import asyncpg
import structlog
from aiokafka.errors import KafkaError

from awecore.client import AsyncCatalogClient
from awecore.errors import AweError
from awecore.server import Kit, Metrics, ServiceContext, TokenAuthenticator, every, pg

from . import plugins
from .config import ComputeSettings
from .services.credentials import Delegation
from .services.jobs import JobService
from .services.queue import JobQueue
from .storage.jobs import JobStore

__all__ = ["Factory", "ProcessContext"]

log = structlog.get_logger("awe.compute")
_MIGRATIONS_LOCK = 7_031_301


@dataclass
class ProcessContext(ServiceContext):
    settings: ComputeSettings
    pool: asyncpg.Pool
    queue: JobQueue
    catalog: AsyncCatalogClient
    auth: TokenAuthenticator

    @classmethod
    async def create(cls, settings: ComputeSettings, kit: Kit) -> ProcessContext:
        products = plugins.load()  # users' products: the planner plans them like awecore's
        pool = await pg.create_pool(settings.database(), settings.pool_min_size,
                                    settings.pool_max_size)
        async with pool.acquire() as conn:
            await pg.apply_migrations(conn, "awe_compute", _MIGRATIONS_LOCK)
        queue = JobQueue(settings.site, settings.kafka("awe-compute"), settings.job_partitions)
        await queue.start()
        catalog = AsyncCatalogClient(settings.catalog_url, settings.token())
        context = cls(settings, pool, queue, catalog,
                      TokenAuthenticator(catalog, settings.auth_cache_seconds))
        kit.loops.add("reaper", context._reap)
        kit.loops.add("product classes",
                      lambda stop: plugins.register_classes(catalog, products, stop))
        context._measure(kit.metrics)
        return context

    async def _reap(self, stop: asyncio.Event) -> None:
        """Requeue the jobs of lost workers, and announce ready jobs again, every while
        (broker trouble included: the next turn announces them again)."""
        async def report(exc: BaseException) -> None:
            log.warning("reaper trouble", error=repr(exc))

        await every(stop, self.settings.reap_seconds, Factory(self).jobs().reap,
                    (AweError, OSError, *pg.DATABASE_GONE, KafkaError), report)

    def _measure(self, metrics: Metrics) -> None:
        """The queue's depth by status, read from the jobs table when scraped."""
        depth = metrics.gauge("jobs", "jobs by status (the queue's depth: ready and waiting)",
                              ["status"])

        async def scrape() -> None:
            async with self.pool.acquire() as conn:
                counts = await JobStore(conn).counts()
            for status in ("waiting", "ready", "running", "done", "failed", "cancelled"):
                depth.labels(status).set(counts.get(status, 0))

        metrics.on_scrape(scrape)

    async def checks(self) -> dict[str, str]:
        return {"database": await pg.ping(self.pool), "broker": await self.queue.check()}

    async def details(self) -> dict[str, Any]:
        async with self.pool.acquire() as conn:
            return {"jobs": await JobStore(conn).counts()}

    async def aclose(self) -> None:
        await self.queue.stop()
        await self.catalog.aclose()
        await self.pool.close()


class Factory:
    def __init__(self, context: ProcessContext) -> None:
        self.context = context

    def jobs(self) -> JobService:
        settings = self.context.settings
        return JobService(self.context.pool, self.context.queue, settings.catalog_url,
                          settings.calibration_rules, Delegation.of(settings), settings.site)
