"""Process context (backend, catalog client, events) and the factory of services."""

from __future__ import annotations

from dataclasses import dataclass

from awecore.bus import KafkaSettings
from awecore.client import AsyncCatalogClient
from awecore.web import TokenAuthenticator

from .backends import Backend, LocalBackend, S3Backend
from .config import StorageSettings
from .services.events import FileEvents
from .services.files import FileService

__all__ = ["Factory", "ProcessContext"]


@dataclass
class ProcessContext:
    settings: StorageSettings
    backend: Backend
    catalog: AsyncCatalogClient
    auth: TokenAuthenticator
    events: FileEvents

    @classmethod
    async def create(cls, settings: StorageSettings) -> ProcessContext:
        backend: Backend
        if settings.backend == "s3":
            s3 = S3Backend(settings.s3, settings.root / ".tmp")
            await s3.ensure_bucket()
            backend = s3
        else:
            backend = LocalBackend(settings.root)
        token = settings.service_token.get_secret_value() if settings.service_token else None
        catalog = AsyncCatalogClient(settings.catalog_url, token)
        kafka = (KafkaSettings(bootstrap_servers=settings.kafka_bootstrap_servers,
                               client_id="awe-storage")
                 if settings.kafka_bootstrap_servers else None)
        events = FileEvents(settings.site, kafka)
        await events.start()
        return cls(settings, backend, catalog,
                   TokenAuthenticator(catalog, settings.auth_cache_seconds),
                   events)

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
                           self.context.catalog, s.peers, self.context.events)
