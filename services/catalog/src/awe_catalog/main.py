"""The catalog application: ``uvicorn awe_catalog.main:create_app --factory``."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import structlog
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from awecore.errors import AweError, InvalidRequest, error_class, problem_body
from awecore.logs import configure_logging

from .config import CatalogSettings
from .factory import Factory, Metrics, ProcessContext
from .handlers import router
from .middleware import BodyLimit, RequestContext
from .storage.migrations import apply_migrations

__all__ = ["create_app"]

log = structlog.get_logger("awe.catalog")
PROBLEM = "application/problem+json"


def _problem(exc: AweError, request: Request) -> JSONResponse:
    return JSONResponse(problem_body(exc, request.url.path), status_code=exc.status_code,
                        media_type=PROBLEM)


def create_app(settings: CatalogSettings | None = None) -> FastAPI:
    settings = settings or CatalogSettings()
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

    @app.exception_handler(AweError)
    async def awe_error(request: Request, exc: AweError) -> JSONResponse:
        return _problem(exc, request)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        cls = error_class("", exc.status_code)
        return _problem(cls(f"{exc.detail}: {request.method} {request.url.path}"), request)

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors: list[dict[str, Any]] = [
            {"field": ".".join(str(p) for p in e["loc"]), "message": e["msg"]}
            for e in exc.errors()
        ]
        first = errors[0] if errors else {"field": "body", "message": "invalid"}
        more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
        return _problem(InvalidRequest(f"{first['field']}: {first['message']}{more}", errors),
                        request)

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error", path=request.url.path)
        return _problem(AweError("internal error; the log has the details"), request)

    app.add_middleware(BodyLimit, max_bytes=settings.max_body_bytes)
    app.add_middleware(RequestContext, metrics=metrics)
    return app

