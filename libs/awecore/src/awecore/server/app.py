"""The app builder every service uses, and what it gives them.

``service_app`` makes the FastAPI app of a service: JSON logs, the request middleware
(request ids, access log, metrics), problem documents, the operations routes, and a
lifespan that opens the service's process context, starts its background loops, and stops
and closes them on the way out. Handlers get a service factory per request from the one
generic :func:`get_factory` dependency.

Operations routes (on every service):

``/livez``
    The process answers: for a liveness probe (a database outage must not restart it).
``/readyz``
    It can serve: the context's checks (database, broker...) and every background loop
    running. 200 with the checks and details, else 503 (a problem document with them).
``/health``
    The same as ``/readyz``, kept for the scripts and tests that poll it.
``/metrics``
    Prometheus text.
``/docs``, ``/redoc``
    The API pages, with their assets served by the service itself (``.docs``).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import structlog
from fastapi import APIRouter, FastAPI, Request, Response
from fastapi.responses import JSONResponse

from ..errors import ServiceUnavailable
from .docs import install_docs
from .logs import configure_logging
from .loops import Loops
from .metrics import CONTENT_TYPE_LATEST, Metrics
from .middleware import BodyGuard, BodyLimit, RequestContext
from .openapi import install_openapi
from .problems import install_error_handlers, problem_response
from .settings import ServiceSettings

__all__ = ["VERSION", "Kit", "ServiceContext", "get_factory", "service_app"]

VERSION = "0.1.0"
#: a readiness check that takes longer than this counts as failed
CHECK_SECONDS = 5.0
log = structlog.get_logger("awe.web")


class ServiceContext:
    """What a service keeps for the life of its process (pools, clients...): made by the
    service's ``create``, closed by the lifespan. Override what applies."""

    async def checks(self) -> dict[str, str]:
        """Readiness, per dependency: 'ok' or why not (raise, and the error says why)."""
        return {}

    async def details(self) -> dict[str, Any]:
        """What ``/readyz`` tells besides the checks (how far a follower is, say)."""
        return {}

    async def aclose(self) -> None:
        return None


@dataclass
class Kit:
    """What the app builder hands a service's context: its metrics registry and the place
    where its background loops are added (started by the lifespan once the context is
    made)."""

    service: str
    metrics: Metrics
    loops: Loops


async def get_factory(request: Request) -> Any:
    """FastAPI dependency: the service's factory over the process context (a coroutine:
    FastAPI runs a plain function in a worker thread, a hop every request would pay)."""
    return request.app.state.factory(request.app.state.context)


async def _run_checks(app: FastAPI) -> tuple[dict[str, str], dict[str, Any]]:
    context: ServiceContext = app.state.context
    kit: Kit = app.state.kit
    try:
        async with asyncio.timeout(CHECK_SECONDS):
            checks = dict(await context.checks())
    except Exception as exc:  # a check that raises says what went wrong
        checks = {"context": f"failed: {exc!r}"}
    checks.update({f"loop:{name}": state for name, state in kit.loops.status().items()})
    try:
        async with asyncio.timeout(CHECK_SECONDS):
            details = await context.details()
    except Exception as exc:
        details = {"details": f"unavailable: {exc!r}"}
    return checks, details


def _operations(service: str, settings: ServiceSettings) -> APIRouter:
    router = APIRouter(tags=["operations"])

    @router.get("/livez", summary="Liveness: the process answers (no dependency is asked)")
    async def livez() -> dict[str, str]:
        return {"status": "ok", "service": service}

    async def ready(request: Request) -> Response:
        checks, details = await _run_checks(request.app)
        failed = {k: v for k, v in checks.items() if v != "ok"}
        if failed:
            why = "; ".join(f"{k}: {v}" for k, v in failed.items())
            return problem_response(ServiceUnavailable(f"{service} is not ready: {why}"),
                                    request, checks=checks)
        return JSONResponse({"status": "ok", "service": service, "site": settings.site,
                             "version": VERSION, "checks": checks, **details})

    router.add_api_route("/readyz", ready, methods=["GET"], response_class=JSONResponse,
                         summary="Readiness: database, broker and background loops; details")
    router.add_api_route("/health", ready, methods=["GET"], response_class=JSONResponse,
                         summary="The same as /readyz (kept for the scripts that poll it)")

    @router.get("/metrics", summary="Prometheus metrics", response_class=Response)
    async def metrics(request: Request) -> Response:
        return Response(await request.app.state.kit.metrics.render(),
                        media_type=CONTENT_TYPE_LATEST)

    return router


def service_app(settings: ServiceSettings, *, service: str, title: str, summary: str,
                router: APIRouter, make_context: Callable[[Kit], Awaitable[ServiceContext]],
                factory: Callable[[Any], object],
                max_body_bytes: int | None = None) -> FastAPI:
    """The app of a service.

    ``make_context(kit)`` opens the process context (kept at ``app.state.context``; it may
    add loops to ``kit.loops`` and metrics to ``kit.metrics``); ``factory(context)`` makes the
    object handlers get from :func:`get_factory`. ``max_body_bytes`` refuses larger bodies
    with a 413 before they are read.
    """
    configure_logging(service, settings.log_level)
    metrics = Metrics(service)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        kit = Kit(service, metrics, Loops())
        context = await make_context(kit)
        app.state.kit, app.state.context = kit, context
        kit.loops.start()
        log.info(f"{service} ready", site=settings.site)
        try:
            yield
        finally:
            await kit.loops.stop()
            await context.aclose()

    # the API pages with the service's own assets, not a CDN's (``.docs``)
    app = FastAPI(title=title, version=VERSION, summary=summary, lifespan=lifespan,
                  docs_url=None, redoc_url=None)
    app.state.factory = factory
    app.include_router(_operations(service, settings))
    app.include_router(router)
    install_error_handlers(app)
    install_openapi(app)
    install_docs(app)
    if max_body_bytes is not None:
        app.add_middleware(BodyLimit, max_bytes=max_body_bytes)
    app.add_middleware(BodyGuard, seconds=settings.body_timeout_seconds)
    app.add_middleware(RequestContext, metrics=metrics)
    return app
