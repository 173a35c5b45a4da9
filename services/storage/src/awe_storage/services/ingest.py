"""The HTTP ingest path: the same Ingester as ``awe ingest``, run beside the backend.

The Ingester is synchronous (it is the client's code); it runs in a worker thread, talks to
the catalog as the caller, and stores chips through this service's own FileService, whose
records also tell it what a taken name holds. Its refusals are problem documents: 409 for
other content under an existing name or the same content under another (``raw_name_taken``,
``duplicate_raw_file``), 400 for a bad or incomplete file (``invalid_raw_file``,
``incomplete_exposure``).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

from awecore.client import CatalogClient
from awecore.errors import InvalidRequest, NotFound, PayloadTooLarge
from awecore.ingest import Ingester, IngestReport, read_exposure
from awecore.server import Identity as Caller

from .files import FileService

__all__ = ["ingest_upload"]


def check_filename(filename: str) -> str:
    """The original file's name: a base name (its stem becomes part of the storage names,
    made safe by ``name_part``), no folders, no control characters."""
    if (not filename.strip() or "/" in filename or "\\" in filename
            or filename in (".", "..") or any(ord(c) < 32 or ord(c) == 127 for c in filename)):
        raise InvalidRequest(f"filename {filename!r}: give the original file's name, without "
                             "folders or control characters")
    return filename


async def ingest_upload(files: FileService, catalog_url: str, token: str, caller: Caller,
                        filename: str, body: AsyncIterator[bytes], limit: int) -> IngestReport:
    check_filename(filename)
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

    def checksum(name: str) -> str | None:
        try:
            return asyncio.run_coroutine_threadsafe(files.info(name, hop=True),
                                                    loop).result().sha256
        except NotFound:
            return None

    def run() -> IngestReport:
        with CatalogClient(catalog_url, token) as catalog:
            return Ingester(catalog, store, checksum=checksum).ingest_exposure(exposure)

    return await asyncio.to_thread(run)
