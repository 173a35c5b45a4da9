"""The storage application: ``uvicorn awe_storage.main:create_app --factory``."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import structlog
from fastapi import FastAPI, Request
from prometheus_client import CollectorRegistry, Counter

from awecore.logs import configure_logging
from awecore.web import install_error_handlers

from .config import StorageSettings
from .factory import ProcessContext
from .handlers import router

__all__ = ["create_app"]

log = structlog.get_logger("awe.storage")


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter("awe_storage_requests", "HTTP requests",
                                ["method", "status"], registry=self.registry)


def create_app(settings: StorageSettings | None = None) -> FastAPI:
    settings = settings or StorageSettings()
    metrics = Metrics()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        configure_logging("storage", settings.log_level)
        context = await ProcessContext.create(settings)
        app.state.context = context
        app.state.metrics = metrics
        log.info("storage ready", site=settings.site, backend=settings.backend)
        try:
            yield
        finally:
            await context.aclose()

    app = FastAPI(title="AWE storage", version="0.1.0", lifespan=lifespan,
                  summary="The dataserver: files by unique name, checksummed, write-once.")
    app.include_router(router)

    @app.middleware("http")
    async def count(request: Request, call_next: Any) -> Any:
        response = await call_next(request)
        metrics.requests.labels(request.method, str(response.status_code)).inc()
        return response

    install_error_handlers(app)
    return app
