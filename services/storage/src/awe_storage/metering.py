"""Bytes in and out of the store, for the metrics: a Backend that counts what passes."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

from awecore.files import FileEntry, FileInfo
from awecore.server import Metrics

from .backends import Backend

__all__ = ["MeteredBackend"]


class MeteredBackend:
    """Counts ``awe_storage_bytes_total`` by direction (written, read) and
    ``awe_storage_files_total`` by operation (stored, deleted) around another backend."""

    def __init__(self, inner: Backend, metrics: Metrics) -> None:
        self.inner = inner
        moved = metrics.counter("bytes", "bytes written to and read from the store",
                                ["direction"])
        self.written, self.read_bytes = moved.labels("written"), moved.labels("read")
        files = metrics.counter("files", "files stored and deleted", ["operation"])
        self.stored, self.deleted = files.labels("stored"), files.labels("deleted")

    async def put(self, name: str, path: Path, info: FileInfo) -> None:
        await self.inner.put(name, path, info)
        self.written.inc(info.size)
        self.stored.inc()

    async def info(self, name: str) -> FileInfo | None:
        return await self.inner.info(name)

    async def read(self, name: str, start: int = 0,
                   length: int | None = None) -> AsyncIterator[bytes]:
        async for chunk in self.inner.read(name, start, length):
            self.read_bytes.inc(len(chunk))
            yield chunk

    async def list(self, prefix: str, after: str | None, limit: int) -> list[FileEntry]:
        return await self.inner.list(prefix, after, limit)

    async def delete(self, name: str) -> None:
        await self.inner.delete(name)
        self.deleted.inc()

    async def aclose(self) -> None:
        await self.inner.aclose()
