"""The federation application: ``uvicorn awe_federation.main:create_app --factory``."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import structlog
from fastapi import FastAPI

from awecore.logs import configure_logging
from awecore.web import install_error_handlers

from .config import FederationSettings
from .factory import ProcessContext
from .handlers import router

__all__ = ["create_app"]

log = structlog.get_logger("awe.federation")


def create_app(settings: FederationSettings | None = None) -> FastAPI:
    settings = settings or FederationSettings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        configure_logging("federation", settings.log_level)
        context = await ProcessContext.create(settings)
        app.state.context = context
        log.info("federation ready", site=settings.site, peers=[p.site for p in settings.peers])
        try:
            yield
        finally:
            await context.aclose()

    app = FastAPI(title="AWE federation", version="0.1.0", lifespan=lifespan,
                  summary="Replicates catalog metadata between sites.")
    app.include_router(router)
    install_error_handlers(app)
    return app
