"""The lineage application: ``uvicorn awe_lineage.main:create_app --factory``."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import structlog
from fastapi import FastAPI

from awecore.logs import configure_logging
from awecore.web import install_error_handlers

from .config import LineageSettings
from .factory import ProcessContext
from .handlers import router

__all__ = ["create_app"]

log = structlog.get_logger("awe.lineage")


def create_app(settings: LineageSettings | None = None) -> FastAPI:
    settings = settings or LineageSettings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        configure_logging("lineage", settings.log_level)
        context = await ProcessContext.create(settings)
        app.state.context = context
        log.info("lineage ready", site=settings.site, follow=settings.follow)
        try:
            yield
        finally:
            await context.aclose()

    app = FastAPI(title="AWE lineage", version="0.1.0", lifespan=lifespan,
                  summary="The provenance graph: upstream, downstream, impact, staleness.")
    app.include_router(router)
    install_error_handlers(app)
    return app
