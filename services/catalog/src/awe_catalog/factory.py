"""Process context (pools, clock, metrics) and the factory that builds services from it.

Wiring is by hand: the lifespan makes one ProcessContext; handlers ask the Factory for the
service they need.
"""

from __future__ import annotations

from dataclasses import dataclass

import asyncpg
import orjson
from prometheus_client import CollectorRegistry, Counter, Histogram

from awecore.clock import HybridClock

from .config import CatalogSettings
from .services.objects import ObjectService
from .services.users import UserService

__all__ = ["Factory", "Metrics", "ProcessContext", "create_pool"]


def _jsonb_encode(value: object) -> bytes:
    return b"\x01" + orjson.dumps(value)


def _jsonb_decode(data: bytes) -> object:
    return orjson.loads(data[1:])


async def _init_connection(conn: asyncpg.Connection) -> None:
    # binary, so that COPY (the bulk path) can carry JSON values too
    await conn.set_type_codec("jsonb", encoder=_jsonb_encode, decoder=_jsonb_decode,
                              schema="pg_catalog", format="binary")


async def create_pool(settings: CatalogSettings) -> asyncpg.Pool:
    pool = await asyncpg.create_pool(
        settings.database_url.get_secret_value(), min_size=settings.pool_min_size,
        max_size=settings.pool_max_size, init=_init_connection,
        # asyncpg prepares every statement; a generic plan ignores which chip or filter is
        # asked for and picks poor joins, so always plan with the actual values
        server_settings={"plan_cache_mode": "force_custom_plan"})
    assert pool is not None
    return pool


class Metrics:
    """Prometheus metrics, on a registry of the app's own (several apps may share a process)."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter("awe_catalog_requests", "HTTP requests",
                                ["method", "route", "status"], registry=self.registry)
        self.latency = Histogram("awe_catalog_request_seconds", "HTTP request latency",
                                 ["method", "route"], registry=self.registry)
        self.objects_created = Counter("awe_catalog_objects_created", "objects registered",
                                       ["type"], registry=self.registry)


@dataclass
class ProcessContext:
    settings: CatalogSettings
    pool: asyncpg.Pool
    clock: HybridClock
    metrics: Metrics

    @classmethod
    async def create(cls, settings: CatalogSettings) -> ProcessContext:
        return cls(settings=settings, pool=await create_pool(settings), clock=HybridClock(),
                   metrics=Metrics())

    async def aclose(self) -> None:
        await self.pool.close()


class Factory:
    def __init__(self, context: ProcessContext) -> None:
        self.context = context

    def objects(self) -> ObjectService:
        return ObjectService(self.context.pool, self.context.clock, self.context.settings.site)

    def users(self) -> UserService:
        return UserService(self.context.pool)
