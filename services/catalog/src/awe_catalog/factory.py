"""Process context (pool, clock, metrics) and the factory that builds services from it.

Wiring is by hand: the app builder's lifespan makes one ProcessContext; handlers ask the
Factory (``awecore.server.get_factory``) for the service they need.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any

import asyncpg
from prometheus_client import Counter

from awecore.clock import HybridClock
from awecore.server import BrokerProbe, Kit, Metrics, ServiceContext, pg

from .config import CatalogSettings
from .services.changes import ChangeService
from .services.classes import ClassService, follow_classes
from .services.objects import ObjectService
from .services.replication import ReplicationService
from .services.sources import SourceService
from .services.tokens import TokenCache, follow_tokens
from .services.users import UserService
from .storage.migrations import apply_migrations

__all__ = ["CatalogMetrics", "Factory", "ProcessContext", "create_pool"]


async def create_pool(settings: CatalogSettings) -> asyncpg.Pool:
    return await pg.create_pool(settings.database(), settings.pool_min_size,
                                settings.pool_max_size)


#: connections for the best-calibration look-ups (see ProcessContext.lookups)
LOOKUP_CONNECTIONS = 4


class CatalogMetrics:
    """The catalog's own metrics, on the app's registry (beside the kit's HTTP metrics)."""

    def __init__(self, metrics: Metrics) -> None:
        self.objects_created: Counter = metrics.counter("objects_created",
                                                        "objects registered", ["type"])


@dataclass
class ProcessContext(ServiceContext):
    settings: CatalogSettings
    pool: asyncpg.Pool
    clock: HybridClock
    metrics: CatalogMetrics
    #: connections that plan a statement once (pg.create_pool's ``generic``), for the
    #: best-calibration look-up: one statement over arrays of requests, whose plan is the
    #: same whatever is asked (one index probe per request); planned anew each call it
    #: cost three times its execution. None: the look-ups use ``pool``.
    lookups: asyncpg.Pool | None = None
    #: who tokens are, remembered while the process hears of every change (tokens.py)
    tokens: TokenCache = field(default_factory=TokenCache)
    #: the broker the relay publishes to, asked by readiness (None: no broker configured)
    broker: BrokerProbe | None = None

    @classmethod
    async def create(cls, settings: CatalogSettings, kit: Kit) -> ProcessContext:
        """Pool, migrations, and the bootstrap admin (made on first start)."""
        pool = await create_pool(settings)
        context = cls(settings=settings, pool=pool, clock=HybridClock(),
                      metrics=CatalogMetrics(kit.metrics))
        try:
            async with pool.acquire() as conn:
                await apply_migrations(conn)
            await ClassService(pool).load()  # users' classes, before the first request
            if settings.admin_token is not None:
                await Factory(context).users().bootstrap_admin(
                    settings.admin_token.get_secret_value())
        except BaseException:
            await pool.close()
            raise
        try:
            context.lookups = await pg.create_pool(
                settings.database(), min(1, settings.pool_min_size),
                min(LOOKUP_CONNECTIONS, settings.pool_max_size), generic=True)
        except BaseException:
            await pool.close()
            raise
        kafka = settings.kafka_or_none("awe-catalog-ready")
        context.broker = BrokerProbe(kafka) if kafka is not None else None
        kit.loops.add("classes", lambda stop: follow_classes(pool, stop))
        kit.loops.add("tokens", lambda stop: follow_tokens(pool, context.tokens, stop))
        return context

    async def checks(self) -> dict[str, str]:
        """The database, and the outbox relay's lag, which fails readiness above
        ``relay_lag_limit`` (a dead relay, or one that cannot reach the broker, leaves every
        change unpublished: lineage, federation and the other followers see nothing new).
        The catalog itself serves without the broker (the relay is its only user there):
        the broker is shown in the details, not required."""
        checks = {"database": await pg.ping(self.pool)}
        limit = self.settings.relay_lag_limit
        if limit:
            lag = await self.relay_lag()
            checks["relay"] = (f"relay: lag unknown ({lag})" if isinstance(lag, str) else
                               "ok" if lag <= limit else
                               f"relay: {lag} changes not published (limit {limit})")
        return checks

    async def details(self) -> dict[str, Any]:
        lag = await self.relay_lag()
        broker = await self.broker.check() if self.broker is not None else "not configured"
        return {"relay_lag": lag if isinstance(lag, int) else None, "broker": broker}

    async def relay_lag(self, seconds: float = 2.0) -> int | str:
        """Changes in the changelog the relay has not published yet (its cursor is in the
        database), or why that cannot be told."""
        try:
            async with asyncio.timeout(seconds), self.pool.acquire() as conn:
                lag = await conn.fetchval(
                    "SELECT (SELECT coalesce(max(seq), 0) FROM changes) - coalesce("
                    "(SELECT last_seq FROM outbox_cursor WHERE name = 'kafka'), 0)")
        except TimeoutError:
            return f"no answer within {seconds:g} s"
        except Exception as exc:  # readiness reports, never raises
            return repr(exc)
        return max(0, int(lag))

    async def aclose(self) -> None:
        if self.broker is not None:
            await self.broker.aclose()
        if self.lookups is not None:
            await self.lookups.close()
        await self.pool.close()


class Factory:
    def __init__(self, context: ProcessContext) -> None:
        self.context = context

    def objects(self) -> ObjectService:
        return ObjectService(self.context.pool, self.context.clock, self.context.settings.site,
                             self.context.lookups)

    def replication(self) -> ReplicationService:
        return ReplicationService(self.context.pool, self.context.clock,
                                  self.context.settings.site)

    def users(self) -> UserService:
        return UserService(self.context.pool, self.context.tokens,
                           self.context.settings.site)

    def sources(self) -> SourceService:
        return SourceService(self.context.pool)

    def classes(self) -> ClassService:
        return ClassService(self.context.pool)

    def changes(self) -> ChangeService:
        return ChangeService(self.context.pool, self.context.settings.site)
