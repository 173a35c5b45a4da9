"""An async client of the storage service, for services and workers on an event loop.

It checks what it reads the way :class:`~awecore.client.StorageClient` does: with the
``sha256`` and ``size`` the catalogue recorded for a file, storage's own checksum header is
compared first (a file recorded with other bytes is not downloaded), then the bytes as they
arrive; a difference raises :class:`~awecore.errors.ChecksumMismatch` before anything is
computed from them.
"""

from __future__ import annotations

import httpx

from ..errors import ServiceUnavailable
from ..files import FileInfo, url_path
from ._problem import raise_for_problem
from ._request_id import async_request_id_hooks
from ._verified import CHUNK, VerifiedRead

__all__ = ["AsyncStorageClient"]


class AsyncStorageClient:
    def __init__(self, url: str, token: str | None = None, timeout: float = 300.0,
                 transport: httpx.AsyncBaseTransport | None = None) -> None:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        self.url = url.rstrip("/")
        self._http = httpx.AsyncClient(base_url=self.url, headers=headers, timeout=timeout,
                                       transport=transport,
                                       event_hooks=async_request_id_hooks())

    async def aclose(self) -> None:
        await self._http.aclose()

    async def __aenter__(self) -> AsyncStorageClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def put(self, name: str, data: bytes) -> FileInfo:
        """Store bytes under a new name; the stored FileInfo. The same bytes under a name
        again are a success (an idempotent retry); other bytes raise Conflict."""
        try:
            response = await self._http.put(f"/files/{url_path(name)}", content=data)
        except httpx.TransportError as exc:
            raise ServiceUnavailable(f"cannot reach storage at {self.url}: {exc}") from None
        raise_for_problem(response)
        return FileInfo.model_validate(response.json())

    async def get(self, name: str, *, sha256: str | None = None,
                  size: int | None = None) -> bytes:
        """A whole file's bytes, checked against ``sha256`` and ``size`` when given."""
        read = VerifiedRead(name, sha256, size)
        try:
            async with self._http.stream("GET", f"/files/{url_path(name)}") as response:
                if not response.is_success:
                    await response.aread()
                    raise_for_problem(response)
                read.headers(response)
                async for chunk in response.aiter_bytes(CHUNK):
                    read.add(chunk)
        except httpx.TransportError as exc:
            raise read.cut(self.url, exc) from None
        return read.result()
