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
import os
from collections.abc import AsyncIterator
from pathlib import Path

from awecore.client import CatalogClient
from awecore.errors import InvalidRequest, NotFound, PayloadTooLarge
from awecore.ingest import Ingester, IngestError, IngestReport, read_exposure
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


#: a FITS file is a sequence of 2880-byte blocks; the first begins ``SIMPLE  =    T``
FITS_BLOCK = 2880


def check_fits_start(head: bytes, filename: str) -> None:
    """Refuse a body whose first bytes are not a FITS primary header: known after 30
    bytes (the SIMPLE card), and its first block (printable ASCII header cards)."""
    card = head[:30]
    if len(card) == 30 and (card[:10] != b"SIMPLE  = " or card[10:].strip() != b"T"):
        raise IngestError(f"{filename}: not a readable FITS file "
                          "(its first card is not SIMPLE = T)")
    block = head[:FITS_BLOCK]
    if len(block) == FITS_BLOCK and any(b < 32 or b > 126 for b in block):
        raise IngestError(f"{filename}: not a readable FITS file "
                          "(its first block is not a header)")


async def spool_upload(body: AsyncIterator[bytes], path: Path, filename: str, limit: int,
                       declared: int | None) -> int:
    """Write the upload to ``path`` as it arrives, never whole in memory: refused by its
    declared length before a byte is read, and while it streams once it passes the limit
    or its first block is not FITS. Returns its size."""
    if declared is not None and declared > limit:
        raise PayloadTooLarge(f"upload of {declared} bytes exceeds the limit of {limit} "
                              "bytes")
    head, size = b"", 0
    out = await asyncio.to_thread(open, path, "wb")
    try:
        async for chunk in body:
            size += len(chunk)
            if size > limit:
                raise PayloadTooLarge(f"upload exceeds the limit of {limit} bytes")
            if len(head) < FITS_BLOCK:
                head += chunk[:FITS_BLOCK - len(head)]
                check_fits_start(head, filename)
            await asyncio.to_thread(out.write, chunk)
    finally:
        await asyncio.to_thread(out.close)
    if len(head) < 30:
        raise IngestError(f"{filename}: not a readable FITS file ({size} bytes)")
    return size


async def ingest_upload(files: FileService, catalog_url: str, token: str, caller: Caller,
                        filename: str, body: AsyncIterator[bytes], limit: int,
                        declared: int | None = None) -> IngestReport:
    check_filename(filename)
    path = files.scratch / f"ingest-{os.urandom(8).hex()}"
    try:
        await spool_upload(body, path, filename, limit, declared)
        return await _ingest_file(files, catalog_url, token, caller, filename, path)
    finally:
        path.unlink(missing_ok=True)


async def _ingest_file(files: FileService, catalog_url: str, token: str, caller: Caller,
                       filename: str, path: Path) -> IngestReport:
    exposure = await asyncio.to_thread(read_exposure, path, filename)
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
