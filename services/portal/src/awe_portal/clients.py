"""HTTP clients of the services, one set per request, each with the signed-in user's token.

The portal asks every service as the user (never with a service account of its own), so a
page shows exactly what the API lets that user see. The clients of one process share one
connection pool (:class:`SharedPool`): a client per request is then cheap, and closing it
leaves the pool open for the next request.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
import orjson

from awecore.client import async_request_id_hooks, raise_for_problem
from awecore.errors import ServiceUnavailable

__all__ = ["ServiceClient", "SharedPool"]


class SharedPool(httpx.AsyncBaseTransport):
    """One process-wide pool of connections, lent to short-lived clients: their ``aclose``
    does not close it; :meth:`close` (at shutdown) does."""

    def __init__(self) -> None:
        self._transport = httpx.AsyncHTTPTransport(
            limits=httpx.Limits(max_connections=200, max_keepalive_connections=50))

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        return await self._transport.handle_async_request(request)

    async def aclose(self) -> None:
        return None

    async def close(self) -> None:
        await self._transport.aclose()


class ServiceClient:
    """A service's API as the user: ``request`` returns the decoded body (JSON, or text for
    a text answer) and raises the service's problem as the same ``AweError`` class."""

    def __init__(self, name: str, url: str, token: str | None, pool: httpx.AsyncBaseTransport,
                 timeout: float = 60.0) -> None:
        self.name, self.url = name, url.rstrip("/")
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        self._http = httpx.AsyncClient(base_url=self.url, headers=headers, timeout=timeout,
                                       transport=pool, event_hooks=async_request_id_hooks())

    async def request(self, method: str, path: str, **kwargs: Any) -> Any:
        if kwargs.get("json") is not None:  # orjson, as it is read back
            kwargs["content"] = orjson.dumps(kwargs.pop("json"))
            kwargs["headers"] = {**(kwargs.get("headers") or {}),
                                 "Content-Type": "application/json"}
        try:
            response = await self._http.request(method, path, **kwargs)
        except httpx.TransportError as exc:
            raise ServiceUnavailable(f"cannot reach {self.name} at {self.url}: {exc}") from None
        raise_for_problem(response)
        if response.headers.get("content-type", "").startswith("text/"):
            return response.text
        try:  # orjson: a QC page reads thousands of rows, the standard decoder thrice slower
            return orjson.loads(response.content)
        except orjson.JSONDecodeError:
            return response.json()

    async def get(self, path: str, **params: Any) -> Any:
        return await self.request("GET", path, params=params or None)

    async def post(self, path: str, json: Any = None) -> Any:
        return await self.request("POST", path, json=json)

    @asynccontextmanager
    async def stream(self, path: str) -> AsyncIterator[httpx.Response]:
        """A streamed GET (a file), its problem raised before any byte is passed on."""
        try:
            async with self._http.stream("GET", path) as response:
                if not response.is_success:
                    await response.aread()
                    raise_for_problem(response)
                yield response
        except httpx.TransportError as exc:
            raise ServiceUnavailable(f"cannot reach {self.name} at {self.url}: {exc}") from None

    async def aclose(self) -> None:
        await self._http.aclose()
