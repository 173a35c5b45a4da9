"""The synchronous client of the lineage service."""

from __future__ import annotations

import datetime as dt
from typing import Any

import httpx

from ..errors import ServiceUnavailable
from ..lineage import Graph, Impact, Path, Staleness
from ._problem import raise_for_problem
from ._request_id import request_id_hooks

__all__ = ["LineageClient"]


def _when(at: str | dt.datetime | None) -> str | None:
    return at.isoformat() if isinstance(at, dt.datetime) else at


class LineageClient:
    def __init__(self, url: str, token: str | None, timeout: float = 60.0) -> None:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        self.url = url.rstrip("/")
        self._http = httpx.Client(base_url=self.url, headers=headers, timeout=timeout,
                                  event_hooks=request_id_hooks())

    def close(self) -> None:
        self._http.close()

    def _get(self, path: str, **params: Any) -> Any:
        try:
            response = self._http.get(path, params={k: v for k, v in params.items()
                                                    if v is not None})
        except httpx.TransportError as exc:
            raise ServiceUnavailable(f"cannot reach lineage at {self.url}: {exc}") from None
        raise_for_problem(response)
        return response.json()

    def upstream(self, oid: str, depth: int | None = None,
                 at: str | dt.datetime | None = None) -> Graph:
        """Where ``oid`` came from; ``at`` a past time: the graph as it was then (NotFound if
        the object did not exist yet)."""
        return Graph.model_validate(self._get(f"/lineage/{oid}/upstream", depth=depth,
                                              at=_when(at)))

    def downstream(self, oid: str, depth: int | None = None,
                   at: str | dt.datetime | None = None) -> Graph:
        return Graph.model_validate(self._get(f"/lineage/{oid}/downstream", depth=depth,
                                              at=_when(at)))

    def impact(self, oid: str) -> Impact:
        return Impact.model_validate(self._get(f"/lineage/{oid}/impact"))

    def staleness(self, oid: str) -> Staleness:
        return Staleness.model_validate(self._get(f"/lineage/{oid}/staleness"))

    def path(self, src: str, dst: str) -> Path:
        return Path.model_validate(self._get("/lineage/path", src=src, dst=dst))

    def prov(self, oid: str, down: bool = False) -> dict[str, Any]:
        return dict(self._get(f"/lineage/{oid}/prov", down=str(down).lower()))

    def openlineage(self, oid: str) -> list[dict[str, Any]]:
        return list(self._get(f"/lineage/{oid}/openlineage"))
