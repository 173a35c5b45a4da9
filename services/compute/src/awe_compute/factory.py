"""Process context of the compute API: pool, queue, the reaper, and the job service."""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass, field

import asyncpg
import structlog

from awecore import pg
from awecore.bus import KafkaSettings, every
from awecore.client import AsyncCatalogClient
from awecore.errors import AweError
from awecore.web import TokenAuthenticator

from .config import ComputeSettings
from .services.jobs import JobService
from .services.queue import JobQueue

__all__ = ["Factory", "ProcessContext"]

log = structlog.get_logger("awe.compute")
_MIGRATIONS_LOCK = 7_031_301


@dataclass
class ProcessContext:
    settings: ComputeSettings
    pool: asyncpg.Pool
    queue: JobQueue
    catalog: AsyncCatalogClient
    auth: TokenAuthenticator
    _stop: asyncio.Event = field(default_factory=asyncio.Event)
    _reaper: asyncio.Task[None] | None = None

    @classmethod
    async def create(cls, settings: ComputeSettings) -> ProcessContext:
        pool = await pg.create_pool(settings.database_url.get_secret_value())
        async with pool.acquire() as conn:
            await pg.apply_migrations(conn, "awe_compute", _MIGRATIONS_LOCK)
        queue = JobQueue(settings.site, KafkaSettings(
            bootstrap_servers=settings.kafka_bootstrap_servers, client_id="awe-compute"),
            settings.job_partitions)
        await queue.start()
        catalog = AsyncCatalogClient(settings.catalog_url, settings.token())
        context = cls(settings, pool, queue, catalog,
                      TokenAuthenticator(catalog, settings.auth_cache_seconds))

        async def report(exc: BaseException) -> None:
            log.warning("reaper trouble", error=repr(exc))

        jobs = Factory(context).jobs()
        context._reaper = asyncio.create_task(every(
            context._stop, settings.reap_seconds, jobs.reap,
            (AweError, OSError, asyncpg.PostgresError), report))
        return context

    async def aclose(self) -> None:
        self._stop.set()
        if self._reaper is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await self._reaper
        await self.queue.stop()
        await self.catalog.aclose()
        await self.pool.close()


class Factory:
    def __init__(self, context: ProcessContext) -> None:
        self.context = context

    def jobs(self) -> JobService:
        s = self.context.settings
        return JobService(self.context.pool, self.context.queue, s.catalog_url, s.token())
