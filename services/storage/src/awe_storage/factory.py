"""Process context (backend, catalog client, events) and the factory of services."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from awecore.client import AsyncCatalogClient
from awecore.server import Kit, ServiceContext, TokenAuthenticator

from .backends import Backend, LocalBackend, S3Backend
from .config import StorageSettings
from .metering import MeteredBackend
from .services.access import FileOwners
from .services.events import FileEvents
from .services.files import FileService

__all__ = ["Factory", "ProcessContext"]


@dataclass
class ProcessContext(ServiceContext):
    settings: StorageSettings
    backend: Backend
    catalog: AsyncCatalogClient
    auth: TokenAuthenticator
    events: FileEvents
    owners: FileOwners

    @classmethod
    async def create(cls, settings: StorageSettings, kit: Kit) -> ProcessContext:
        backend: Backend
        if settings.backend == "s3":
            s3 = S3Backend(settings.s3, settings.root / ".tmp")
            await s3.ensure_bucket()
            backend = s3
        else:
            backend = LocalBackend(settings.root)
        catalog = AsyncCatalogClient(settings.catalog_url, settings.token())
        events = FileEvents(settings.site, settings.kafka_or_none("awe-storage"))
        await events.start()
        return cls(settings, MeteredBackend(backend, kit.metrics), catalog,
                   TokenAuthenticator(catalog, settings.auth_cache_seconds), events,
                   FileOwners(catalog, settings.owners_cache_seconds))

    async def details(self) -> dict[str, Any]:
        s = self.settings
        return {"backend": s.backend, "peers": [p.site for p in s.peers],
                "events_not_published": self.events.failures}

    async def aclose(self) -> None:
        await self.events.stop()
        await self.catalog.aclose()
        await self.backend.aclose()


class Factory:
    def __init__(self, context: ProcessContext) -> None:
        self.context = context

    def files(self) -> FileService:
        s = self.context.settings
        scratch = s.root / ".tmp"
        scratch.mkdir(parents=True, exist_ok=True)
        return FileService(self.context.backend, scratch, s.site, s.max_upload_bytes,
                           self.context.catalog, s.peers, self.context.events,
                           self.context.owners)
