"""The catalog through its HTTP API, on a real PostgreSQL."""

from __future__ import annotations

import uuid

import httpx
import pytest
from conftest import Users
from seed import NIGHT, batch, day, seed

pytestmark = pytest.mark.integration

def five_line_query(chip: str, filt: str) -> dict[str, object]:
    return {"cls": "ReducedScienceFrame", "where": {"node": "and", "items": [
        {"node": "compare", "op": "eq", "path": ["chip", "name"], "value": chip},
        {"node": "compare", "op": "eq", "path": ["filter", "name"], "value": filt}]}}


async def query(client: httpx.AsyncClient, spec: dict[str, object], offset: int = 0,
                limit: int = 100) -> httpx.Response:
    return await client.post("/query", json={"query": spec, "offset": offset, "limit": limit})


async def test_health_metrics_and_openapi(admin: httpx.AsyncClient) -> None:
    r = await admin.get("/health")
    assert r.json()["status"] == "ok" and r.json()["site"] == "test"
    assert "x-request-id" in r.headers
    r = await admin.get("/metrics")
    assert "awe_catalog_requests_total" in r.text
    spec = (await admin.get("/openapi.json")).json()
    assert "/query" in spec["paths"] and "/changes" in spec["paths"]


async def test_create_and_get(admin: httpx.AsyncClient) -> None:
    r = await admin.post("/objects", json={
        "type": "Instrument", "attributes": {"name": "OMEGACAM", "pixel_scale": 0.21}})
    assert r.status_code == 201, r.text
    created = r.json()
    assert uuid.UUID(created["oid"]).version == 7
    assert created["creator"] == "admin" and created["site"] == "test"
    assert created["privileges"] == 1 and created["is_valid"] == 1
    got = (await admin.get(f"/objects/{created['oid']}")).json()
    assert got == created


async def test_batch_get_many_and_missing(admin: httpx.AsyncClient) -> None:
    oids = await batch(admin, [{"type": "Filter", "attributes": {"name": f"f{i}"}}
                               for i in range(1000)])
    assert len(set(oids)) == 1000
    ghost = str(uuid.uuid4())
    r = await admin.post("/objects/get", json={"oids": [*oids[:10], ghost, "not-an-oid"]})
    body = r.json()
    assert sorted(o["oid"] for o in body["objects"]) == sorted(oids[:10])
    assert body["missing"] == ["not-an-oid", ghost]


async def test_query_through_references_and_paging(admin: httpx.AsyncClient) -> None:
    s = await seed(admin)
    chip, filt = f"ccd53-{s.tag}", f"841-{s.tag}"
    spec = five_line_query(chip, filt)
    first = (await query(admin, spec, limit=2)).json()
    assert len(first["objects"]) == 2 and first["next_offset"] == 2
    rest = (await query(admin, spec, offset=2, limit=2)).json()
    assert len(rest["objects"]) == 1 and rest["next_offset"] is None
    got = first["objects"] + rest["objects"]
    assert {o["refs"]["chip"] for o in got} == {s.chips[chip]}
    assert {o["refs"]["filter"] for o in got} == {s.filters[filt]}
    count = await admin.post("/query/count", json=spec)
    assert count.json() == {"count": 3}
    # two references deep, through a struct at the end
    deep = {"cls": "ReducedScienceFrame", "where": {"node": "and", "items": [
        {"node": "compare", "op": "eq", "path": ["chip", "name"], "value": chip},
        {"node": "compare", "op": "lt", "path": ["flat", "imstat", "stdev"], "value": 0.015}]}}
    assert (await admin.post("/query/count", json=deep)).json()["count"] == 3
    # reference equality and ordering
    by_bias = {"cls": "ReducedScienceFrame", "where": {
        "node": "compare", "op": "eq", "path": ["bias"], "value": s.bias[f"{chip}/new"]},
        "order_by": [{"path": ["imstat", "stdev"], "descending": True}]}
    rows = (await query(admin, by_bias)).json()["objects"]
    assert len(rows) == 6
    stdevs = [o["attributes"]["imstat"]["stdev"] for o in rows]
    assert stdevs == sorted(stdevs, reverse=True)


async def test_polymorphic_query_and_operators(admin: httpx.AsyncClient) -> None:
    s = await seed(admin)
    chip = f"ccd54-{s.tag}"
    on_chip = {"node": "compare", "op": "eq", "path": ["chip", "name"], "value": chip}
    raw = (await admin.post("/query/count", json={"cls": "RawFrame", "where": on_chip})).json()
    assert raw["count"] == 4 + 6  # biases and science frames of that chip
    like = {"cls": "RawScienceFrame", "where": {"node": "and", "items": [
        on_chip, {"node": "like", "path": ["object"], "pattern": "KIDS_?"}]}}
    assert (await admin.post("/query/count", json=like)).json()["count"] == 6
    notin = {"cls": "RawScienceFrame", "where": {"node": "and", "items": [
        on_chip, {"node": "not", "item": {"node": "in", "path": ["object"],
                                          "values": ["KIDS_0", "KIDS_1"]}}]}}
    assert (await admin.post("/query/count", json=notin)).json()["count"] == 2
    between = {"cls": "RawBiasFrame", "where": {"node": "and", "items": [
        on_chip, {"node": "between", "path": ["imstat", "stdev"], "low": 6, "high": 7}]}}
    assert (await admin.post("/query/count", json=between)).json()["count"] == 2


