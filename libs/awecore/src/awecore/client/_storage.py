"""The synchronous client of the storage service."""

from __future__ import annotations

from pathlib import Path

import httpx

from ..errors import ServiceUnavailable
from ..files import FileInfo, FilePage, Verification
from ._problem import raise_for_problem

__all__ = ["StorageClient"]


class StorageClient:
    def __init__(self, url: str, token: str | None, timeout: float = 300.0) -> None:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        self.url = url.rstrip("/")
        self._http = httpx.Client(base_url=self.url, headers=headers, timeout=timeout)

    def close(self) -> None:
        self._http.close()

    def _call(self, method: str, path: str, **kwargs: object) -> httpx.Response:
        try:
            response = self._http.request(method, path, **kwargs)  # type: ignore[arg-type]
        except httpx.TransportError as exc:
            raise ServiceUnavailable(f"cannot reach storage at {self.url}: {exc}") from None
        raise_for_problem(response)
        return response

    def put(self, name: str, data: bytes | Path) -> FileInfo:
        if isinstance(data, Path):
            with data.open("rb") as f:
                response = self._call("PUT", f"/files/{name}", content=f,
                                      headers={"content-length": str(data.stat().st_size)})
        else:
            response = self._call("PUT", f"/files/{name}", content=data)
        return FileInfo.model_validate(response.json())

    def get(self, name: str, start: int | None = None, end: int | None = None) -> bytes:
        headers = {}
        if start is not None or end is not None:
            headers["Range"] = f"bytes={start or 0}-{'' if end is None else end}"
        return self._call("GET", f"/files/{name}", headers=headers).content

    def head(self, name: str) -> dict[str, str]:
        return dict(self._call("HEAD", f"/files/{name}").headers)

    def list(self, prefix: str = "", after: str | None = None, limit: int = 1000) -> FilePage:
        params: dict[str, str | int] = {"prefix": prefix, "limit": limit}
        if after is not None:
            params["after"] = after
        return FilePage.model_validate(self._call("GET", "/files", params=params).json())

    def delete(self, name: str) -> None:
        self._call("DELETE", f"/files/{name}")

    def verify(self, name: str) -> Verification:
        return Verification.model_validate(self._call("POST", f"/verify/{name}").json())
