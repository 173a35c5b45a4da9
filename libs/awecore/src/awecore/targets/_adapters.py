"""The ports (``_ports``) over AWE's clients.

- :class:`CatalogPorts` over the async catalogue client: what a service or worker plugs in
  (the async storage client is a :class:`~._ports.FileStore` as it is).
- :class:`BlockingCatalog` and :class:`BlockingFiles` over the synchronous clients a
  scientist holds: coroutines that call the blocking client. They are for the sync facade
  only (``_sync``), which runs the planner and the maker on a private event loop where
  nothing else waits, so blocking it costs nothing and the session's client (its token,
  its connection) is the one used.

Nothing here imports the client at run time: the adapters take any object with its methods.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, Protocol

from ..dimensions import MAX_BEST
from ..errors import InvalidRequest, NotFound
from ..files import FileInfo
from ..query import QueryPage, QuerySpec
from ..records import CurationChange, ObjectIn, ObjectOut
from ..source_columns import MEDIA_TYPE as SOURCES_FITS
from ..source_columns import encode_fits
from ._ports import Calibration

__all__ = ["BlockingCatalog", "BlockingFiles", "CatalogPorts", "SyncCatalog", "SyncStorage"]

#: records per query page when the planner reads everything a query selects: the most the
#: catalog allows (a plan reads 10^4 raw frames; each page is a round trip)
PAGE_SIZE = 1000
#: best calibrations asked at once of a catalogue that answers one per request (older)
BEST_CONCURRENCY = 8
#: look-ups per ``POST /calibrations/best`` (the catalogue takes up to MAX_BEST)
BEST_BATCH = min(5000, MAX_BEST)
#: rows per ``POST /query/values`` page (the most the catalog gives)
VALUES_PAGE = 10_000


async def _all_values(page: Callable[[dict[str, Any]], Awaitable[Any]],
                      paths: Callable[[], Awaitable[Any]], spec: QuerySpec,
                      fields: Sequence[str]) -> list[list[Any]] | None:
    """Every row of ``POST /query/values`` for ``spec``, page after page (``page`` sends one
    body); None from an older catalogue, whose API (``paths``: its OpenAPI document) has no
    such route (then the caller reads the records, as before the route was there). A 404
    from a catalogue that has the route is its answer, and is raised."""
    rows: list[list[Any]] = []
    offset: int | None = 0
    while offset is not None:
        try:
            got = await page({"query": spec.model_dump(mode="json"), "fields": list(fields),
                              "offset": offset, "limit": VALUES_PAGE})
        except NotFound:
            if "/query/values" in ((await paths()).get("paths") or {}):
                raise
            return None  # an older catalogue: the route is not there
        rows += got["rows"]
        offset = got["next_offset"] if got["rows"] else None
    return rows


def _best_body(wanted: Sequence[Calibration]) -> dict[str, Any]:
    return {"requests": [{"cls": c.cls, "chip": c.chip, "time": c.time.isoformat(),
                          **({"filter": c.filter} if c.filter is not None else {}),
                          **({"until": c.until.isoformat()} if c.until is not None else {})}
                         for c in wanted]}


def _best_answer(got: Any) -> list[ObjectOut | None]:
    return [None if o is None else ObjectOut.model_validate(o) for o in got["objects"]]


def _over_answer(got: Any) -> list[tuple[ObjectOut | None, bool]]:
    varies = set(got.get("varies") or ())
    return [(found, i not in varies) for i, found in enumerate(_best_answer(got))]


def _unknown(wanted: Sequence[Calibration]) -> list[tuple[ObjectOut | None, bool]]:
    """What a catalogue that cannot answer for spans (older) tells: nothing, ask per moment."""
    return [(None, False)] * len(wanted)


def _history(got: Any) -> list[CurationChange]:
    return [CurationChange.model_validate(c) for c in got]


class _AsyncCatalog(Protocol):
    """What :class:`CatalogPorts` uses of ``awecore.client.AsyncCatalogClient``."""

    async def get_records(self, oids: Sequence[str]) -> dict[str, ObjectOut]: ...

    async def find(self, spec: QuerySpec, limit: int | None = None) -> list[ObjectOut]: ...

    async def best(self, cls: str, chip: str, time: dt.datetime,
                   filter: str | None = None) -> ObjectOut: ...

    async def request(self, method: str, path: str, token: str | None = None,
                      **kwargs: Any) -> Any: ...

    async def create_batch(self, objects: Sequence[ObjectIn]) -> list[str]: ...

    async def load_sources(self, oid: str, rows: dict[str, list[Any]]) -> int: ...

    async def count_sources(self, spec: QuerySpec) -> int: ...


class CatalogPorts:
    """CatalogReader and CatalogWriter over the async catalogue client."""

    def __init__(self, client: _AsyncCatalog) -> None:
        self.client = client

    async def get_records(self, oids: Sequence[str]) -> dict[str, ObjectOut]:
        return await self.client.get_records(oids) if oids else {}

    async def find(self, spec: QuerySpec, limit: int | None = None) -> list[ObjectOut]:
        return await self.client.find(spec, limit)

    async def best(self, wanted: Sequence[Calibration]) -> list[ObjectOut | None]:
        """Many look-ups in one request each BEST_BATCH (``POST /calibrations/best``); a
        catalogue without that endpoint is asked one at a time."""
        out: list[ObjectOut | None] = []
        for i in range(0, len(wanted), BEST_BATCH):
            chunk = wanted[i:i + BEST_BATCH]
            try:
                out += _best_answer(await self.client.request(
                    "POST", "/calibrations/best", json=_best_body(chunk)))
            except NotFound:  # an older catalogue: POST /calibrations/best is no route
                out += await self._one_by_one(chunk)
        return out

    async def _one_by_one(self, wanted: Sequence[Calibration]) -> list[ObjectOut | None]:
        gate = asyncio.Semaphore(BEST_CONCURRENCY)

        async def one(c: Calibration) -> ObjectOut | None:
            async with gate:
                try:
                    return await self.client.best(c.cls, c.chip, c.time, c.filter)
                except NotFound:
                    return None

        return list(await asyncio.gather(*(one(c) for c in wanted)))

    async def best_over(self, wanted: Sequence[Calibration]
                        ) -> list[tuple[ObjectOut | None, bool]]:
        """Look-ups for spans of time, BEST_BATCH a request (``CatalogSpans``)."""
        out: list[tuple[ObjectOut | None, bool]] = []
        for i in range(0, len(wanted), BEST_BATCH):
            chunk = wanted[i:i + BEST_BATCH]
            try:
                out += _over_answer(await self.client.request(
                    "POST", "/calibrations/best", json=_best_body(chunk)))
            except (NotFound, InvalidRequest):  # an older catalogue: no spans
                out += _unknown(chunk)
        return out

    async def values(self, spec: QuerySpec, fields: Sequence[str]) -> list[list[Any]] | None:
        """Every row ``POST /query/values`` gives (``CatalogValues``); None from a catalogue
        without it."""
        async def page(body: dict[str, Any]) -> Any:
            return await self.client.request("POST", "/query/values", json=body)

        async def paths() -> Any:
            return await self.client.request("GET", "/openapi.json")

        return await _all_values(page, paths, spec, fields)

    async def history(self, oid: str) -> list[CurationChange]:
        return _history(await self.client.request("GET", f"/objects/{oid}/history"))

    async def create(self, objects: Sequence[ObjectIn]) -> list[str]:
        return await self.client.create_batch(objects)

    async def load_sources(self, oid: str, rows: dict[str, list[Any]]) -> int:
        return await self.client.load_sources(oid, rows)

    async def count_sources(self, spec: QuerySpec) -> int:
        return await self.client.count_sources(spec)


class SyncCatalog(Protocol):
    """What :class:`BlockingCatalog` uses of ``awecore.client.CatalogClient``."""

    def get_records(self, oids: Sequence[str]) -> dict[str, ObjectOut]: ...

    def query_page(self, spec: QuerySpec, offset: int, limit: int) -> QueryPage: ...

    def request(self, method: str, path: str, **kwargs: Any) -> Any: ...

    def count_sources(self, spec: QuerySpec) -> int: ...


class BlockingCatalog:
    """CatalogReader and CatalogWriter over the synchronous catalogue client (blocking:
    for the private loop of the sync facade only)."""

    def __init__(self, client: SyncCatalog) -> None:
        self.client = client

    async def get_records(self, oids: Sequence[str]) -> dict[str, ObjectOut]:
        return self.client.get_records(oids) if oids else {}

    async def find(self, spec: QuerySpec, limit: int | None = None) -> list[ObjectOut]:
        out: list[ObjectOut] = []
        while limit is None or len(out) < limit:
            size = PAGE_SIZE if limit is None else min(PAGE_SIZE, limit - len(out))
            page = self.client.query_page(spec, len(out), size)
            out.extend(page.objects)
            if page.next_offset is None or not page.objects:
                break
        return out

    async def best(self, wanted: Sequence[Calibration]) -> list[ObjectOut | None]:
        out: list[ObjectOut | None] = []
        for i in range(0, len(wanted), BEST_BATCH):
            chunk = wanted[i:i + BEST_BATCH]
            try:
                out += _best_answer(self.client.request("POST", "/calibrations/best",
                                                        json=_best_body(chunk)))
            except NotFound:  # an older catalogue: one request each
                out += [self._one(c) for c in chunk]
        return out

    async def best_over(self, wanted: Sequence[Calibration]
                        ) -> list[tuple[ObjectOut | None, bool]]:
        """Look-ups for spans of time, BEST_BATCH a request (``CatalogSpans``)."""
        out: list[tuple[ObjectOut | None, bool]] = []
        for i in range(0, len(wanted), BEST_BATCH):
            chunk = wanted[i:i + BEST_BATCH]
            try:
                out += _over_answer(self.client.request("POST", "/calibrations/best",
                                                        json=_best_body(chunk)))
            except (NotFound, InvalidRequest):  # an older catalogue: no spans
                out += _unknown(chunk)
        return out

    def _one(self, c: Calibration) -> ObjectOut | None:
        params = {"chip": c.chip, "time": c.time.isoformat(),
                  **({"filter": c.filter} if c.filter is not None else {})}
        try:
            return ObjectOut.model_validate(self.client.request(
                "GET", f"/calibrations/{c.cls}/best", params=params))
        except NotFound:
            return None

    async def values(self, spec: QuerySpec, fields: Sequence[str]) -> list[list[Any]] | None:
        """Every row ``POST /query/values`` gives (``CatalogValues``); None from a catalogue
        without it."""
        async def page(body: dict[str, Any]) -> Any:
            return self.client.request("POST", "/query/values", json=body)

        async def paths() -> Any:
            return self.client.request("GET", "/openapi.json")

        return await _all_values(page, paths, spec, fields)

    async def history(self, oid: str) -> list[CurationChange]:
        return _history(self.client.request("GET", f"/objects/{oid}/history"))

    async def create(self, objects: Sequence[ObjectIn]) -> list[str]:
        got = self.client.request("POST", "/objects/batch", json={
            "objects": [o.model_dump(mode="json") for o in objects]})
        return list(got["oids"])

    async def load_sources(self, oid: str, rows: dict[str, list[Any]]) -> int:
        return int(self.client.request("POST", f"/sources/{oid}", content=encode_fits(rows),
                                       headers={"Content-Type": SOURCES_FITS})["loaded"])

    async def count_sources(self, spec: QuerySpec) -> int:
        return self.client.count_sources(spec)


class SyncStorage(Protocol):
    """What :class:`BlockingFiles` uses of ``awecore.client.StorageClient``."""

    def get(self, name: str, start: int | None = None, end: int | None = None, *,
            sha256: str | None = None, size: int | None = None) -> bytes: ...

    def put(self, name: str, data: bytes) -> FileInfo: ...


class BlockingFiles:
    """A FileStore over the synchronous storage client (blocking: for the sync facade)."""

    def __init__(self, client: SyncStorage) -> None:
        self.client = client

    async def get(self, name: str, *, sha256: str | None = None,
                  size: int | None = None) -> bytes:
        return self.client.get(name, sha256=sha256, size=size)

    async def put(self, name: str, data: bytes) -> FileInfo:
        return self.client.put(name, data)
