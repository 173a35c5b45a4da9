"""The synchronous HTTP client a scientist's script uses (via ``awe.connect()``).

Every error response is a problem document whose ``error`` code is mapped back to the same
exception class the service raised.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator, Sequence
from typing import Any, TypeVar

import httpx

from ..errors import ServiceUnavailable
from ..events import ChangePage
from ..model import CurationUpdate, DBObject, ObjectIn, ObjectOut
from ..query import QueryPage, QuerySpec
from ._lineage import LineageClient
from ._problem import raise_for_problem

__all__ = ["CatalogClient"]

T = TypeVar("T", bound=DBObject)

PAGE_SIZE = 500
GET_MANY = 1000


class CatalogClient:
    """Talks to one catalog service with one token."""

    def __init__(self, url: str, token: str | None, timeout: float = 60.0,
                 transport: httpx.BaseTransport | None = None) -> None:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        self.url = url.rstrip("/")
        self._http = httpx.Client(base_url=self.url, headers=headers, timeout=timeout,
                                  transport=transport)
        #: the lineage service, for obj.upstream() and friends (set by awe.connect())
        self.lineage: LineageClient | None = None

    def close(self) -> None:
        self._http.close()
        if self.lineage is not None:
            self.lineage.close()

    def __enter__(self) -> CatalogClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def request(self, method: str, path: str, **kwargs: Any) -> Any:
        try:
            response = self._http.request(method, path, **kwargs)
        except httpx.TransportError as exc:
            raise ServiceUnavailable(f"cannot reach the catalog at {self.url}: {exc}") from None
        raise_for_problem(response)
        return response.json()

    # -- objects -----------------------------------------------------------------------
    def _wrap(self, records: Sequence[ObjectOut]) -> list[DBObject]:
        objs = [DBObject.from_record(r, self) for r in records]
        for o in objs:
            o._page = objs  # siblings resolve references together, in one request
        return objs

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

    def curate(self, oid: str, **changes: Any) -> ObjectOut:
        update = CurationUpdate(**changes)
        return ObjectOut.model_validate(self.request(
            "PATCH", f"/objects/{oid}", json=update.model_dump(mode="json", exclude_unset=True)))

    # -- queries -----------------------------------------------------------------------
    def query_page(self, spec: QuerySpec, offset: int, limit: int) -> QueryPage:
        body = {"query": spec.model_dump(mode="json"), "offset": offset, "limit": limit}
        return QueryPage.model_validate(self.request("POST", "/query", json=body))

    def fetch(self, spec: QuerySpec, offset: int, count: int) -> list[DBObject]:
        out: list[DBObject] = []
        while count > 0:
            page = self.query_page(spec, offset, min(count, PAGE_SIZE))
            out.extend(self._wrap(page.objects))
            if page.next_offset is None:
                break
            offset, count = offset + len(page.objects), count - len(page.objects)
        return out

    def iter_query(self, spec: QuerySpec, limit: int | None = None) -> Iterator[DBObject]:
        offset, left = 0, limit
        while left is None or left > 0:
            size = PAGE_SIZE if left is None else min(PAGE_SIZE, left)
            page = self.query_page(spec, offset, size)
            yield from self._wrap(page.objects)
            if page.next_offset is None:
                return
            offset = page.next_offset
            left = None if left is None else left - len(page.objects)

    def count(self, spec: QuerySpec) -> int:
        return int(self.request("POST", "/query/count", json=spec.model_dump(mode="json"))["count"])

    def best(self, cls: str | type[DBObject], chip: str, time: dt.datetime | str,
             filter: str | None = None) -> DBObject:
        name = cls if isinstance(cls, str) else cls.__name__
        params = {"chip": chip, "time": time if isinstance(time, str) else time.isoformat()}
        if filter is not None:
            params["filter"] = filter
        record = ObjectOut.model_validate(
            self.request("GET", f"/calibrations/{name}/best", params=params))
        return self._wrap([record])[0]

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

    def add_member(self, project: str, user: str) -> dict[str, Any]:
        return dict(self.request("POST", f"/projects/{project}/members", json={"user": user}))

    def create_token(self, user: str | None = None, label: str = "") -> str:
        return str(self.request("POST", "/tokens", json={"user": user, "label": label})["token"])


