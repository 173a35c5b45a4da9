"""ASGI middleware of every service: request ids, access logs, HTTP metrics, body limits,
body timeouts."""

from __future__ import annotations

import asyncio
import re
import time
import uuid

import structlog
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ..client import using_request_id
from ..errors import InvalidRequest, PayloadTooLarge, RequestTimeout
from .metrics import Metrics
from .problems import problem_response, unexpected_response

__all__ = ["BodyGuard", "BodyLimit", "RequestContext"]

log = structlog.get_logger("awe.access")
#: what a caller's X-Request-ID may be; anything else is replaced by a fresh id
_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")
#: polled by probes and scrapers: not worth a log line each
_QUIET = ("/livez", "/readyz", "/health", "/metrics")


class RequestContext:
    """Take the caller's ``X-Request-ID`` (or make one), echo it, bind it for the logs and
    for the calls the request makes to other services; log and count each request.

    It also answers an exception no handler took (a problem document: 400, 503 or 500,
    :func:`~awecore.server.problems.unexpected_response`) before it reaches uvicorn, which
    would close the keep-alive connection after such a response."""

    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        sent = dict(scope["headers"]).get(b"x-request-id", b"").decode("latin-1")
        request_id = sent if _ID.match(sent) else uuid.uuid4().hex
        status = 500
        started = False
        start = time.perf_counter()

        async def send_with_id(message: Message) -> None:
            nonlocal status, started
            if message["type"] == "http.response.start":
                status, started = message["status"], True
                message["headers"] = [*message.get("headers", []),
                                      (b"x-request-id", request_id.encode())]
            await send(message)

        with structlog.contextvars.bound_contextvars(request_id=request_id), \
                using_request_id(request_id):
            try:
                if "\x00" in scope["path"] or b"%00" in scope["query_string"]:
                    # no text PostgreSQL stores may hold one: refused once, here
                    raise InvalidRequest("a NUL character (%00) is not allowed in a URL")
                await self.app(scope, receive, send_with_id)
            except Exception as exc:
                if started:  # too late for a problem document: uvicorn ends the stream
                    raise
                await unexpected_response(exc, scope["path"])(scope, receive, send_with_id)
            finally:
                elapsed = time.perf_counter() - start
                route = getattr(scope.get("route"), "path", "unmatched")
                method = scope["method"]
                self.metrics.requests.labels(method, route, str(status)).inc()
                self.metrics.latency.labels(method, route).observe(elapsed)
                if route not in _QUIET:
                    log.info("request", method=method, path=scope["path"], status=status,
                             ms=round(elapsed * 1000, 2))


class BodyLimit:
    """Refuse bodies over the limit before they are parsed.

    A declared Content-Length is checked at once; a streamed (chunked) body is read up to
    the limit here and replayed to the app, so an oversized one is refused with a 413
    instead of half-parsed.
    """

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def _refuse(self, size: str, scope: Scope, receive: Receive, send: Send) -> None:
        exc = PayloadTooLarge(f"request body of {size} bytes exceeds the limit of "
                              f"{self.max_bytes} bytes; send smaller batches")
        await problem_response(exc)(scope, receive, send)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] in ("GET", "HEAD", "DELETE"):
            await self.app(scope, receive, send)
            return
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None:
            if declared.isdigit() and int(declared) > self.max_bytes:
                await self._refuse(declared.decode(), scope, receive, send)
            else:
                await self.app(scope, receive, send)
            return
        chunks: list[bytes] = []
        seen = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":
                break
            chunks.append(message.get("body", b""))
            seen += len(chunks[-1])
            if seen > self.max_bytes:
                await self._refuse(f"more than {seen}", scope, receive, send)
                return
            if not message.get("more_body", False):
                break
        body = b"".join(chunks)
        sent = False

        async def replay() -> Message:
            nonlocal sent
            if sent:
                return await receive()
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}

        await self.app(scope, replay, send)


class BodyGuard:
    """A request body that stops arriving is refused, and a refused body ends the
    connection.

    Each piece of a body must come within ``seconds`` (a declared Content-Length that never
    arrives would otherwise hold a connection, and a handler, forever): else the request
    fails with a 408 problem. A response sent before the whole body was read (a refusal
    after the first block, a timeout) says ``Connection: close``, so the server stops
    reading what the client still sends instead of draining it.
    """

    def __init__(self, app: ASGIApp, seconds: float) -> None:
        self.app = app
        self.seconds = seconds

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] in ("GET", "HEAD", "DELETE", "OPTIONS"):
            await self.app(scope, receive, send)
            return
        headers = dict(scope["headers"])
        done = b"transfer-encoding" not in headers and \
            headers.get(b"content-length", b"0") in (b"0", b"")
        seconds = self.seconds

        async def timed_receive() -> Message:
            nonlocal done
            if done:
                return await receive()
            try:
                async with asyncio.timeout(seconds):
                    message = await receive()
            except TimeoutError:
                raise RequestTimeout(f"no part of the request body arrived for {seconds:g} s; "
                                     "the connection is closed and nothing was kept") from None
            if message["type"] != "http.request" or not message.get("more_body", False):
                done = True
            return message

        async def closing_send(message: Message) -> None:
            if message["type"] == "http.response.start" and not done:
                message["headers"] = [*message.get("headers", []), (b"connection", b"close")]
            await send(message)

        await self.app(scope, timed_receive, closing_send)
