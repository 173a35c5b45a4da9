"""The HTTP ingest path: the same Ingester as ``awe ingest``, run beside the backend.

The Ingester is synchronous (it is the client's code); it runs in a worker thread, talks to
the catalog as the caller, and stores chips through this service's own FileService.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

from awecore.client import CatalogClient
from awecore.errors import PayloadTooLarge
from awecore.files import check_name
from awecore.ingest import Ingester, IngestReport, read_exposure
from awecore.web import Identity as Caller

from .files import FileService

__all__ = ["ingest_upload"]


async def ingest_upload(files: FileService, catalog_url: str, token: str, caller: Caller,
                        filename: str, body: AsyncIterator[bytes], limit: int) -> IngestReport:
    check_name(filename)
    chunks, size = [], 0
    async for chunk in body:
        size += len(chunk)
        if size > limit:
            raise PayloadTooLarge(f"upload exceeds the limit of {limit} bytes")
        chunks.append(chunk)
    data = b"".join(chunks)
    exposure = await asyncio.to_thread(read_exposure, data, filename)
    loop = asyncio.get_running_loop()

    async def aiter(payload: bytes) -> AsyncIterator[bytes]:
        yield payload

    def store(name: str, payload: bytes) -> object:
        return asyncio.run_coroutine_threadsafe(
            files.put(name, aiter(payload), caller, len(payload)), loop).result()

    def run() -> IngestReport:
        with CatalogClient(catalog_url, token) as catalog:
            return Ingester(catalog, store).ingest_exposure(exposure)

    return await asyncio.to_thread(run)
