"""Local-filesystem backend: the embedded default.

Data lives at ``root/<name>``, its FileInfo at ``root/.meta/<name>.json``. A file is
published by a hard link from the finished upload, which fails if the name exists: two
uploads of one name cannot both win, and a reader never sees half a file.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator
from pathlib import Path

from awecore.files import FileEntry, FileInfo

from ._base import CHUNK, Stored

__all__ = ["LocalBackend"]


class LocalBackend:
    def __init__(self, root: Path) -> None:
        self.root = root.absolute()
        self.meta = self.root / ".meta"
        self.tmp = self.root / ".tmp"
        for d in (self.root, self.meta, self.tmp):
            d.mkdir(parents=True, exist_ok=True)

    def _path(self, name: str) -> Path:
        return self.root / name

    def _meta(self, name: str) -> Path:
        return self.meta / f"{name}.json"

    def scratch(self) -> Path:
        return self.tmp

    async def put(self, name: str, path: Path, info: FileInfo) -> None:
        def publish() -> None:
            target = self._path(name)
            target.parent.mkdir(parents=True, exist_ok=True)
            meta = self._meta(name)
            meta.parent.mkdir(parents=True, exist_ok=True)
            try:
                os.link(path, target)
            except FileExistsError:
                raise Stored(name) from None
            tmp_meta = self.tmp / f"{os.urandom(8).hex()}.json"
            tmp_meta.write_text(info.model_dump_json())
            os.replace(tmp_meta, meta)

        await asyncio.to_thread(publish)

    async def info(self, name: str) -> FileInfo | None:
        def load() -> FileInfo | None:
            try:
                return FileInfo.model_validate_json(self._meta(name).read_text())
            except FileNotFoundError:
                return None

        return await asyncio.to_thread(load)

    async def read(self, name: str, start: int = 0,
                   length: int | None = None) -> AsyncIterator[bytes]:
        f = await asyncio.to_thread(open, self._path(name), "rb")
        try:
            await asyncio.to_thread(f.seek, start)
            left = length
            while left is None or left > 0:
                chunk = await asyncio.to_thread(f.read, CHUNK if left is None else min(CHUNK, left))
                if not chunk:
                    break
                if left is not None:
                    left -= len(chunk)
                yield chunk
        finally:
            f.close()

    async def list(self, prefix: str, after: str | None, limit: int) -> list[FileEntry]:
        def scan() -> list[FileEntry]:
            names = []
            for dirpath, dirnames, filenames in os.walk(self.root):
                rel = os.path.relpath(dirpath, self.root)
                if rel.split(os.sep)[0] in (".meta", ".tmp"):
                    dirnames[:] = []
                    continue
                for fn in filenames:
                    name = fn if rel == "." else f"{rel.replace(os.sep, '/')}/{fn}"
                    if name.startswith(prefix) and (after is None or name > after):
                        names.append(name)
            names.sort()
            return [FileEntry(name=n, size=self._path(n).stat().st_size) for n in names[:limit]]

        return await asyncio.to_thread(scan)

    async def delete(self, name: str) -> None:
        def remove() -> None:
            self._meta(name).unlink(missing_ok=True)
            self._path(name).unlink(missing_ok=True)

        await asyncio.to_thread(remove)

    async def aclose(self) -> None:
        return None
