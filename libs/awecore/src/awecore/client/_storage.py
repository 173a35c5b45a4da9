"""The synchronous client of the storage service.

Every name travels percent-encoded (:func:`awecore.files.url_path`): a ``#`` or ``%`` in a
name is part of the name, never a URL fragment or escape.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import httpx

from ..errors import InvalidRequest, ServiceUnavailable
from ..files import FileInfo, FilePage, Verification, url_path
from ..model import DBObject, ObjectOut
from ._problem import raise_for_problem
from ._request_id import request_id_hooks
from ._verified import CHUNK, VerifiedRead

__all__ = ["StorageClient"]


class StorageClient:
    def __init__(self, url: str, token: str | None, timeout: float = 300.0) -> None:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        self.url = url.rstrip("/")
        self._http = httpx.Client(base_url=self.url, headers=headers, timeout=timeout,
                                  event_hooks=request_id_hooks())

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> StorageClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _call(self, method: str, path: str, **kwargs: object) -> httpx.Response:
        try:
            response = self._http.request(method, path, **kwargs)  # type: ignore[arg-type]
        except httpx.TransportError as exc:
            raise ServiceUnavailable(f"cannot reach storage at {self.url}: {exc}") from None
        raise_for_problem(response)
        return response

    def put(self, name: str, data: bytes | Path) -> FileInfo:
        """Store a file under a new name; the stored FileInfo. Storing the same bytes under
        a name again is a success (an idempotent retry: the FileInfo of the first write);
        other bytes under a taken name raise :class:`~awecore.errors.Conflict`, whose detail
        names both checksums."""
        path = f"/files/{url_path(name)}"
        if isinstance(data, Path):
            with data.open("rb") as f:
                response = self._call("PUT", path, content=f,
                                      headers={"content-length": str(data.stat().st_size)})
        else:
            response = self._call("PUT", path, content=data)
        return FileInfo.model_validate(response.json())

    def get(self, name: str, start: int | None = None, end: int | None = None, *,
            sha256: str | None = None, size: int | None = None,
            progress: Callable[[int], None] | None = None) -> bytes:
        """The bytes of a file, or of its bytes ``start`` to ``end`` (inclusive).

        With ``sha256`` and/or ``size`` (what the catalogue records for the file) the whole
        file is checked against them, and :class:`~awecore.errors.ChecksumMismatch` (naming
        both values) is raised when they differ, before the bytes are used. Storage's own
        checksum is compared first, so a file recorded with other bytes is not downloaded.
        ``progress`` is called with the size of each chunk as it arrives (a verified read)."""
        if start is not None or end is not None:
            if sha256 is not None or size is not None:
                raise InvalidRequest("sha256 and size verify a whole file; leave out start "
                                     "and end, or verify the part yourself")
            headers = {"Range": f"bytes={start or 0}-{'' if end is None else end}"}
            return self._call("GET", f"/files/{url_path(name)}", headers=headers).content
        if sha256 is None and size is None:
            return self._call("GET", f"/files/{url_path(name)}").content
        return self._get_verified(name, sha256, size, progress)

    def _get_verified(self, name: str, sha256: str | None, size: int | None,
                      progress: Callable[[int], None] | None = None) -> bytes:
        read = VerifiedRead(name, sha256, size)
        try:
            with self._http.stream("GET", f"/files/{url_path(name)}") as response:
                if not response.is_success:
                    response.read()
                    raise_for_problem(response)
                read.headers(response)
                for chunk in response.iter_bytes(CHUNK):
                    read.add(chunk)
                    if progress is not None:
                        progress(len(chunk))
        except httpx.TransportError as exc:
            raise read.cut(self.url, exc) from None
        return read.result()

    def download(self, obj: DBObject | ObjectOut, to: Path | None = None,
                 progress: Callable[[int], None] | None = None) -> bytes:
        """The file of a catalogue object, checked against the ``checksum`` and
        ``file_size`` its record holds (whichever it has): a file that is not the one the
        catalogue describes raises :class:`~awecore.errors.ChecksumMismatch`. With ``to``,
        the bytes are also written there (only once checked)."""
        record = obj if isinstance(obj, ObjectOut) else obj.record
        if record is None:
            raise InvalidRequest("the object is not stored in the catalogue yet: no file")
        if record.filename is None:
            raise InvalidRequest(f"{record.type} {record.oid} has no file")
        data = self.get(record.filename, sha256=record.checksum, size=record.file_size,
                        progress=progress)
        if to is not None:
            to.write_bytes(data)
        return data

    def head(self, name: str) -> dict[str, str]:
        return dict(self._call("HEAD", f"/files/{url_path(name)}").headers)

    def list(self, prefix: str = "", after: str | None = None, limit: int = 1000) -> FilePage:
        params: dict[str, str | int] = {"prefix": prefix, "limit": limit}
        if after is not None:
            params["after"] = after
        return FilePage.model_validate(self._call("GET", "/files", params=params).json())

    def delete(self, name: str) -> None:
        self._call("DELETE", f"/files/{url_path(name)}")

    def verify(self, name: str) -> Verification:
        """Storage re-reads the file and hashes it: ``actual_sha256`` is what it holds now,
        ``expected_sha256`` what it recorded when the file was written."""
        return Verification.model_validate(
            self._call("POST", f"/verify/{url_path(name)}").json())
