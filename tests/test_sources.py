"""The source table: bulk load through the API, DSL queries, cone search on HEALPix ranges."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import httpx
import numpy as np
import pytest
from conftest import Users
from seed import batch, seed

import awecore as awe
from awecore import Source
from awecore.healpix import healpix_of, ranges_for_cone
from awecore.model import Query
from awecore.query import Compare, QuerySpec
from awecore.sources import SourceRow

pytestmark = pytest.mark.integration


def sky(seed: int, n: int, ra0: float, dec0: float, size: float) -> dict[str, list[float]]:
    rng = np.random.default_rng(seed)
    return {"ra": (ra0 + rng.uniform(-size, size, n)).tolist(),
            "dec": (dec0 + rng.uniform(-size, size, n)).tolist(),
            "mag": rng.uniform(16, 23, n).tolist(), "flux": rng.uniform(1, 1e5, n).tolist()}


def test_ranges_cover_the_cone() -> None:
    rng = np.random.default_rng(1)
    ra = 150 + rng.uniform(-1, 1, 20000)
    dec = -30 + rng.uniform(-1, 1, 20000)
    lo, hi = ranges_for_cone(150.0, -30.0, 0.5)
    pix = healpix_of(ra, dec)
    covered = np.zeros(len(pix), bool)
    for a, b in zip(lo, hi, strict=True):
        covered |= (pix >= a) & (pix <= b)
    dist = np.degrees(np.arccos(np.clip(np.sin(np.radians(dec)) * np.sin(np.radians(-30))
                                        + np.cos(np.radians(dec)) * np.cos(np.radians(-30))
                                        * np.cos(np.radians(ra - 150)), -1, 1)))
    assert covered[dist <= 0.5].all()  # nothing inside the cone is missed
    assert len(lo) < 100


async def test_load_and_cone_search(admin: httpx.AsyncClient, users: Users) -> None:
    (sl,) = await batch(admin, [{"type": "SourceList", "privileges": 3}])
    cols = sky(3, 5000, 210.0, 10.0, 0.3)
    r = await admin.post(f"/sources/{sl}", json=cols)
    assert r.status_code == 201 and r.json() == {"loaded": 5000}
    r = await admin.post(f"/sources/{sl}", json=cols)
    assert r.status_code == 409
    r = await admin.get("/sources/cone", params={"ra": 210.0, "dec": 10.0, "radius": 0.1})
    got = r.json()["sources"]
    ra, dec = np.array(cols["ra"]), np.array(cols["dec"])
    dist = np.degrees(np.arccos(np.clip(np.sin(np.radians(dec)) * np.sin(np.radians(10))
                                        + np.cos(np.radians(dec)) * np.cos(np.radians(10))
                                        * np.cos(np.radians(ra - 210)), -1, 1)))
    assert {s["seq"] for s in got} == set(np.flatnonzero(dist <= 0.1).tolist())
    assert [s["distance"] for s in got] == sorted(s["distance"] for s in got)
    bright = (await admin.get("/sources/cone", params={"ra": 210.0, "dec": 10.0,
                                                       "radius": 0.1, "mag_max": 18})).json()
    assert all(s["mag"] <= 18 for s in bright["sources"]) and bright["sources"]
    # a private source list's sources stay with its owner
    alice = await users.make("alice", project="src-a")
    bob = await users.make("bob", project="src-b")
    (mine,) = await batch(alice, [{"type": "SourceList", "privileges": 1}])
    assert (await alice.post(f"/sources/{mine}", json=sky(4, 100, 20.0, -5.0, 0.01))
            ).status_code == 201
    params = {"ra": 20.0, "dec": -5.0, "radius": 0.05}
    assert len((await alice.get("/sources/cone", params=params)).json()["sources"]) == 100
    assert (await bob.get("/sources/cone", params=params)).json()["sources"] == []
    assert (await bob.post(f"/sources/{sl}", json=sky(5, 10, 1.0, 1.0, 0.1))).status_code == 403


async def test_bad_source_input(admin: httpx.AsyncClient) -> None:
    (sl,) = await batch(admin, [{"type": "SourceList", "privileges": 3}])
    (frame,) = await batch(admin, [{"type": "RawScienceFrame"}])
    r = await admin.post(f"/sources/{sl}", json={"ra": [1.0, 2.0], "dec": [1.0]})
    assert r.status_code == 400 and "dec has 1 values" in r.json()["detail"]
    r = await admin.post(f"/sources/{sl}", json={"ra": [400.0], "dec": [1.0]})
    assert r.status_code == 400 and "outside" in r.json()["detail"]
    r = await admin.post(f"/sources/{sl}", json={"ra": [1.0], "dec": [1.0], "colour": [1]})
    assert r.status_code == 400
    r = await admin.post(f"/sources/{frame}", json={"ra": [1.0], "dec": [1.0]})
    assert r.status_code == 400 and "not a SourceList" in r.json()["detail"]
    r = await admin.get("/sources/cone", params={"ra": 10, "dec": 5, "radius": 1,
                                                 "mag_max": 1e39})
    assert r.status_code == 400 and "mag_max" in r.text  # beyond any magnitude
    r = await admin.get("/sources/cone", params={"ra": 10, "dec": 95, "radius": 1})
    assert r.status_code == 400


@dataclass
class Lists:
    """Two public source lists on seeded frames: one of chip ccd53 / filter 841, one of
    ccd54 / 842, with their loaded columns."""

    tag: str
    sl53: str
    sl54: str
    cols53: dict[str, list[float]]
    cols54: dict[str, list[float]]

    @property
    def ccd53(self) -> str:
        return f"ccd53-{self.tag}"


async def make_lists(admin: httpx.AsyncClient, ra0: float) -> Lists:
    s = await seed(admin)
    red53, red54 = s.reduced[0], s.reduced[9]  # ccd53/841 and ccd54/842 (see seed())
    sl53, sl54 = await batch(admin, [
        {"type": "SourceList", "privileges": 3, "refs": {"frame": red53}},
        {"type": "SourceList", "privileges": 3, "refs": {"frame": red54}}])
    cols53, cols54 = sky(21, 300, ra0, 45.0, 0.05), sky(22, 200, ra0, 45.0, 0.05)
    for sl, cols in ((sl53, cols53), (sl54, cols54)):
        assert (await admin.post(f"/sources/{sl}", json=cols)).status_code == 201
    return Lists(s.tag, sl53, sl54, cols53, cols54)


def brighter(cols: dict[str, list[float]], limit: float) -> set[int]:
    """Seq numbers with mag < limit, as the table compares them (mag is a 4-byte real)."""
    return set(np.flatnonzero(np.asarray(cols["mag"], dtype=np.float32) < limit).tolist())


async def run(client: httpx.AsyncClient, q: Query[Any], offset: int = 0,
              limit: int = 1000) -> httpx.Response:
    return await client.post("/sources/query", json={
        "query": q.spec().model_dump(mode="json"), "offset": offset, "limit": limit})


async def count(client: httpx.AsyncClient, q: Query[Any]) -> int:
    r = await client.post("/sources/query/count", json=q.spec().model_dump(mode="json"))
    assert r.status_code == 200, r.text
    return int(r.json()["count"])


async def test_source_dsl_over_http(admin: httpx.AsyncClient) -> None:
    lists = await make_lists(admin, 120.0)
    q = (Source.mag < 20) & (Source.sourcelist.frame.chip.name == lists.ccd53)
    r = await run(admin, q)
    assert r.status_code == 200, r.text
    got = r.json()["sources"]
    assert {row["sourcelist"] for row in got} == {lists.sl53}
    assert {row["seq"] for row in got} == brighter(lists.cols53, 20) != set()
    assert all(row["mag"] < 20 and row["flag"] == 0 and row["x"] is None for row in got)
    assert await count(admin, q) == len(got)
    # a longer path: the raw frame's filter of the source list's frame
    by_filter = Source.sourcelist.frame.raw.filter.name == f"842-{lists.tag}"
    assert await count(admin, by_filter) == 200
    assert await count(admin, by_filter | (Source.sourcelist == lists.sl53)) == 500
    assert await count(admin, (Source.sourcelist == lists.sl53) & ~(Source.mag < 20)) == (
        300 - len(got))
    assert await count(admin, Source.sourcelist.in_([lists.sl53, lists.sl54])
                       & Source.seq.between(10, 19)) == 20
    # ordered, limited
    brightest = (await run(admin, q.order_by(Source.mag), limit=5)).json()["sources"]
    assert [row["mag"] for row in brightest] == sorted(row["mag"] for row in got)[:5]
    faintest = (await run(admin, q.order_by(Source.mag, descending=True), limit=1)).json()
    assert faintest["sources"][0]["mag"] == max(row["mag"] for row in got)


async def test_source_query_pages(admin: httpx.AsyncClient) -> None:
    lists = await make_lists(admin, 121.0)
    q = Source.sourcelist == lists.sl54
    seen: list[tuple[str, int]] = []
    offset: int | None = 0
    pages = 0
    while offset is not None:
        page = (await run(admin, q, offset=offset, limit=64)).json()
        assert len(page["sources"]) <= 64 and page["offset"] == offset
        seen.extend((row["sourcelist"], row["seq"]) for row in page["sources"])
        offset, pages = page["next_offset"], pages + 1
    assert pages == 4 and seen == [(lists.sl54, i) for i in range(200)]  # no gap, no repeat
    past = (await run(admin, q, offset=200, limit=64)).json()
    assert past["sources"] == [] and past["next_offset"] is None
    r = await run(admin, q, limit=10_001)
    assert r.status_code == 400  # a page is at most 10 000 rows


async def test_source_visibility(admin: httpx.AsyncClient, users: Users) -> None:
    alice = await users.make("alice", project="srcq-a")
    bob = await users.make("bob", project="srcq-b")
    (frame,) = await batch(alice, [{"type": "ReducedScienceFrame", "privileges": 1,
                                    "attributes": {"exptime": 60.0}}])
    mine, shared = await batch(alice, [
        {"type": "SourceList", "privileges": 1, "refs": {"frame": frame}},
        {"type": "SourceList", "privileges": 3, "refs": {"frame": frame}}])
    for sl in (mine, shared):
        assert (await alice.post(f"/sources/{sl}", json=sky(30, 50, 300.0, 0.0, 0.01))
                ).status_code == 201
    private = Source.sourcelist == mine
    assert await count(alice, private) == 50
    assert await count(bob, private) == 0  # another user's private source list
    assert (await run(bob, private)).json()["sources"] == []
    # bob sees the shared list, but not through alice's private frame
    assert await count(bob, Source.sourcelist == shared) == 50
    assert await count(bob, (Source.sourcelist == shared)
                       & (Source.sourcelist.frame.exptime == 60.0)) == 0
    assert await count(alice, (Source.sourcelist == shared)
                       & (Source.sourcelist.frame.exptime == 60.0)) == 50
    assert await count(alice, Source.select().user_only()) == 100
    assert await count(bob, Source.select().user_only()) == 0
    # the cone search with a condition keeps to the same rules
    cone = {"ra": 300.0, "dec": 0.0, "radius": 0.05,
            "query": (Source.sourcelist.frame.exptime == 60.0).spec().model_dump(mode="json")}
    assert len((await alice.post("/sources/cone", json=cone)).json()["sources"]) == 100
    assert (await bob.post("/sources/cone", json=cone)).json()["sources"] == []


async def test_bad_source_queries(admin: httpx.AsyncClient) -> None:
    def spec(where: dict[str, Any], cls: str = "Source") -> dict[str, Any]:
        return {"query": {"cls": cls, "where": where}}

    r = await admin.post("/sources/query", json=spec(
        {"node": "compare", "op": "lt", "path": ["colour"], "value": 1}))
    assert r.status_code == 400
    assert r.headers["content-type"].startswith("application/problem+json")
    assert r.json()["error"] == "invalid_query"
    assert "Source has no attribute 'colour'; it has dec, flag, flux" in r.json()["detail"]
    r = await admin.post("/sources/query", json=spec(
        {"node": "compare", "op": "eq", "path": ["sourcelist", "frame", "chp", "name"],
         "value": "x"}))
    assert r.status_code == 400 and "ReducedScienceFrame has no attribute 'chp'" in r.text
    r = await admin.post("/sources/query", json=spec(
        {"node": "compare", "op": "lt", "path": ["mag"], "value": "bright"}))
    assert r.status_code == 400 and "Source.mag is a float" in r.json()["detail"]
    r = await admin.post("/sources/query", json=spec(
        {"node": "compare", "op": "eq", "path": ["flag"], "value": 2**40}))
    assert r.status_code == 400 and "out of range" in r.json()["detail"]
    r = await admin.post("/sources/query", json=spec(
        {"node": "compare", "op": "eq", "path": ["flag"], "value": 1}, cls="RawFrame"))
    assert r.status_code == 400 and "selects Source" in r.json()["detail"]
    r = await admin.post("/sources/query/count", json={"cls": "Source", "where": {
        "node": "drop", "path": ["x"]}})
    assert r.status_code == 400
    r = await admin.post("/query", json={"query": {"cls": "Source"}})
    assert r.status_code == 400 and "/sources/query" in r.json()["detail"]
    r = await admin.post("/sources/cone", json={
        "ra": 1.0, "dec": 1.0, "radius": 0.1,
        "query": Source.select().order_by(Source.mag).spec().model_dump(mode="json")})
    assert r.status_code == 400 and "own order" in r.json()["detail"]


@pytest.mark.parametrize("evil", ["x'; DELETE FROM sources; --", "' OR '1'='1"])
async def test_injection_stays_a_value(admin: httpx.AsyncClient, evil: str) -> None:
    lists = await make_lists(admin, 122.0)
    before = await count(admin, Source.sourcelist == lists.sl53)
    q = (Source.sourcelist.frame.chip.name == evil) | Source.sourcelist.frame.chip.name.like(evil)
    r = await run(admin, q)
    assert r.status_code == 200 and r.json()["sources"] == []
    assert before == 300 and await count(admin, Source.sourcelist == lists.sl53) == 300


async def test_source_queries_from_python(admin: httpx.AsyncClient, session: awe.CatalogClient,
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    lists = await make_lists(admin, 123.0)
    expected = brighter(lists.cols53, 20)
    calls: list[str] = []
    request = session.request

    def counted(method: str, path: str, **kwargs: Any) -> Any:
        calls.append(path)
        return request(method, path, **kwargs)

    monkeypatch.setattr(session, "request", counted)
    session.source_page_size = 64

    q = (Source.mag < 20) & (Source.sourcelist.frame.chip.name == lists.ccd53)
    rows = list(q)
    assert all(isinstance(row, SourceRow) for row in rows)
    assert {row.seq for row in rows} == expected and {row.sourcelist for row in rows} == {
        lists.sl53}
    # pages of 64 (list() also asks len(q) first: one count)
    assert [c for c in calls if c != "/sources/query/count"] == (
        ["/sources/query"] * math.ceil(len(expected) / 64))
    assert len(q) == len(expected) and calls[-1] == "/sources/query/count"
    table = q.to_table()
    assert len(table) == len(expected) and table.colnames[:4] == ["sourcelist", "seq", "ra", "dec"]
    assert str(table["mag"].unit) == "mag" and str(table["ra"].unit) == "deg"
    assert np.isnan(table["x"]).all()  # not measured: NaN, the column stays numeric
    top = list(q.order_by(Source.mag).limit(100))
    assert len(top) == 100 and [r.mag for r in top] == sorted(r.mag for r in rows)[:100]
    assert q.max("mag") == max(rows, key=lambda r: r.mag)
    assert q[5] == sorted(rows, key=lambda r: r.seq)[5]
    # a cone with a DSL condition: only the ccd53 list's sources, nearest first
    cone = Source.cone(123.0, 45.0, 0.2, where=Source.sourcelist.frame.chip.name == lists.ccd53)
    assert set(cone["sourcelist"]) == {lists.sl53} and len(cone) == 300
    assert list(cone["distance"]) == sorted(cone["distance"])
    assert str(cone["distance"].unit) == "deg"
    # the catalog's error comes back as the same exception class
    with pytest.raises(awe.InvalidQuery, match="Source has no attribute 'colour'"):
        session.count_sources(QuerySpec(cls="Source", where=Compare(
            op="lt", path=("colour",), value=1)))