async def test_best_calibration(admin: httpx.AsyncClient) -> None:
    s = await seed(admin)
    chip = f"ccd53-{s.tag}"
    r = await admin.get("/calibrations/BiasFrame/best", params={"chip": chip,
                                                               "time": NIGHT.isoformat()})
    assert r.status_code == 200, r.text
    assert r.json()["oid"] == s.bias[f"{chip}/new"]  # both cover it: the newest wins
    r = await admin.get("/calibrations/BiasFrame/best", params={"chip": chip, "time": day(3)})
    assert r.json()["oid"] == s.bias[f"{chip}/old"]  # only the old one covers day 3
    r = await admin.get("/calibrations/BiasFrame/best",
                        params={"chip": s.chips[chip], "time": NIGHT.isoformat()})
    assert r.json()["oid"] == s.bias[f"{chip}/new"]  # chip by oid
    r = await admin.get("/calibrations/MasterFlatFrame/best",
                        params={"chip": chip, "filter": f"842-{s.tag}", "time": day(0.5)})
    assert r.json()["oid"] == s.flats[f"{chip}/842-{s.tag}"]
    # invalidate the newest: the old one becomes best
    r = await admin.patch(f"/objects/{s.bias[chip + '/new']}", json={"is_valid": 0})
    assert r.status_code == 200 and r.json()["is_valid"] == 0
    r = await admin.get("/calibrations/BiasFrame/best", params={"chip": chip,
                                                               "time": NIGHT.isoformat()})
    assert r.json()["oid"] == s.bias[f"{chip}/old"]
    r = await admin.get("/calibrations/BiasFrame/best", params={"chip": chip, "time": day(9)})
    assert r.status_code == 404 and "no valid BiasFrame" in r.json()["detail"]
    r = await admin.get("/calibrations/RawBiasFrame/best", params={"chip": chip,
                                                                  "time": day(0)})
    assert r.status_code == 400 and "not a calibration class" in r.json()["detail"]


async def test_curation_rules(admin: httpx.AsyncClient) -> None:
    s = await seed(admin, privileges=2)
    bias = s.bias[f"ccd53-{s.tag}/old"]
    r = await admin.patch(f"/objects/{bias}", json={"privileges": 3, "comments": "shared",
                                                    "timestamp_end": day(6)})
    body = r.json()
    assert (body["privileges"], body["comments"]) == (3, "shared")
    assert body["timestamp_end"].startswith("2003-02-20")
    assert body["curation_hlc"] > body["hlc"]
    r = await admin.patch(f"/objects/{bias}", json={"privileges": 1})
    assert r.status_code == 409 and "only ever rise" in r.json()["detail"]
    r = await admin.patch(f"/objects/{s.raws[0]}", json={"timestamp_start": day(0)})
    assert r.status_code == 400 and "not a calibration" in r.json()["detail"]
    r = await admin.patch(f"/objects/{bias}", json={"exptime": 3})
    assert r.status_code == 400 and "exptime" in r.json()["detail"]
    r = await admin.patch(f"/objects/{bias}", json={"timestamp_start": day(7)})
    assert r.status_code == 400 and "end before it starts" in r.json()["detail"]
    r = await admin.patch(f"/objects/{bias}", json={})
    assert r.status_code == 400


async def test_changes_feed(admin: httpx.AsyncClient) -> None:
    start = (await admin.get("/changes", params={"after": 0, "limit": 1})).json()["last_sequence"]
    (oid,) = await batch(admin, [{"type": "Filter", "attributes": {"name": "changes"}}])
    await admin.patch(f"/objects/{oid}", json={"is_valid": 2})
    page = (await admin.get("/changes", params={"after": start})).json()
    mine = [e for e in page["events"] if e["subject"] == oid]
    assert [e["type"] for e in mine] == ["awe.catalog.object.created.v1",
                                         "awe.catalog.object.curated.v1"]
    assert mine[0]["data"]["object"]["oid"] == oid
    assert mine[1]["data"]["changes"] == {"is_valid": 2}
    assert mine[0]["sequence"] < mine[1]["sequence"]
    assert mine[0]["source"] == "/awe/test/catalog" and mine[0]["specversion"] == "1.0"
    seqs = [e["sequence"] for e in page["events"]]
    assert seqs == list(range(start + 1, start + 1 + len(seqs)))  # no gaps
    paged = (await admin.get("/changes", params={"after": start, "limit": 1})).json()
    assert paged["next_after"] == start + 1 and len(paged["events"]) == 1


async def test_counts_by_class_follow_privileges(admin: httpx.AsyncClient, users: Users) -> None:
    """``GET /counts``: each object once, by its own class, of those the caller may see."""
    bob = await users.make("counter")
    before = (await bob.get("/counts")).json()
    s = await seed(admin, privileges=1)  # the admin's own: bob sees none of them
    after_admin = (await admin.get("/counts")).json()
    assert after_admin["BiasFrame"] >= 4 and after_admin["Chip"] >= 2
    assert (await bob.get("/counts")).json() == before
    r = await admin.post("/query/count", json={"cls": "BiasFrame", "where": {
        "node": "compare", "op": "eq", "path": ["type"], "value": "BiasFrame"}})
    assert r.json()["count"] == after_admin["BiasFrame"]  # the same figure as a query's
    assert s.tag
