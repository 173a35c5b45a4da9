"""Process context (pools, clock, metrics) and the factory that builds services from it.

Wiring is by hand: the lifespan makes one ProcessContext; handlers ask the Factory for the
service they need.
"""

from __future__ import annotations

from dataclasses import dataclass

import asyncpg
from prometheus_client import CollectorRegistry, Counter, Histogram

from awecore import pg
from awecore.clock import HybridClock

from .config import CatalogSettings
from .services.objects import ObjectService
from .services.replication import ReplicationService
from .services.users import UserService

__all__ = ["Factory", "Metrics", "ProcessContext", "create_pool"]


async def create_pool(settings: CatalogSettings) -> asyncpg.Pool:
    return await pg.create_pool(settings.database_url.get_secret_value(),
                                settings.pool_min_size, settings.pool_max_size)


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

    def replication(self) -> ReplicationService:
        return ReplicationService(self.context.pool, self.context.clock,
                                  self.context.settings.site)

    def users(self) -> UserService:
        return UserService(self.context.pool)
