"""The catalog application: ``uvicorn awe_catalog.main:create_app --factory``."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import structlog
from fastapi import FastAPI

from awecore.logs import configure_logging
from awecore.web import install_error_handlers

from .config import CatalogSettings, weak_admin_token
from .factory import Factory, Metrics, ProcessContext
from .handlers import router
from .middleware import BodyLimit, RequestContext
from .storage.migrations import apply_migrations

__all__ = ["create_app"]

log = structlog.get_logger("awe.catalog")


def create_app(settings: CatalogSettings | None = None) -> FastAPI:
    settings = settings or CatalogSettings()
    # CatalogSettings refuses a weak admin token; settings made without validation
    # (model_construct) are checked here, before anything starts
    if settings.admin_token is not None and (
            why := weak_admin_token(settings.admin_token.get_secret_value())):
        raise ValueError(f"the catalog refuses to start: {why}")
    metrics = Metrics()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        configure_logging("catalog", settings.log_level)
        context = await ProcessContext.create(settings)
        context.metrics = metrics
        try:
            async with context.pool.acquire() as conn:
                await apply_migrations(conn)
            if settings.admin_token is not None:
                await Factory(context).users().bootstrap_admin(
                    settings.admin_token.get_secret_value())
            app.state.context = context
            log.info("catalog ready", site=settings.site)
            yield
        finally:
            await context.aclose()

    app = FastAPI(
        title="AWE catalog",
        version="0.1.0",
        summary="Every persistent object of AWE: registration, queries, validity look-ups, "
                "curation, users and the changelog.",
        lifespan=lifespan,
    )
    app.include_router(router)

    install_error_handlers(app)
    app.add_middleware(BodyLimit, max_bytes=settings.max_body_bytes)
    app.add_middleware(RequestContext, metrics=metrics)
    return app

