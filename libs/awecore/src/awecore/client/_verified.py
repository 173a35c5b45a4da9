"""Reading a file as the catalogue describes it: the checks both storage clients make.

With the ``sha256`` and ``size`` the catalogue recorded, storage's own checksum header and
length are compared first (a file recorded with other bytes is not downloaded), then the
bytes as they arrive; a difference raises :class:`~awecore.errors.ChecksumMismatch` naming
both values, before anything is computed from them.
"""

from __future__ import annotations

import hashlib

import httpx

from ..errors import ChecksumMismatch, ServiceUnavailable

__all__ = ["CHUNK", "VerifiedRead"]

CHUNK = 1024 * 1024


class VerifiedRead:
    """One file's bytes gathered while they are checked."""

    def __init__(self, name: str, sha256: str | None, size: int | None) -> None:
        self.name = name
        self.sha256 = sha256.lower() if sha256 is not None else None
        self.size = size
        self._digest = hashlib.sha256()
        self._chunks: list[bytes] = []

    def headers(self, response: httpx.Response) -> None:
        """Storage's checksum and length against the catalogue's, before any byte."""
        stored = response.headers.get("x-checksum-sha256")
        if self.sha256 is not None and stored and stored != self.sha256:
            raise ChecksumMismatch.of(self.name, self.sha256, stored)
        length = response.headers.get("content-length")
        if self.size is not None and length is not None and int(length) != self.size:
            raise ChecksumMismatch.of(self.name, str(self.size), length, "size")

    def add(self, chunk: bytes) -> None:
        self._digest.update(chunk)
        self._chunks.append(chunk)

    def result(self) -> bytes:
        """The bytes, once their size and sha256 are the catalogue's."""
        data = b"".join(self._chunks)
        if self.size is not None and len(data) != self.size:
            raise ChecksumMismatch.of(self.name, str(self.size), str(len(data)), "size")
        if self.sha256 is not None and self._digest.hexdigest() != self.sha256:
            raise ChecksumMismatch.of(self.name, self.sha256, self._digest.hexdigest())
        return data

    def cut(self, url: str, exc: httpx.TransportError) -> ServiceUnavailable:
        """What a read cut short means (storage cuts a file failing its own checksum)."""
        return ServiceUnavailable(
            f"reading {self.name} from storage at {url} failed: {exc} (storage cuts a "
            "file that fails its own checksum; POST /verify tells)")
