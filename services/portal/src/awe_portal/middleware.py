"""Two small ASGI middlewares: the session cookie, and headers that keep pages on this site.

``SessionCookie`` sets the sealed cookie on any response whose request made or changed the
session (a first visit, sign-in, sign-out), whatever handler answered: a redirect, a page,
an error page. ``PageHeaders`` adds a Content-Security-Policy that lets a page load scripts,
styles, images and data from the portal only, so a template that names another host fails
in the browser (and in the tests) instead of leaking a request off the site.
"""

from __future__ import annotations

from typing import Any

from starlette.datastructures import MutableHeaders
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

__all__ = ["CSP", "PageHeaders", "SessionCookie"]

CSP = ("default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
       "img-src 'self' data:; connect-src 'self'; form-action 'self'; "
       "frame-ancestors 'none'; base-uri 'self'; object-src 'none'")
#: FastAPI's own API pages are left as they are (their assets are another matter)
_OWN_POLICY = ("/docs", "/redoc", "/openapi.json")


class SessionCookie:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        state: dict[str, Any] = scope.setdefault("state", {})

        async def send_with_cookie(message: Message) -> None:
            session = state.get("portal_session")
            if message["type"] == "http.response.start" and session is not None \
                    and session.fresh:
                sealer = scope["app"].state.context.sealer
                cookie = Response()
                sealer.set_cookie(cookie, session)  # sign-out: a new, anonymous session
                headers = MutableHeaders(scope=message)
                for value in cookie.headers.getlist("set-cookie"):
                    headers.append("set-cookie", value)
            await send(message)

        await self.app(scope, receive, send_with_cookie)


class PageHeaders:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or str(scope.get("path", "")).startswith(_OWN_POLICY):
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                headers.setdefault("content-security-policy", CSP)
                headers.setdefault("x-content-type-options", "nosniff")
                headers.setdefault("x-frame-options", "DENY")
                headers.setdefault("referrer-policy", "same-origin")
            await send(message)

        await self.app(scope, receive, send_with_headers)
