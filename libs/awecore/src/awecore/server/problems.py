"""Every error a service answers, ours or the framework's, is a problem document (RFC 9457)
with a machine code: the client maps the code back to the exception class."""

from __future__ import annotations

from typing import Any

import structlog
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from ..errors import AweError, InvalidRequest, error_class, problem_body

__all__ = ["PROBLEM", "install_error_handlers", "problem_response"]

PROBLEM = "application/problem+json"
log = structlog.get_logger("awe.web")


def problem_response(exc: AweError, request: Request | None = None,
                     **extra: Any) -> JSONResponse:
    body = {**problem_body(exc, request.url.path if request else None), **extra}
    return JSONResponse(body, status_code=exc.status_code, media_type=PROBLEM)


def install_error_handlers(app: FastAPI) -> None:
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
