"""The compute job API: ``uvicorn awe_compute.main:create_app --factory``."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import structlog
from fastapi import FastAPI

from awecore.logs import configure_logging
from awecore.web import install_error_handlers

from .config import ComputeSettings
from .factory import ProcessContext
from .handlers import router

__all__ = ["create_app"]

log = structlog.get_logger("awe.compute")


def create_app(settings: ComputeSettings | None = None) -> FastAPI:
    settings = settings or ComputeSettings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        configure_logging("compute", settings.log_level)
        context = await ProcessContext.create(settings)
        app.state.context = context
        log.info("compute ready", site=settings.site)
        try:
            yield
        finally:
            await context.aclose()

    app = FastAPI(title="AWE compute", version="0.1.0", lifespan=lifespan,
                  summary="Targets planned into jobs; workers make them.")
    app.include_router(router)
    install_error_handlers(app)
    return app
