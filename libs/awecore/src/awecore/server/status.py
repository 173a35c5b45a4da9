"""Status of a process that serves no API (the outbox relay, compute workers).

:class:`StatusServer` answers ``GET /metrics``, ``/livez`` and ``/readyz`` on a port of its
own (127.0.0.1 by default; port 0 takes a free one), so that Prometheus can scrape such a
process too. :class:`Heartbeat` marks each turn of the process's main loop: in a gauge, and
in a small JSON file (when configured) that also tells the port the server took, so that a
probe, a test or an operator finds it.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import structlog

from .metrics import CONTENT_TYPE_LATEST, Metrics

__all__ = ["Heartbeat", "StatusServer"]

log = structlog.get_logger("awe.status")

Checks = Callable[[], Awaitable[dict[str, str]]]
_MAX_HEAD = 16 * 1024
_READ_SECONDS = 10.0


async def _no_checks() -> dict[str, str]:
    return {}


class StatusServer:
    def __init__(self, metrics: Metrics, host: str = "127.0.0.1", port: int = 0,
                 checks: Checks = _no_checks) -> None:
        self.metrics = metrics
        self.host = host
        self.port = port
        self.checks = checks
        self._server: asyncio.Server | None = None

    async def start(self) -> int:
        """Listen; returns the port (the one asked for, or the free one taken)."""
        self._server = await asyncio.start_server(self._serve, self.host, self.port)
        self.port = int(self._server.sockets[0].getsockname()[1])
        log.info("status server listening", url=f"http://{self.host}:{self.port}/metrics")
        return self.port

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None

    async def _answer(self, path: str) -> tuple[int, str, bytes]:
        if path == "/metrics":
            return 200, CONTENT_TYPE_LATEST, await self.metrics.render()
        if path == "/livez":
            return 200, "application/json", b'{"status": "ok"}'
        if path in ("/readyz", "/health"):
            checks = await self.checks()
            ok = all(v == "ok" for v in checks.values())
            body = json.dumps({"status": "ok" if ok else "unavailable", "checks": checks})
            return (200 if ok else 503), "application/json", body.encode()
        return 404, "application/json", b'{"status": 404, "detail": "not found"}'

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            async with asyncio.timeout(_READ_SECONDS):
                head = await reader.readuntil(b"\r\n\r\n")
            parts = head[:_MAX_HEAD].split(b"\r\n", 1)[0].decode("latin-1").split()
            if len(parts) != 3 or parts[0] not in ("GET", "HEAD"):
                status, kind, body = 405, "application/json", b'{"status": 405}'
            else:
                status, kind, body = await self._answer(parts[1].split("?", 1)[0])
                if parts[0] == "HEAD":
                    body = b""
            reason = {200: "OK", 404: "Not Found", 405: "Method Not Allowed",
                      503: "Service Unavailable"}.get(status, "")
            writer.write(f"HTTP/1.1 {status} {reason}\r\ncontent-type: {kind}\r\n"
                         f"content-length: {len(body)}\r\nconnection: close\r\n\r\n"
                         .encode("latin-1") + body)
            await writer.drain()
        except (TimeoutError, asyncio.IncompleteReadError, asyncio.LimitOverrunError,
                ConnectionError):
            pass  # a client that sends no request, or goes away, gets nothing
        finally:
            writer.close()
            with contextlib.suppress(ConnectionError):
                await writer.wait_closed()


class Heartbeat:
    """Marks a turn of the main loop; ``path`` (optional) gets a JSON file with ``info``."""

    def __init__(self, metrics: Metrics, path: Path | None = None,
                 every: float = 1.0) -> None:
        self.metrics = metrics
        self.path = path
        self.every = every
        self.info: dict[str, Any] = {"pid": os.getpid()}
        self.last = 0.0
        self._written = 0.0

    def beat(self, **info: Any) -> None:
        """Record a turn; ``info`` (the job in hand, say) is kept in the file until changed."""
        now = time.time()
        self.last = now
        self.metrics.heartbeat.set(now)
        changed = any(self.info.get(k) != v for k, v in info.items())
        self.info.update(info)
        if self.path is not None and (changed or now - self._written >= self.every):
            self._written = now
            tmp = self.path.with_name(f".{self.path.name}.{os.getpid()}")
            try:
                tmp.write_text(json.dumps({**self.info, "time": now}))
                os.replace(tmp, self.path)
            except OSError as exc:  # a full or read-only disk must not stop the work
                log.warning("cannot write the heartbeat", path=str(self.path), error=repr(exc))

    def age(self) -> float:
        """Seconds since the last beat (infinite before the first)."""
        return time.time() - self.last if self.last else float("inf")
