"""The rules of the dataserver: write once, checksum always, raw data is sacred."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import hashlib
import os
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import structlog

from awecore.client import AsyncCatalogClient, async_request_id_hooks
from awecore.errors import (
    Conflict,
    Forbidden,
    InvalidRequest,
    NotFound,
    PayloadTooLarge,
    ServiceUnavailable,
)
from awecore.files import RAW_PREFIX, FileInfo, FilePage, Verification, check_name, url_path
from awecore.query import Compare, QuerySpec
from awecore.server import Identity as Caller
from awecore.visibility import Viewer, may_read_file, may_write_file

from ..backends import Backend, Stored
from ..config import Peer
from .access import FileOwners
from .events import FileEvents

__all__ = ["CorruptFile", "FileService", "truncated"]

log = structlog.get_logger("awe.storage")
PEER_HOP = "x-awe-peer-hop"


async def spool(chunks: AsyncIterator[bytes], path: Path,
                limit: int | None) -> tuple[int, str]:
    """Write chunks to a scratch file off the event loop; returns size and sha256."""
    digest, size = hashlib.sha256(), 0
    out = await asyncio.to_thread(open, path, "wb")
    try:
        async for chunk in chunks:
            size += len(chunk)
            if limit is not None and size > limit:
                raise PayloadTooLarge(f"upload exceeds the limit of {limit} bytes; "
                                      "nothing was stored")
            digest.update(chunk)
            await asyncio.to_thread(out.write, chunk)
    finally:
        await asyncio.to_thread(out.close)
    return size, digest.hexdigest()


def truncated(received: int, declared: int) -> str:
    """What an upload whose length is not its Content-Length is told."""
    if received < declared:
        return (f"upload truncated: received {received} of the {declared} bytes its "
                "Content-Length declared; nothing was stored")
    return (f"upload longer than declared: received {received} bytes, its Content-Length "
            f"declared {declared}; nothing was stored")


class CorruptFile(Exception):
    """Stored bytes no longer match their checksum."""


class FileService:
    def __init__(self, backend: Backend, scratch: Path, site: str, max_upload: int,
                 catalog: AsyncCatalogClient, peers: list[Peer], events: FileEvents,
                 owners: FileOwners | None = None) -> None:
        self.backend = backend
        #: who owns a file, for deciding who may read it (awecore.visibility's rule)
        self.owners = owners if owners is not None else FileOwners(catalog)
        self.scratch = scratch
        self.site = site
        self.max_upload = max_upload
        self.catalog = catalog
        self.peers = peers
        self.events = events

    # -- writing -----------------------------------------------------------------------
    async def put(self, name: str, body: AsyncIterator[bytes], caller: Caller,
                  declared: int | None = None) -> FileInfo:
        """Store a file; the stored FileInfo (see :meth:`store`)."""
        info, _ = await self.store(name, body, caller, declared)
        return info

    async def store(self, name: str, body: AsyncIterator[bytes], caller: Caller,
                    declared: int | None = None) -> tuple[FileInfo, bool]:
        """Spool the body to scratch while hashing; publish only a complete upload.

        Write once, verified: a name that is taken already keeps its file, and the upload
        succeeds only if it holds the same bytes (same sha256: an idempotent retry), giving
        the stored FileInfo; other bytes are a Conflict naming both checksums. Returns the
        FileInfo and whether this upload stored it. Raw names are written by ingest only
        (admins and service accounts): a user could otherwise squat the name of a raw file
        to come."""
        check_name(name)
        if not may_write_file(Viewer.of(caller), name):
            raise Forbidden(f"{name}: raw data ({RAW_PREFIX}) is written only by ingest, by "
                            "an admin or a service account")
        if declared is not None and declared > self.max_upload:
            raise PayloadTooLarge(f"{declared} bytes exceeds the upload limit of "
                                  f"{self.max_upload} bytes")
        tmp = self.scratch / f"upload-{os.urandom(8).hex()}"
        try:
            size, sha256 = await spool(body, tmp, self.max_upload)
            if declared is not None and size != declared:
                raise InvalidRequest(truncated(size, declared))
            existing = await self.backend.info(name)
            if existing is not None:
                return self._same(existing, size, sha256), False
            info = FileInfo(name=name, size=size, sha256=sha256, owner=caller.name,
                            created=dt.datetime.now(dt.UTC), site=self.site)
            try:
                await self.backend.put(name, tmp, info)
            except Stored:  # another upload of the name won the race
                existing = await self.backend.info(name)
                if existing is None:
                    raise Conflict(f"{name} is being written by another upload; "
                                   "try again") from None
                return self._same(existing, size, sha256), False
        finally:
            tmp.unlink(missing_ok=True)
        log.info("stored", name=name, size=size, owner=caller.name)
        await self.events.stored(info)
        return info, True

    @staticmethod
    def _same(existing: FileInfo, size: int, sha256: str) -> FileInfo:
        """The stored file, if the upload holds its bytes; otherwise a Conflict."""
        if existing.sha256 == sha256 and existing.size == size:
            return existing
        raise Conflict(
            f"{existing.name} exists already with other bytes; files are written once "
            f"(stored: sha256 {existing.sha256}, {existing.size} bytes; uploaded: sha256 "
            f"{sha256}, {size} bytes); nothing was changed")

    async def delete(self, name: str, caller: Caller) -> None:
        check_name(name)
        if name.startswith(RAW_PREFIX):
            raise Forbidden(f"{name} is raw data, and raw data is never deleted")
        info = await self.readable(name, caller)
        if not (caller.is_admin or caller.name == info.owner):
            raise Forbidden(f"only {info.owner} or an admin may delete {name}")
        spec = QuerySpec(cls="DataObject", where=Compare(op="eq", path=("filename",), value=name))
        users = await self.catalog.count(spec)
        if users:
            raise Conflict(f"{name} is the file of {users} catalog object(s); it stays")
        await self.backend.delete(name)
        log.info("deleted", name=name, by=caller.name)
        await self.events.deleted(name, caller.name)

    # -- reading -----------------------------------------------------------------------
    async def info(self, name: str, hop: bool = False) -> FileInfo:
        check_name(name)
        info = await self.backend.info(name)
        if info is None and not hop:
            info = await self._from_peers(name)
        if info is None:
            raise NotFound(f"no file {name}")
        return info

    async def readable(self, name: str, caller: Caller, hop: bool = False) -> FileInfo:
        """The file's FileInfo if ``caller`` may read it; NotFound (the same as for a
        missing file: a refusal would confirm it exists) if not. An anonymous caller is
        refused before anything is looked up or fetched from a peer site: only the files of
        public objects are theirs, whoever wrote them."""
        if caller.is_anonymous and not await self.owners.readable(caller, name, None):
            raise NotFound(f"no file {name}")
        info = await self.info(name, hop)
        if not await self.owners.readable(caller, name, info.owner):
            raise NotFound(f"no file {name}")
        return info

    async def read(self, info: FileInfo, start: int = 0,
                   length: int | None = None) -> AsyncIterator[bytes]:
        """The bytes; a whole-file read is checked, and the last chunk is held back until
        the checksum matches, so a corrupt file never arrives complete."""
        if start != 0 or (length is not None and length != info.size):
            async for chunk in self.backend.read(info.name, start, length):
                yield chunk
            return
        digest = hashlib.sha256()
        held: bytes | None = None
        async for chunk in self.backend.read(info.name):
            digest.update(chunk)
            if held is not None:
                yield held
            held = chunk
        if digest.hexdigest() != info.sha256:
            log.error("corrupt file", name=info.name, expected=info.sha256,
                      actual=digest.hexdigest())
            raise CorruptFile(info.name)
        if held is not None:
            yield held

    async def verify(self, name: str, caller: Caller) -> Verification:
        info = await self.readable(name, caller, hop=True)
        digest, size = hashlib.sha256(), 0
        async for chunk in self.backend.read(name):
            digest.update(chunk)
            size += len(chunk)
        ok = digest.hexdigest() == info.sha256 and size == info.size
        if not ok:
            log.error("corrupt file", name=name, expected=info.sha256, actual=digest.hexdigest())
        return Verification(name=name, ok=ok, expected_sha256=info.sha256,
                            actual_sha256=digest.hexdigest(), size=size)

    async def list(self, prefix: str, after: str | None, limit: int,
                   caller: Caller) -> FilePage:
        """A page of the names under ``prefix`` that the caller may read. The page is cut
        from the backend's listing before filtering, so it may hold fewer than ``limit``
        files (even none) while ``next_after`` says more follow."""
        files = await self.backend.list(prefix, after, limit + 1)
        more = len(files) > limit
        page = files[:limit]
        if not caller.sees_all and page:
            owners = await self.owners.of([f.name for f in page])
            viewer = Viewer.of(caller)
            kept = []
            for f in page:
                if owners[f.name]:
                    ok = may_read_file(viewer, owners[f.name], None)
                else:  # nobody owns it yet: its writer's (one look-up, for these only)
                    info = await self.backend.info(f.name)
                    ok = info is not None and may_read_file(viewer, (), info.owner)
                if ok:
                    kept.append(f)
            return FilePage(files=kept, next_after=files[limit - 1].name if more else None)
        return FilePage(files=page, next_after=files[limit - 1].name if more else None)

    # -- peers -------------------------------------------------------------------------
    async def _from_peers(self, name: str) -> FileInfo | None:
        """Ask the other sites; a file found is fetched, checked and cached here."""
        for peer in self.peers:
            try:
                info = await self._fetch(peer, name)
            except (httpx.HTTPError, ServiceUnavailable) as exc:
                log.warning("peer unavailable", peer=peer.site, error=repr(exc))
                continue
            if info is not None:
                return info
        return None

    async def _fetch(self, peer: Peer, name: str) -> FileInfo | None:
        headers = {"Authorization": f"Bearer {peer.token.get_secret_value()}", PEER_HOP: "1"}
        tmp = self.scratch / f"peer-{os.urandom(8).hex()}"
        async with httpx.AsyncClient(base_url=peer.url, timeout=300,
                                     event_hooks=async_request_id_hooks()) as http, \
                http.stream("GET", f"/files/{url_path(name)}", headers=headers) as response:
            if response.status_code == 404:
                return None
            response.raise_for_status()
            expected = response.headers.get("x-checksum-sha256", "")
            try:
                _, sha256 = await spool(response.aiter_bytes(1024 * 1024), tmp, None)
                if sha256 != expected:
                    log.error("peer sent a corrupt file", peer=peer.site, name=name)
                    return None
                info = FileInfo(name=name, size=tmp.stat().st_size, sha256=expected,
                                owner=response.headers.get("x-owner", ""),
                                created=dt.datetime.now(dt.UTC), site=peer.site)
                with contextlib.suppress(Stored):
                    await self.backend.put(name, tmp, info)
            finally:
                tmp.unlink(missing_ok=True)
        log.info("fetched from peer", peer=peer.site, name=name, size=info.size)
        return await self.backend.info(name)


def content_headers(info: FileInfo) -> dict[str, Any]:
    return {"x-checksum-sha256": info.sha256, "x-owner": info.owner, "x-site": info.site,
            "accept-ranges": "bytes", "etag": f'"{info.sha256}"'}
