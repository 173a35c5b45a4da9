from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Protocol

from awecore.files import FileEntry, FileInfo

__all__ = ["CHUNK", "Backend", "Stored"]

CHUNK = 1024 * 1024


class Stored(Exception):
    """The name is taken: files are written once."""


class Backend(Protocol):
    """Write-once file store. ``put`` takes a finished local file (already checksummed)."""

    async def put(self, name: str, path: Path, info: FileInfo) -> None: ...

    async def info(self, name: str) -> FileInfo | None: ...

    def read(self, name: str, start: int = 0, length: int | None = None) -> \
        AsyncIterator[bytes]: ...

    async def list(self, prefix: str, after: str | None, limit: int) -> list[FileEntry]: ...

    async def delete(self, name: str) -> None: ...

    async def aclose(self) -> None: ...
