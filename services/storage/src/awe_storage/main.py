"""The storage application: ``uvicorn awe_storage.main:create_app --factory``."""

from __future__ import annotations

from fastapi import FastAPI

from awecore.server import service_app

from .config import StorageSettings
from .factory import Factory, ProcessContext
from .handlers import router

__all__ = ["create_app"]


def create_app(settings: StorageSettings | None = None) -> FastAPI:
    settings = settings or StorageSettings()
    return service_app(
        settings, service="storage", title="AWE storage",
        summary="The dataserver: files by unique name, checksummed, write-once.",
        router=router, make_context=lambda kit: ProcessContext.create(settings, kit),
        factory=Factory)
