"""Bad input gets a clear 4xx problem document, and nothing stored is touched."""

from __future__ import annotations

import uuid

import httpx
import pytest
from seed import batch

pytestmark = pytest.mark.integration


def problem(r: httpx.Response, status: int, code: str) -> str:
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith("application/problem+json")
    body = r.json()
    assert body["error"] == code and body["status"] == status
    return str(body["detail"])


async def total(admin: httpx.AsyncClient) -> int:
    return int((await admin.post("/query/count", json={"cls": "DBObject"})).json()["count"])


async def test_unauthenticated_and_bad_token(catalog_app: object) -> None:
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=catalog_app),  # type: ignore[arg-type]
                                 base_url="http://catalog") as anon:
        # reads without a token see public data only (test_public_data); writes are 401
        assert "Bearer" in problem(await anon.post("/objects", json={"type": "Chip"}),
                                   401, "unauthorized")
        assert "Bearer" in problem(await anon.get("/changes"), 401, "unauthorized")
        r = await anon.get("/whoami", headers={"Authorization": "Bearer nope"})
        assert "unknown, revoked or expired" in problem(r, 401, "unauthorized")


async def test_unknown_attribute_and_wrong_type(admin: httpx.AsyncClient) -> None:
    before = await total(admin)
    r = await admin.post("/objects", json={"type": "RawScienceFrame",
                                           "attributes": {"seeing": 0.8}})
    assert "no attribute 'seeing'" in problem(r, 400, "invalid_object")
    r = await admin.post("/objects", json={"type": "RawScienceFrame",
                                           "attributes": {"exptime": "long"}})
    assert "exptime" in problem(r, 400, "invalid_object")
    r = await admin.post("/objects", json={"type": "Chip", "colour": "red"})
    assert "colour" in problem(r, 400, "invalid_request")
    r = await admin.post("/objects", json={"type": "Chip'; DROP TABLE objects;--"})
    assert "unknown class" in problem(r, 400, "invalid_object")
    r = await admin.post("/objects", json={"type": "RawFrame"})
    assert "abstract" in problem(r, 400, "invalid_object")
    r = await admin.post("/objects", json={"type": "Chip", "privileges": 9})
    assert "privileges" in problem(r, 400, "invalid_request")
    assert await total(admin) == before


async def test_bad_references(admin: httpx.AsyncClient) -> None:
    before = await total(admin)
    ghost = str(uuid.uuid4())
    r = await admin.post("/objects", json={"type": "Chip", "refs": {"instrument": ghost}})
    assert f"no visible object {ghost}" in problem(r, 400, "invalid_object")
    (filt,) = await batch(admin, [{"type": "Filter", "attributes": {"name": "x"}}])
    r = await admin.post("/objects", json={"type": "Chip", "refs": {"instrument": filt}})
    assert "is a Filter, not a Instrument" in problem(r, 400, "invalid_object")
    r = await admin.post("/objects", json={"type": "Chip", "refs": {"instrument": "x' OR 1=1"}})
    assert "not an object id" in problem(r, 400, "invalid_request")
    # a batch with one bad reference stores nothing at all, and takes no sequence number
    last = (await admin.get("/changes", params={"limit": 1})).json()["last_sequence"]
    r = await admin.post("/objects/batch", json={"objects": [
        {"type": "Filter", "attributes": {"name": "ok"}},
        {"type": "Chip", "refs": {"instrument": ghost}}]})
    problem(r, 400, "invalid_object")
    assert await total(admin) == before + 1
    (after,) = await batch(admin, [{"type": "Filter"}])
    page = (await admin.get("/changes", params={"after": last})).json()
    assert [(e["sequence"], e["subject"]) for e in page["events"]] == [(last + 1, after)]


