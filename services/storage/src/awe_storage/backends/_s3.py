"""S3 backend through the minio client (MinIO in production; moto's server in tests).

The finished upload is sent with its checksum, owner and time as object metadata. The
minio client is synchronous: every call runs in a worker thread.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from minio import Minio
from minio.error import S3Error

from awecore.files import FileEntry, FileInfo

from ..config import S3Settings
from ._base import CHUNK, Stored

__all__ = ["S3Backend"]

_MISSING = ("NoSuchKey", "NoSuchObject", "ResourceNotFound")


class S3Backend:
    def __init__(self, settings: S3Settings, scratch: Path) -> None:
        self.settings = settings
        self.bucket = settings.bucket
        self.client = Minio(**settings.client_kwargs())  # type: ignore[arg-type]
        self._scratch = scratch
        scratch.mkdir(parents=True, exist_ok=True)

    def scratch(self) -> Path:
        return self._scratch

    async def ensure_bucket(self) -> None:
        def make() -> None:
            if not self.client.bucket_exists(self.bucket):
                self.client.make_bucket(self.bucket)

        await asyncio.to_thread(make)

    async def put(self, name: str, path: Path, info: FileInfo) -> None:
        if await self.info(name) is not None:
            raise Stored(name)
        meta = {"sha256": info.sha256, "owner": info.owner, "site": info.site,
                "created": info.created.isoformat()}
        await asyncio.to_thread(self.client.fput_object, self.bucket, name, str(path),
                                metadata=meta)  # type: ignore[arg-type]

    async def info(self, name: str) -> FileInfo | None:
        try:
            stat = await asyncio.to_thread(self.client.stat_object, self.bucket, name)
        except S3Error as exc:
            if exc.code in _MISSING:
                return None
            raise
        meta: dict[str, Any] = {k.lower().removeprefix("x-amz-meta-"): v
                                for k, v in (stat.metadata or {}).items()}
        return FileInfo(name=name, size=stat.size or 0, sha256=meta.get("sha256", ""),
                        owner=meta.get("owner", ""), site=meta.get("site", ""),
                        created=dt.datetime.fromisoformat(meta["created"])
                        if "created" in meta else stat.last_modified or dt.datetime.now(dt.UTC))

    async def read(self, name: str, start: int = 0,
                   length: int | None = None) -> AsyncIterator[bytes]:
        response = await asyncio.to_thread(self.client.get_object, self.bucket, name,
                                           offset=start, length=length or 0)
        try:
            while True:
                chunk = await asyncio.to_thread(response.read, CHUNK)
                if not chunk:
                    break
                yield chunk
        finally:
            response.close()
            response.release_conn()

    async def list(self, prefix: str, after: str | None, limit: int) -> list[FileEntry]:
        def scan() -> list[FileEntry]:
            out = []
            for obj in self.client.list_objects(self.bucket, prefix=prefix, recursive=True,
                                                start_after=after or ""):
                out.append(FileEntry(name=obj.object_name or "", size=obj.size or 0))
                if len(out) >= limit:
                    break
            return out

        return await asyncio.to_thread(scan)

    async def delete(self, name: str) -> None:
        await asyncio.to_thread(self.client.remove_object, self.bucket, name)

    async def aclose(self) -> None:
        return None
