"""A mixed batch that POST /objects/batch validates in one pass per class is stored, and
travels in its events, exactly as the same objects registered one at a time (POST /objects
takes the exact path: ObjectIn, then validate_object): every column of every row, and every
event's payload, but for what each registration makes anew (oid, time, clocks)."""

from __future__ import annotations

import json
import uuid
from typing import Any

import asyncpg
import httpx
import pytest
from seed import batch

from awe_catalog.config import CatalogSettings

pytestmark = pytest.mark.integration

#: what two registrations of the same object make differently
MADE = ("oid", "creation_date", "hlc", "curation_hlc", "curation_clock")


def mixed(chip: str, filt: str, raws: list[str], tag: str) -> list[dict[str, Any]]:
    """Several classes interleaved; lists of references, validity windows (naive and with an
    offset), nested attributes with nulls, numbers to bring to floats, an observation time,
    processing parameters with nulls inside, text beyond ASCII, given and default fields."""
    return [
        {"type": "Chip", "attributes": {"name": f"c-{tag}", "nx": 2048}},
        {"type": "ReducedScienceFrame", "privileges": 3, "is_valid": 2, "quality_flags": 5,
         "attributes": {"exptime": 300, "object": "KIDS_1ü",
                        "imstat": {"mean": 1000, "stdev": None},
                        "date_obs": "2003-02-14T01:02:03"},
         "refs": {"chip": chip, "filter": filt}, "filename": f"red/{tag}.fits",
         "file_size": 10, "checksum": "abc", "software_version": "1.0",
         "process_params": {"a": None, "b": [1, 2.5], "c": {"d": "e"}}},
        {"type": "Filter", "privileges": 2, "comments": "r band, «quoted»",
         "attributes": {"name": f"f-{tag}"}},
        {"type": "BiasFrame", "refs": {"chip": chip, "raw_bias_frames": raws},
         "timestamp_start": "2003-02-13T00:00:00", "timestamp_end": "2003-02-15T00:00:00+02:00",
         "attributes": {"exptime": 0, "imstat": {"mean": 400.5}}},
        {"type": "BiasFrame", "refs": {"raw_bias_frames": []}, "timestamp_start": None,
         "attributes": {"exptime": None}},
        {"type": "RawScienceFrame", "attributes": {
            "date_obs": "2003-02-14T01:02:03.5+00:00", "exptime": 1e-7, "imstat": {}}},
        {"type": "ReducedScienceFrame", "attributes": {"exptime": 300.0, "object": "KIDS_2",
                                                       "imstat": {"mean": 1.0, "stdev": 30.5}},
         "refs": {"chip": chip, "filter": filt}},
        {"type": "Chip", "attributes": {}, "refs": {}},
    ]


async def stored(conn: asyncpg.Connection, oids: list[str]) -> list[dict[str, Any]]:
    """Every column of the objects' rows, as the database gives them back as JSON (the
    filename, unique, made alike)."""
    rows = await conn.fetch(
        "SELECT to_jsonb(o)::text AS row FROM objects o "
        "JOIN unnest($1::uuid[]) WITH ORDINALITY AS u(oid, n) ON u.oid = o.oid ORDER BY u.n",
        oids)
    return [alike(json.loads(row["row"])) for row in rows]


def alike(value: dict[str, Any]) -> dict[str, Any]:
    """An object without what each registration makes anew (its filename, unique, too)."""
    out = {k: v for k, v in value.items() if k not in MADE}
    if out.get("filename"):
        out["filename"] = "red/x.fits"
    return out


async def events(admin: httpx.AsyncClient, after: int, n: int) -> list[dict[str, Any]]:
    got: list[dict[str, Any]] = []
    while len(got) < n:
        page = (await admin.get("/changes", params={"after": after, "limit": 1000})).json()
        assert page["events"], "the changelog ended before the events"
        got.extend(page["events"])
        after = page["events"][-1]["sequence"]
    return got[:n]


async def test_a_mixed_batch_is_stored_as_its_objects_one_at_a_time(
        admin: httpx.AsyncClient, catalog_settings: CatalogSettings) -> None:
    tag = uuid.uuid4().hex[:6]
    chip, filt = await batch(admin, [{"type": "Chip", "attributes": {"name": f"sc-{tag}"}},
                                     {"type": "Filter", "attributes": {"name": f"sf-{tag}"}}])
    raws = await batch(admin, [{"type": "RawBiasFrame", "refs": {"chip": chip}}] * 2)
    objects = mixed(chip, filt, raws, tag) * 2
    for i, o in enumerate(objects):  # filenames are unique
        if "filename" in o:
            objects[i] = {**o, "filename": f"red/{tag}-{i}.fits"}
    last = (await admin.get("/changes", params={"limit": 1})).json()["last_sequence"]
    fast = await batch(admin, objects)
    alone = []
    for o in objects:
        r = await admin.post("/objects", json={**o, "filename": o["filename"] + "-alone"}
                             if "filename" in o else o)
        assert r.status_code == 201, r.text
        alone.append(r.json()["oid"])
    conn = await asyncpg.connect(catalog_settings.database_url.get_secret_value())
    try:
        rows_fast, rows_alone = await stored(conn, fast), await stored(conn, alone)
    finally:
        await conn.close()
    assert len(rows_fast) == len(objects)
    assert rows_fast == rows_alone
    got = await events(admin, last, 2 * len(objects))
    assert [e["subject"] for e in got] == [*fast, *alone]
    assert all(e["data"]["kind"] == "created" for e in got)
    payloads = [{**e["data"], "object": alike(e["data"]["object"])} for e in got]
    assert payloads[:len(objects)] == payloads[len(objects):]