async def test_sql_fragments_as_values_match_nothing(admin: httpx.AsyncClient) -> None:
    await batch(admin, [{"type": "Chip", "privileges": 3, "attributes": {"name": "sqlsafe"}}])
    before = await total(admin)
    for evil in ["' OR '1'='1", "sqlsafe'; DELETE FROM objects; --", "%", "*' --"]:
        spec = {"cls": "Chip", "where": {"node": "compare", "op": "eq", "path": ["name"],
                                         "value": evil}}
        assert (await admin.post("/query/count", json=spec)).json()["count"] == 0
    spec = {"cls": "Chip", "where": {"node": "like", "path": ["name"], "pattern": "sqlsafe%"}}
    assert (await admin.post("/query/count", json=spec)).json()["count"] == 0  # % is literal
    assert await total(admin) == before


async def test_bad_queries(admin: httpx.AsyncClient) -> None:
    cases = [
        ({"cls": "Chip", "where": {"node": "compare", "op": "eq", "path": ["nme"], "value": 1}},
         "Chip has no attribute 'nme'", "invalid_query"),
        ({"cls": "RawFrame", "where": {"node": "compare", "op": "gt", "path": ["exptime"],
                                       "value": "ten"}}, "exptime is a float", "invalid_query"),
        ({"cls": "Chip", "where": {"node": "compare", "op": "eq", "path": ["name"],
                                   "value": {"$ne": 1}}}, "value", "invalid_request"),
        ({"cls": "Chip", "where": {"node": "sql", "text": "1=1"}}, "node", "invalid_request"),
        ({"cls": "NoSuch"}, "unknown class", "invalid_query"),
    ]
    for spec, message, code in cases:
        r = await admin.post("/query", json={"query": spec})
        assert message in problem(r, 400, code)
    r = await admin.post("/query", json={"query": {"cls": "Chip"}, "limit": 100000})
    problem(r, 400, "invalid_request")


async def test_malformed_json_and_wrong_content(admin: httpx.AsyncClient) -> None:
    r = await admin.post("/objects", content=b'{"type": "Chip", ',
                         headers={"content-type": "application/json"})
    assert "JSON" in problem(r, 400, "invalid_request")
    r = await admin.post("/objects/batch", json={"objects": "all of them"})
    problem(r, 400, "invalid_request")
    r = await admin.post("/objects/batch", json={"objects": []})
    problem(r, 400, "invalid_request")


async def test_huge_batch_and_body(admin: httpx.AsyncClient) -> None:
    before = await total(admin)
    r = await admin.post("/objects/batch", json={"objects": [
        {"type": "Filter"} for _ in range(5001)]})
    assert "limit is 5000" in problem(r, 413, "payload_too_large")
    big = {"type": "Filter", "comments": "x" * 9000}
    r = await admin.post("/objects/batch", json={"objects": [big] * 1000})
    assert "exceeds the limit" in problem(r, 413, "payload_too_large")

    async def stream() -> object:
        for _ in range(300):
            yield b" " * 32768  # no Content-Length: counted while streaming

    r = await admin.post("/objects", content=stream(),  # type: ignore[arg-type]
                         headers={"content-type": "application/json"})
    problem(r, 413, "payload_too_large")
    assert await total(admin) == before


async def test_unknown_ids_and_duplicates(admin: httpx.AsyncClient) -> None:
    ghost = str(uuid.uuid4())
    assert ghost in problem(await admin.get(f"/objects/{ghost}"), 404, "not_found")
    problem(await admin.get("/objects/1;DROP"), 404, "not_found")
    problem(await admin.patch(f"/objects/{ghost}", json={"is_valid": 0}), 404, "not_found")
    (oid,) = await batch(admin, [{"type": "Filter"}])
    r = await admin.post("/objects", json={"type": "Filter", "oid": oid})
    assert "exists already" in problem(r, 409, "conflict")
    r = await admin.post("/objects/batch", json={"objects": [
        {"type": "Filter", "oid": ghost}, {"type": "Filter", "oid": ghost}]})
    assert "same oid twice" in problem(r, 400, "invalid_object")
    assert "no user" in problem(await admin.get("/users/nobody"), 404, "not_found")
    assert "/nowhere" in problem(await admin.get("/nowhere"), 404, "not_found")
