"""Errors as pages: a problem from a service (a bad oid, a bad query, not allowed) becomes a
readable page with the same 4xx status, never a 500; a visitor who has not signed in, or
whose token the catalog no longer accepts, is sent to the sign-in page."""

from __future__ import annotations

from urllib.parse import quote

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import RedirectResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from awecore.errors import AweError, InvalidRequest, MethodNotAllowed, Unauthorized, error_class
from awecore.server.problems import translate

from .session import NotSignedIn, Session, set_session
from .templating import render

__all__ = ["error_page", "install_page_errors"]


def _to_signin(request: Request) -> Response:
    target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    url = f"/signin?next={quote(target, safe='')}"
    if request.headers.get("HX-Request"):  # htmx follows this header, not a 303
        return Response(status_code=204, headers={"HX-Redirect": url})
    return RedirectResponse(url, status_code=303)


def error_page(request: Request, exc: AweError) -> Response:
    return render(request, "error.html", {
        "title": exc.title, "status": exc.status_code, "error_title": exc.title,
        "detail": exc.detail}, status_code=exc.status_code)


def install_page_errors(app: FastAPI) -> None:
    """Replace the kit's problem documents with pages (the operations routes raise none)."""

    @app.exception_handler(NotSignedIn)
    async def not_signed_in(request: Request, exc: NotSignedIn) -> Response:
        return _to_signin(request)

    @app.exception_handler(AweError)
    async def awe_error(request: Request, exc: AweError) -> Response:
        if isinstance(exc, Unauthorized):  # the token was revoked or has expired
            set_session(request, Session.anonymous())
            return _to_signin(request)
        return error_page(request, exc)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> Response:
        cls = MethodNotAllowed if exc.status_code == 405 else error_class("", exc.status_code)
        if cls.status_code != exc.status_code:
            cls = InvalidRequest if 400 <= exc.status_code < 500 else AweError
        return error_page(request, cls(f"{exc.detail}: {request.method} {request.url.path}"))

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError) -> Response:
        parts = [f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors()]
        return error_page(request, InvalidRequest("; ".join(parts) or "invalid request"))

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception) -> Response:
        known = translate(exc)
        if known is None:
            raise exc  # the kit's RequestContext logs it and answers 500
        return error_page(request, known)
