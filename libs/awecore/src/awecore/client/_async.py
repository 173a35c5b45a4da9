"""A small async client for service-to-service calls to the catalog.

It speaks in records (``ObjectOut``), not model objects: a service passes them on, and has no
session for a model object's references to be resolved through.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import Mapping, Sequence
from typing import Any

import httpx

from ..errors import ServiceUnavailable
from ..query import QueryPage, QuerySpec
from ..records import CurationChange, ObjectIn, ObjectOut
from ..source_columns import MEDIA_TYPE as SOURCES_MEDIA_TYPE
from ..source_columns import encode_fits
from ._json import decode, encode_body
from ._problem import raise_for_problem
from ._request_id import async_request_id_hooks

PAGE_SIZE = 1000  # objects per query page (the most the catalog allows)
GET_MANY = 1000  # oids per POST /objects/get
ENCODE_INLINE = 10_000  # sources encoded on the event loop; more in a worker thread

__all__ = ["AsyncCatalogClient"]


class AsyncCatalogClient:
    def __init__(self, url: str, token: str | None = None, timeout: float = 30.0,
                 transport: httpx.AsyncBaseTransport | None = None) -> None:
        """``transport``: a connection pool shared with other clients (the portal makes one
        client per request, each with its user's token, over one pool)."""
        self.url = url.rstrip("/")
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        self._http = httpx.AsyncClient(base_url=self.url, headers=headers, timeout=timeout,
                                       transport=transport,
                                       event_hooks=async_request_id_hooks())

    async def aclose(self) -> None:
        await self._http.aclose()

    async def request(self, method: str, path: str, token: str | None = None,
                      **kwargs: Any) -> Any:
        if token is not None:
            kwargs.setdefault("headers", {})["Authorization"] = f"Bearer {token}"
        try:
            response = await self._http.request(method, path, **encode_body(kwargs))
        except httpx.TransportError as exc:
            raise ServiceUnavailable(f"cannot reach the catalog at {self.url}: {exc}") from None
        raise_for_problem(response)
        return decode(response)

    async def whoami(self, token: str) -> dict[str, Any]:
        """The user a token belongs to (raises Unauthorized for a bad token)."""
        return dict(await self.request("GET", "/whoami", token=token))

    async def count(self, spec: QuerySpec) -> int:
        got = await self.request("POST", "/query/count", json=spec.model_dump(mode="json"))
        return int(got["count"])

    # -- objects -----------------------------------------------------------------------
    async def get_records(self, oids: Sequence[str]) -> dict[str, ObjectOut]:
        """The records of ``oids`` by oid (those missing or invisible are left out)."""
        out: dict[str, ObjectOut] = {}
        unique = list(dict.fromkeys(oids))
        for i in range(0, len(unique), GET_MANY):
            got = await self.request("POST", "/objects/get",
                                     json={"oids": unique[i:i + GET_MANY]})
            for raw in got["objects"]:
                record = ObjectOut.model_validate(raw)
                out[record.oid] = record
        return out

    async def create_batch(self, objects: Sequence[ObjectIn]) -> list[str]:
        """Register objects in one transaction; their oids."""
        got = await self.request("POST", "/objects/batch", json={
            "objects": [o.model_dump(mode="json") for o in objects]})
        return list(got["oids"])

    # -- queries -----------------------------------------------------------------------
    async def query_page(self, spec: QuerySpec, offset: int, limit: int,
                         after: str | None = None) -> QueryPage:
        """One page: from ``offset``, or after a previous page's ``next_after``."""
        body: dict[str, Any] = {"query": spec.model_dump(mode="json"), "offset": offset,
                                "limit": limit}
        if after is not None:
            body["after"] = after
        return QueryPage.model_validate(await self.request("POST", "/query", json=body))

    async def find(self, spec: QuerySpec, limit: int | None = None) -> list[ObjectOut]:
        """Every record the query selects (at most ``limit``), page by page (by cursor
        after the first, or by offset from a catalogue that gives none)."""
        out: list[ObjectOut] = []
        after: str | None = None
        while limit is None or len(out) < limit:
            size = PAGE_SIZE if limit is None else min(PAGE_SIZE, limit - len(out))
            page = await self.query_page(spec, 0 if after else len(out), size, after)
            out.extend(page.objects)
            if page.next_offset is None or not page.objects:
                break
            after = page.next_after
        return out

    async def best(self, cls: str, chip: str, time: dt.datetime,
                   filter: str | None = None) -> ObjectOut:
        """The best calibration of ``cls`` for a chip (and filter) at a time: valid, its
        validity covering the time, the newest (NotFound if there is none)."""
        params = {"chip": chip, "time": time.isoformat()}
        if filter is not None:
            params["filter"] = filter
        return ObjectOut.model_validate(
            await self.request("GET", f"/calibrations/{cls}/best", params=params))

    async def history(self, oid: str) -> list[CurationChange]:
        """Every curation of an object, oldest first: who, when, at which site, why, and
        each field's old and new value (NotFound if the object is not visible)."""
        got = await self.request("GET", f"/objects/{oid}/history")
        return [CurationChange.model_validate(h) for h in got]

    # -- the source table --------------------------------------------------------------
    async def load_sources(self, oid: str, rows: Mapping[str, Any]) -> int:
        """Load the rows of source list ``oid`` (once: Conflict if loaded already): columns
        of equal length (lists or numpy arrays, None where not measured), sent as a FITS
        binary table (encoded in a worker thread when big: it is numpy work)."""
        n = len(rows.get("ra", ()))
        body = encode_fits(rows) if n <= ENCODE_INLINE else await asyncio.to_thread(
            encode_fits, rows)
        got = await self.request("POST", f"/sources/{oid}", content=body,
                                 headers={"Content-Type": SOURCES_MEDIA_TYPE})
        return int(got["loaded"])

    async def count_sources(self, spec: QuerySpec) -> int:
        got = await self.request("POST", "/sources/query/count",
                                 json=spec.model_dump(mode="json"))
        return int(got["count"])
