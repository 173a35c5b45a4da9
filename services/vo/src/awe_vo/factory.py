"""Process context (read-only pool on the catalog's database, catalog and storage
clients, the async job list) and the factory of what a request needs."""

from __future__ import annotations

import asyncio
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from typing import Any

import asyncpg
import httpx
from fastapi import Request

from awecore.client import AsyncCatalogClient
from awecore.server import Kit, ServiceContext, TokenAuthenticator, pg

from .config import VOSettings
from .services.adql import warm_up
from .services.uws import JobList
from .storage import read_only
from .votable import VOError

__all__ = ["Factory", "ProcessContext"]


@dataclass
class ProcessContext(ServiceContext):
    settings: VOSettings
    pool: asyncpg.Pool
    catalog: AsyncCatalogClient
    auth: TokenAuthenticator
    storage: httpx.AsyncClient
    jobs: JobList

    @classmethod
    async def create(cls, settings: VOSettings, kit: Kit) -> ProcessContext:
        # no migrations: this is the catalog's database, and the VO service only reads it
        await asyncio.to_thread(warm_up)  # the ADQL parser's caches, seconds when cold
        pool = await pg.create_pool(settings.database(), settings.pool_min_size,
                                    settings.pool_max_size)
        catalog = AsyncCatalogClient(settings.catalog_url, settings.token())
        storage = httpx.AsyncClient(base_url=settings.storage_url, timeout=120)
        return cls(settings, pool, catalog,
                   TokenAuthenticator(catalog, settings.auth_cache_seconds), storage,
                   JobList(settings.max_jobs, settings.job_seconds))

    async def checks(self) -> dict[str, str]:
        return {"database": await pg.ping(self.pool)}

    async def details(self) -> dict[str, Any]:
        return {"async_jobs": len(self.jobs)}

    async def aclose(self) -> None:
        await self.jobs.aclose()
        await self.storage.aclose()
        await self.catalog.aclose()
        await self.pool.close()


class Factory:
    """What handlers get from ``get_factory``: read-only sessions, settings, clients."""

    def __init__(self, context: ProcessContext) -> None:
        self.context = context
        self.settings = context.settings

    def read_only(self) -> AbstractAsyncContextManager[asyncpg.Connection]:
        """``async with factory.read_only() as conn``: a connection in a READ ONLY
        transaction with the statement timeout set."""
        return read_only(self.context.pool, self.settings.statement_timeout_ms)

    def base_url(self, request: Request) -> str:
        """This service's URL as clients reach it (for access URLs and capabilities)."""
        return (self.settings.public_url or str(request.base_url)).rstrip("/")

    async def fetch_file(self, name: str, token: str | None) -> bytes:
        """A stored file's bytes from storage, read as the caller (their token forwarded;
        none for an anonymous caller), so storage applies the same privilege rule. Raises
        ``VOError`` 404 when storage refuses or has no such file."""
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        r = await self.context.storage.get(f"/files/{name}", headers=headers)
        if r.status_code in (401, 403, 404):
            raise VOError(f"no file {name!r} readable by you", status=404)
        if r.status_code != 200:
            raise VOError(f"storage answered {r.status_code} for {name!r}", status=503)
        return r.content
