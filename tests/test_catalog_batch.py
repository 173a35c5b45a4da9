"""POST /objects/batch reads its body itself (issue 17): odd bodies get FastAPI's own 4xx
answers, a batch the one-pass validation leaves to the exact path is registered the same,
and a registered object reads back, and travels in its event, as one registered alone."""

from __future__ import annotations

import uuid

import httpx
import pytest
from conftest import Users
from seed import batch

pytestmark = pytest.mark.integration


def refused(r: httpx.Response, code: str = "invalid_request") -> str:
    assert r.status_code == 400, r.text
    assert r.headers["content-type"].startswith("application/problem+json")
    assert r.json()["error"] == code
    return str(r.json()["detail"])


async def test_odd_bodies_are_refused(admin: httpx.AsyncClient) -> None:
    json_type = {"content-type": "application/json"}
    for content, headers in [
        (b"\xff\x1c\x1c", json_type),  # no text at all
        (b'{"objects": [', json_type),
        (b"", json_type),
        (b'{"objects": [{"type": "Chip"}]}', {}),  # not said to be JSON
        (b'{"objects": [{"type": "Chip"}]}', {"content-type": "text/plain"}),
        (b'{"objects": [{"type": "Chip"}], "more": 1}', json_type),
        (b'{"objects": {"type": "Chip"}}', json_type),
        (b'[{"type": "Chip"}]', json_type),
        (b'{"objects": [{"type": "Chip", "quality_flags": 123456789012345678901234}]}',
         json_type),
    ]:
        refused(await admin.post("/objects/batch", content=content, headers=headers))
    detail = refused(await admin.post("/objects/batch", json={"objects": [
        {"type": "Chip"}, {"type": "Chip", "attributes": {"seeing": 1}}]}), "invalid_object")
    assert detail.startswith("object 1: attributes.seeing")


async def test_the_exact_path_registers_what_the_fast_one_leaves(
        admin: httpx.AsyncClient) -> None:
    (instrument,) = await batch(admin, [{"type": "Instrument", "attributes": {"name": "i1"}}])
    mine = str(uuid.uuid4())
    r = await admin.post("/objects/batch", json={"objects": [
        {"type": "Chip", "oid": mine.upper(), "refs": {"instrument": instrument.upper()},
         "filename": None},  # an oid to canonicalise, a null the class lacks
        {"type": "Filter", "attributes": {"name": "fast"}}]})
    assert r.status_code == 201, r.text
    oids = r.json()["oids"]
    assert oids[0] == mine
    got = (await admin.get(f"/objects/{mine}")).json()
    assert got["refs"] == {"instrument": instrument}


async def test_a_batch_object_is_as_one_registered_alone(admin: httpx.AsyncClient) -> None:
    (chip,) = await batch(admin, [{"type": "Chip", "attributes": {"name": "alone"}}])
    body = {"type": "BiasFrame", "privileges": 3, "refs": {"chip": chip},
            "timestamp_start": "2003-02-13T00:00:00", "timestamp_end": "2003-02-15T00:00:00Z",
            "attributes": {"exptime": 0, "date_obs": "2003-02-14T01:00:00",
                           "imstat": {"mean": 400, "stdev": None}}}
    alone = (await admin.post("/objects", json=body)).json()
    last = (await admin.get("/changes", params={"limit": 1})).json()["last_sequence"]
    (oid,) = await batch(admin, [body])
    many = (await admin.get(f"/objects/{oid}")).json()
    differ = {"oid", "creation_date", "hlc", "curation_hlc"}
    assert {k: v for k, v in many.items() if k not in differ} == {
        k: v for k, v in alone.items() if k not in differ}
    assert many["attributes"] == {"exptime": 0.0, "date_obs": "2003-02-14T01:00:00",
                                  "imstat": {"mean": 400.0}}
    (event,) = (await admin.get("/changes", params={"after": last})).json()["events"]
    assert event["subject"] == oid and event["data"]["kind"] == "created"
    assert event["data"]["object"] == many


async def test_events_of_a_batch_have_ids_in_their_order(admin: httpx.AsyncClient) -> None:
    """A batch's events name themselves with time-ordered ids (UUIDv7), each its own and
    in the order of the changelog (issue 17: random ids cost the UNIQUE index a leaf each),
    and a later batch's come after them."""
    last = (await admin.get("/changes", params={"limit": 1})).json()["last_sequence"]
    first = await batch(admin, [{"type": "Filter", "attributes": {"name": f"ev{i}"}}
                                for i in range(1500)])  # two parts
    (later,) = await batch(admin, [{"type": "Filter", "attributes": {"name": "ev-later"}}])
    events: list[dict[str, object]] = []
    while len(events) < len(first) + 1:
        page = (await admin.get("/changes", params={
            "after": last, "limit": 1000})).json()["events"]
        assert page, "the changelog ended before the batch's events"
        events.extend(page)
        last = page[-1]["sequence"]
    assert [e["subject"] for e in events] == [*first, later]
    ids = [uuid.UUID(str(e["id"])) for e in events]
    assert all(i.version == 7 and i.variant == uuid.RFC_4122 for i in ids)
    assert ids == sorted(ids) and len(set(ids)) == len(ids)


async def test_a_problem_in_a_later_part_stores_nothing(admin: httpx.AsyncClient) -> None:
    """A batch is validated a part at a time while the database stores the parts before:
    a problem in a later part still leaves nothing stored, and is worded as ever."""
    async def stored() -> int:
        return int((await admin.post("/query/count", json={"cls": "Filter"})).json()["count"])

    before = await stored()
    objects: list[dict[str, object]] = [{"type": "Filter", "attributes": {"name": f"part{i}"}}
                                        for i in range(1500)]
    bad = [*objects[:1200], {"type": "Filter", "attributes": {"name": 5}}, *objects[1200:]]
    detail = refused(await admin.post("/objects/batch", json={"objects": bad}),
                     "invalid_object")
    assert detail.startswith("object 1200: attributes.name")
    twice = str(uuid.uuid4())
    same = [{**objects[0], "oid": twice}, *objects[1:1400], {**objects[0], "oid": twice}]
    assert "same oid twice" in refused(
        await admin.post("/objects/batch", json={"objects": same}), "invalid_object")
    elsewhere = [*objects[:1300], {"type": "Filter", "project": "not-mine"}]
    r = await admin.post("/objects/batch", json={"objects": elsewhere})
    assert r.status_code == 201  # an admin registers in any project
    assert await stored() == before + 1301


async def test_a_project_not_yours_in_a_later_part_is_forbidden(
        admin: httpx.AsyncClient, users: Users) -> None:
    bob = await users.make("bob")
    objects: list[dict[str, object]] = [{"type": "Filter"} for _ in range(1500)]
    before = int((await admin.post("/query/count", json={"cls": "Filter"})).json()["count"])
    r = await bob.post("/objects/batch", json={"objects": [
        *objects[:1100], {"type": "Filter", "project": "not-bobs"}, *objects[1100:]]})
    assert r.status_code == 403, r.text
    assert "not-bobs" in r.json()["detail"]
    after = int((await admin.post("/query/count", json={"cls": "Filter"})).json()["count"])
    assert after == before
