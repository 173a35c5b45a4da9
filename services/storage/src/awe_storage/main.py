"""The storage application: ``uvicorn awe_storage.main:create_app --factory``."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import structlog
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from prometheus_client import CollectorRegistry, Counter
from starlette.exceptions import HTTPException as StarletteHTTPException

from awecore.errors import AweError, InvalidRequest, error_class, problem_body
from awecore.logs import configure_logging

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


def _problem(exc: AweError, request: Request) -> JSONResponse:
    return JSONResponse(problem_body(exc, request.url.path), status_code=exc.status_code,
                        media_type="application/problem+json")


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

    @app.exception_handler(AweError)
    async def awe_error(request: Request, exc: AweError) -> JSONResponse:
        return _problem(exc, request)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        cls = error_class("", exc.status_code)
        return _problem(cls(f"{exc.detail}: {request.method} {request.url.path}"), request)

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = [{"field": ".".join(str(p) for p in e["loc"]), "message": e["msg"]}
                  for e in exc.errors()]
        return _problem(InvalidRequest(f"{errors[0]['field']}: {errors[0]['message']}", errors),
                        request)

    return app
