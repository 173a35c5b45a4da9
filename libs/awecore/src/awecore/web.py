"""What every AWE service's FastAPI app shares: problem documents (RFC 9457) and tokens.

Imported by services only (the client does not need FastAPI).
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any, Protocol

import structlog
from fastapi import APIRouter, Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel
from starlette.exceptions import HTTPException as StarletteHTTPException

from .client import AsyncCatalogClient
from .errors import AweError, InvalidRequest, Unauthorized, error_class, problem_body
from .logs import configure_logging

__all__ = ["PROBLEM", "Identity", "TokenAuthenticator", "get_identity",
           "install_error_handlers", "problem_response", "service_app"]

PROBLEM = "application/problem+json"
log = structlog.get_logger("awe.web")


def problem_response(exc: AweError, request: Request | None = None) -> JSONResponse:
    return JSONResponse(problem_body(exc, request.url.path if request else None),
                        status_code=exc.status_code, media_type=PROBLEM)


def install_error_handlers(app: FastAPI) -> None:
    """Every error, ours or the framework's, leaves as a problem document with a code."""

    @app.exception_handler(AweError)
    async def awe_error(request: Request, exc: AweError) -> JSONResponse:
        return problem_response(exc, request)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        cls = error_class("", exc.status_code)
        return problem_response(cls(f"{exc.detail}: {request.method} {request.url.path}"),
                                request)

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors: list[dict[str, Any]] = [
            {"field": ".".join(str(p) for p in e["loc"]), "message": e["msg"]}
            for e in exc.errors()
        ]
        first = errors[0] if errors else {"field": "body", "message": "invalid"}
        more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
        return problem_response(
            InvalidRequest(f"{first['field']}: {first['message']}{more}", errors), request)

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error", path=request.url.path)
        return problem_response(AweError("internal error; the log has the details"), request)


class Identity(BaseModel):
    """Who calls a service, as the catalog (which holds every token) says."""

    name: str
    is_admin: bool = False
    is_service: bool = False
    projects: list[str] = []

    @property
    def sees_all(self) -> bool:
        return self.is_admin or self.is_service


class TokenAuthenticator:
    """Services other than the catalog ask it who a token is; answers are cached briefly."""

    def __init__(self, catalog: AsyncCatalogClient, ttl: float = 60.0) -> None:
        self.catalog = catalog
        self.ttl = ttl
        self._cache: dict[str, tuple[float, Identity]] = {}

    async def identify(self, token: str | None) -> Identity:
        if not token:
            raise Unauthorized("send your API token as 'Authorization: Bearer <token>'")
        key = hashlib.sha256(token.encode()).hexdigest()
        hit = self._cache.get(key)
        if hit is not None and hit[0] > time.monotonic():
            return hit[1]
        me = await self.catalog.whoami(token)
        who = Identity(name=me["name"], is_admin=bool(me["is_admin"]),
                       is_service=bool(me["is_service"]), projects=list(me.get("projects", [])))
        self._cache[key] = (time.monotonic() + self.ttl, who)
        return who


_bearer = HTTPBearer(auto_error=False, description="an AWE API token")


async def get_identity(
    request: Request, credentials: HTTPAuthorizationCredentials | None = Depends(_bearer),
) -> Identity:
    """FastAPI dependency: the caller of a service whose context has a TokenAuthenticator
    at ``app.state.context.auth``."""
    auth: TokenAuthenticator = request.app.state.context.auth
    return await auth.identify(credentials.credentials if credentials else None)


class _Context(Protocol):
    async def aclose(self) -> None: ...


def service_app(service: str, title: str, summary: str, log_level: str,
                make_context: Callable[[], Awaitable[_Context]],
                router: APIRouter) -> FastAPI:
    """The app of a service: JSON logs, a process context opened by the lifespan (kept at
    ``app.state.context``, closed on the way out), its routes, problem documents."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        configure_logging(service, log_level)
        context = await make_context()
        app.state.context = context
        log.info(f"{service} ready")
        try:
            yield
        finally:
            await context.aclose()

    app = FastAPI(title=title, version="0.1.0", lifespan=lifespan, summary=summary)
    app.include_router(router)
    install_error_handlers(app)
    return app
