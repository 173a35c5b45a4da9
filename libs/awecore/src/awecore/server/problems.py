"""Every error a service answers, ours or the framework's, is a problem document (RFC 9457)
with a machine code: the client maps the code back to the exception class.

Two kinds of errors are not bugs, though no handler raised them as ours: a value PostgreSQL
cannot hold (an integer beyond int64, a date beyond its calendar, a NUL in a string: its
"data exception" class) is the caller's, a 400; a database or a peer service that cannot be
reached is a 503 with Retry-After. Anything else unexpected is a 500, logged with its
traceback: a real fault is never disguised as the caller's.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import asyncpg
import httpx
import structlog
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from ..errors import (
    AweError,
    InvalidRequest,
    MethodNotAllowed,
    ServiceUnavailable,
    error_class,
    problem_body,
)

__all__ = ["PROBLEM", "RETRY_AFTER_SECONDS", "install_error_handlers", "problem_response",
           "translate"]

PROBLEM = "application/problem+json"
#: what a 503 tells the caller to wait before trying again
RETRY_AFTER_SECONDS = 5
log = structlog.get_logger("awe.web")

#: PostgreSQL cannot be reached or will not take work now: connection failures (class 08),
#: too many connections and other resource limits (53), an administrator's or a crash's
#: shutdown (57)
_UNAVAILABLE = (asyncpg.exceptions.PostgresConnectionError,
                asyncpg.exceptions.InsufficientResourcesError,
                asyncpg.exceptions.OperatorInterventionError,
                asyncpg.exceptions.InvalidCatalogNameError,
                ConnectionError, httpx.TransportError)


def _unavailable(exc: BaseException) -> bool:
    if isinstance(exc, _UNAVAILABLE):
        return True
    # the pool says so when it is closed under a request (the process is stopping)
    return isinstance(exc, asyncpg.InterfaceError) and "pool is clos" in str(exc)


def translate(exc: BaseException) -> AweError | None:
    """The problem an exception no handler turned into one stands for, if it is not a
    fault of ours: a value PostgreSQL refused (400) or a dependency out of reach (503)."""
    if isinstance(exc, AweError):
        return exc
    if isinstance(exc, asyncpg.DataError | asyncpg.exceptions._base.DataError):
        # the server's "data exception" (SQLSTATE class 22) or asyncpg refusing to encode
        # an argument: a value out of the column's range or not representable in it
        why = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        return InvalidRequest(f"a value cannot be stored or compared: {why}")
    if isinstance(exc, OverflowError):
        # a date or number past what Python or the database can represent (a time at year
        # 1 in +14:00 is before year 1 in UTC): arithmetic on the caller's values
        return InvalidRequest(f"a value is out of range: {exc}")
    if _unavailable(exc):
        what = "the database" if isinstance(exc, asyncpg.PostgresError | asyncpg.InterfaceError
                                             | ConnectionError) else "a service it needs"
        return ServiceUnavailable(f"{what} is unavailable ({type(exc).__name__}); "
                                  f"try again in {RETRY_AFTER_SECONDS} s")
    return None


def problem_response(exc: AweError, request: Request | None = None,
                     headers: Mapping[str, str] | None = None, **extra: Any) -> JSONResponse:
    body = {**problem_body(exc, request.url.path if request else None), **extra}
    out = dict(headers or {})
    if exc.status_code == 503:
        out.setdefault("retry-after", str(RETRY_AFTER_SECONDS))
    elif exc.status_code == 408:  # the rest of the body may still come: stop reading it
        out["connection"] = "close"
    return JSONResponse(body, status_code=exc.status_code, media_type=PROBLEM,
                        headers=out or None)


def unexpected_response(exc: Exception, path: str, request: Request | None = None
                        ) -> JSONResponse:
    """The answer to an exception that reached the top: translated, or a logged 500."""
    known = translate(exc)
    if known is None:
        log.error("unhandled error", path=path, exc_info=exc)
        known = AweError("internal error; the log has the details")
    elif known.status_code >= 500:
        log.warning("unavailable", path=path, error=repr(exc))
    return problem_response(known, request)


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(AweError)
    async def awe_error(request: Request, exc: AweError) -> JSONResponse:
        return problem_response(exc, request)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        cls = MethodNotAllowed if exc.status_code == 405 else error_class("", exc.status_code)
        detail = f"{exc.detail}: {request.method} {request.url.path}"
        if exc.status_code == 405 and exc.headers and "Allow" in exc.headers:
            detail += f" (allowed: {exc.headers['Allow']})"
        if cls.status_code != exc.status_code:  # a status no class of ours has
            cls = InvalidRequest if 400 <= exc.status_code < 500 else AweError
        return problem_response(cls(detail), request, headers=exc.headers)

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
        # reached only without the kit's RequestContext, which answers first (and keeps
        # the connection: an exception that gets this far makes uvicorn close it)
        return unexpected_response(exc, request.url.path, request)
