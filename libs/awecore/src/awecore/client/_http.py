"""The synchronous HTTP client a scientist's script uses (via ``awe.connect()``).

Every error response is a problem document whose ``error`` code is mapped back to the same
exception class the service raised.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterator, Sequence
from typing import Any, TypeVar

import httpx

from ..errors import InvalidRequest, NotFound, ServiceUnavailable
from ..events import ChangePage
from ..ids import prefix_range
from ..model import (
    ClassInfo,
    CurationUpdate,
    DBObject,
    ObjectIn,
    ObjectOut,
    class_from_schema,
    registry,
)
from ..query import Between, QueryPage, QuerySpec
from ..records import CurationChange, TimelineEntry, TimelinePage
from ..sources import MAX_SOURCE_PAGE, SourceQueryPage, SourceQueryRequest, SourceRow
from ._json import decode, encode_body
from ._lineage import LineageClient
from ._problem import raise_for_problem
from ._request_id import request_id_hooks
from ._storage import StorageClient

__all__ = ["CatalogClient"]

T = TypeVar("T", bound=DBObject)
R = TypeVar("R")

PAGE_SIZE = 500
GET_MANY = 1000


class CatalogClient:
    """Talks to one catalog service with one token."""

    def __init__(self, url: str, token: str | None, timeout: float = 60.0,
                 transport: httpx.BaseTransport | None = None) -> None:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        self.url = url.rstrip("/")
        self._http = httpx.Client(base_url=self.url, headers=headers, timeout=timeout,
                                  transport=transport, event_hooks=request_id_hooks())
        #: the lineage service, for obj.upstream() and friends (set by awe.connect())
        self.lineage: LineageClient | None = None
        #: the storage service, for obj.hdul() and obj.data (set by awe.connect())
        self.storage: StorageClient | None = None
        #: rows per request when a source query pages (the catalog allows MAX_SOURCE_PAGE)
        self.source_page_size = MAX_SOURCE_PAGE

    def close(self) -> None:
        self._http.close()
        if self.lineage is not None:
            self.lineage.close()
        if self.storage is not None:
            self.storage.close()

    def __enter__(self) -> CatalogClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def request(self, method: str, path: str, **kwargs: Any) -> Any:
        try:
            response = self._http.request(method, path, **encode_body(kwargs))
        except httpx.TransportError as exc:
            raise ServiceUnavailable(f"cannot reach the catalog at {self.url}: {exc}") from None
        raise_for_problem(response)
        return decode(response)

    # -- objects -----------------------------------------------------------------------
    def _wrap(self, records: Sequence[ObjectOut]) -> list[DBObject]:
        for name in {r.type for r in records} - set(registry.names()):
            self.learn_class(name)
        objs = [DBObject.from_record(r, self) for r in records]
        for o in objs:
            o._page = objs  # siblings resolve references together, in one request
        return objs

    def learn_class(self, name: str) -> type[DBObject]:
        """A class someone registered with the catalogue (a user's product, ``POST
        /classes``), built here from its schema, with the registered classes it derives
        from: objects of it open at a prompt that never imported the package declaring it.
        (Its recipe still needs that package, to be made here.)"""
        if name in registry:
            return registry.get(name)
        info = ClassInfo.model_validate(self.request("GET", f"/classes/{name}"))
        for base in info.spec.bases:
            if base not in registry:
                self.learn_class(base)
        return class_from_schema(info.spec)

    def save(self, obj: T) -> T:
        """Register a new object; the instance becomes the stored one."""
        record = ObjectOut.model_validate(
            self.request("POST", "/objects", json=obj.to_record().model_dump(mode="json")))
        obj._record, obj._session = record, self
        obj._values = dict(record.attributes)
        return obj

    def create_batch(self, objects: Sequence[ObjectIn | DBObject]) -> list[str]:
        body = [o.to_record() if isinstance(o, DBObject) else o for o in objects]
        got = self.request("POST", "/objects/batch",
                           json={"objects": [o.model_dump(mode="json") for o in body]})
        return list(got["oids"])

    def get(self, oid: str) -> DBObject:
        return self._wrap([ObjectOut.model_validate(self.request("GET", f"/objects/{oid}"))])[0]

    def get_records(self, oids: Sequence[str]) -> dict[str, ObjectOut]:
        out: dict[str, ObjectOut] = {}
        unique = list(dict.fromkeys(oids))
        for i in range(0, len(unique), GET_MANY):
            got = self.request("POST", "/objects/get", json={"oids": unique[i:i + GET_MANY]})
            for raw in got["objects"]:
                rec = ObjectOut.model_validate(raw)
                out[rec.oid] = rec
        return out

    def get_many(self, oids: Sequence[str]) -> list[DBObject]:
        records = self.get_records(oids)
        return self._wrap([records[o] for o in oids if o in records])

    def resolve_refs(self, page: Sequence[DBObject], name: str) -> None:
        """Load reference ``name`` of every object of a page with one request per 1000."""
        wanted = []
        for obj in page:
            ref = obj._refs.get(name)
            if ref is not None and name not in obj._resolved:
                wanted.extend(ref if isinstance(ref, list) else [ref])
        records = list(self.get_records(wanted).values())
        loaded = {r.oid: o for r, o in zip(records, self._wrap(records), strict=True)}
        for obj in page:
            if name in obj._resolved:
                continue
            ref = obj._refs.get(name)
            if isinstance(ref, list):
                obj._resolved[name] = [loaded[o] for o in ref if o in loaded]
            else:
                obj._resolved[name] = loaded.get(ref) if ref is not None else None

    def curate(self, oid: str, reason: str | None = None, **changes: Any) -> ObjectOut:
        """Change what may change of an object (is_valid, timestamp_start, timestamp_end,
        privileges, comments); ``reason`` (why) goes into its curation history."""
        update = CurationUpdate(**changes) if reason is None else CurationUpdate(
            reason=reason, **changes)
        return ObjectOut.model_validate(self.request(
            "PATCH", f"/objects/{oid}", json=update.model_dump(mode="json", exclude_unset=True)))

    def history(self, oid: str) -> list[CurationChange]:
        """Every curation of an object, oldest first: who, when, at which site, why, and
        each field's old and new value (NotFound if you may not see the object)."""
        return [CurationChange.model_validate(h)
                for h in self.request("GET", f"/objects/{oid}/history")]

    # -- queries -----------------------------------------------------------------------
    def query_page(self, spec: QuerySpec, offset: int, limit: int,
                   after: str | None = None) -> QueryPage:
        """One page: from ``offset``, or after a previous page's ``next_after``."""
        body: dict[str, Any] = {"query": spec.model_dump(mode="json"), "offset": offset,
                                "limit": limit}
        if after is not None:
            body["after"] = after
        return QueryPage.model_validate(self.request("POST", "/query", json=body))

    def _query_pages(self, spec: QuerySpec, offset: int, count: int | None) -> Iterator[DBObject]:
        """Objects from ``offset`` on (at most ``count``): the first page by offset, the
        next ones by cursor (keyset: each as fast as the first, however deep), or by offset
        from a catalogue that gives no cursor."""
        after: str | None = None
        while count is None or count > 0:
            size = PAGE_SIZE if count is None else min(PAGE_SIZE, count)
            got = self.query_page(spec, 0 if after else offset, size, after)
            yield from self._wrap(got.objects)
            if got.next_offset is None or not got.objects:
                return
            offset += len(got.objects)
            after = got.next_after
            count = None if count is None else count - len(got.objects)

    @staticmethod
    def _paged(page: Callable[[int, int], tuple[list[R], int | None]], offset: int,
               count: int | None, size: int) -> Iterator[R]:
        """Items from ``offset`` on (at most ``count``), asking ``page(offset, limit)`` for
        pages of ``size`` until the server says there is no next one."""
        while count is None or count > 0:
            items, next_offset = page(offset, size if count is None else min(size, count))
            yield from items
            if next_offset is None or not items:
                return
            offset += len(items)
            count = None if count is None else count - len(items)

    def fetch(self, spec: QuerySpec, offset: int, count: int) -> list[DBObject]:
        return list(self._query_pages(spec, offset, count))

    def iter_query(self, spec: QuerySpec, limit: int | None = None) -> Iterator[DBObject]:
        return self._query_pages(spec, 0, limit)

    def count(self, spec: QuerySpec) -> int:
        return int(self.request("POST", "/query/count", json=spec.model_dump(mode="json"))["count"])

    # -- the source table --------------------------------------------------------------
    def source_page(self, spec: QuerySpec, offset: int, limit: int) -> SourceQueryPage:
        body = SourceQueryRequest(query=spec, offset=offset, limit=limit)
        return SourceQueryPage.model_validate(
            self.request("POST", "/sources/query", json=body.model_dump(mode="json")))

    def _sources_page(self, spec: QuerySpec) -> Callable[[int, int],
                                                          tuple[list[SourceRow], int | None]]:
        def page(offset: int, limit: int) -> tuple[list[SourceRow], int | None]:
            got = self.source_page(spec, offset, limit)
            return got.sources, got.next_offset
        return page

    def fetch_sources(self, spec: QuerySpec, offset: int, count: int) -> list[SourceRow]:
        return list(self._paged(self._sources_page(spec), offset, count,
                                self.source_page_size))

    def iter_sources(self, spec: QuerySpec, limit: int | None = None) -> Iterator[SourceRow]:
        return self._paged(self._sources_page(spec), 0, limit, self.source_page_size)

    def count_sources(self, spec: QuerySpec) -> int:
        return int(self.request("POST", "/sources/query/count",
                                json=spec.model_dump(mode="json"))["count"])

    def best(self, cls: str | type[DBObject], chip: str, time: dt.datetime | str,
             filter: str | None = None) -> DBObject:
        name = cls if isinstance(cls, str) else cls.__name__
        params = {"chip": chip, "time": time if isinstance(time, str) else time.isoformat()}
        if filter is not None:
            params["filter"] = filter
        record = ObjectOut.model_validate(
            self.request("GET", f"/calibrations/{name}/best", params=params))
        return self._wrap([record])[0]

    def timeline_page(self, cls: str | type[DBObject], chip: str, filter: str | None = None,
                      start: dt.datetime | str | None = None,
                      end: dt.datetime | str | None = None, offset: int = 0,
                      limit: int = PAGE_SIZE) -> TimelinePage:
        name = cls if isinstance(cls, str) else cls.__name__
        params: dict[str, Any] = {"chip": chip, "offset": offset, "limit": limit}
        for key, value in (("filter", filter), ("start", start), ("end", end)):
            if value is not None:
                params[key] = value.isoformat() if isinstance(value, dt.datetime) else value
        return TimelinePage.model_validate(
            self.request("GET", f"/calibrations/{name}/timeline", params=params))

    def timeline(self, cls: str | type[DBObject], chip: str, filter: str | None = None,
                 start: dt.datetime | str | None = None,
                 end: dt.datetime | str | None = None) -> list[TimelineEntry]:
        """The calibration timeline of a chip (and filter): every calibration of ``cls``
        (and its subclasses) whose validity overlaps [start, end] (open ends if None), by
        window start, with is_valid, flags, creator and its latest curation (who, when,
        why). Invalid ones are included: a timeline shows what was set aside too."""
        def page(offset: int, limit: int) -> tuple[list[TimelineEntry], int | None]:
            got = self.timeline_page(cls, chip, filter, start, end, offset, limit)
            return got.entries, got.next_offset
        return list(self._paged(page, 0, None, PAGE_SIZE))

    def changes(self, after: int = 0, limit: int = 500) -> ChangePage:
        return ChangePage.model_validate(
            self.request("GET", "/changes", params={"after": after, "limit": limit}))

    # -- administration ----------------------------------------------------------------
    def whoami(self) -> dict[str, Any]:
        return dict(self.request("GET", "/whoami"))

    def add_user(self, name: str, project: str | None = None, admin: bool = False,
                 service: bool = False) -> dict[str, Any]:
        return dict(self.request("POST", "/users", json={
            "name": name, "project": project, "is_admin": admin, "is_service": service}))

    def add_project(self, name: str, description: str = "") -> dict[str, Any]:
        return dict(self.request("POST", "/projects",
                                 json={"name": name, "description": description}))

    def add_member(self, project: str, user: str, role: str = "member") -> dict[str, Any]:
        """Make ``user`` a member of ``project`` (``role`` 'calibration': a calibration
        scientist, who curates the project's products and approves its calibrations)."""
        return dict(self.request("POST", f"/projects/{project}/members",
                                 json={"user": user, "role": role}))

    def create_token(self, user: str | None = None, label: str = "") -> str:
        return str(self.request("POST", "/tokens", json={"user": user, "label": label})["token"])

    def tokens(self, user: str | None = None) -> list[dict[str, Any]]:
        """Your tokens: id, label, created, last used (to the minute), revoked; never the
        secret. An admin may name a user, or ``*`` for everyone."""
        return list(self.request("GET", "/tokens", params={"user": user} if user else {}))

    def revoke_token(self, token_id: str) -> dict[str, Any]:
        """Revoke a token by its id (or a unique start of it): refused from then on."""
        return dict(self.request("POST", f"/tokens/{token_id}/revoke"))

    def download(self, record: ObjectOut) -> bytes:
        """The file of an object from storage, checked against the checksum and size its
        record holds (:class:`~awecore.errors.ChecksumMismatch` if it is not that file):
        what ``obj.hdul()`` and ``obj.data`` read."""
        if self.storage is None:
            raise ServiceUnavailable("no storage address: set AWE_STORAGE_URL (or `awe up`), "
                                     "then awe.connect()")
        return self.storage.download(record)

    def resolve_oid(self, text: str) -> str:
        """The full oid of the one object you can see whose oid starts with ``text`` (oids
        are shown in full but may be typed short); NotFound if none, InvalidRequest if
        several. A full oid is returned as it is, unchecked."""
        span = prefix_range(text)
        if span is None:
            raise NotFound(f"no object {text}: an oid is a UUID, or the start of one")
        if span[0] == span[1]:
            return str(span[0])
        where = Between(path=("oid",), low=str(span[0]), high=str(span[1]))
        got = self.query_page(QuerySpec(cls="DBObject", where=where), 0, 2).objects
        if not got:
            raise NotFound(f"no object whose oid starts with {text}")
        if len(got) > 1:
            raise InvalidRequest(f"{text!r} starts more than one oid ({got[0].oid}, "
                                 f"{got[1].oid}, ...): give more of it")
        return got[0].oid


