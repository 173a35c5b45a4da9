"""The catalogue at survey scale (issue 17): the data-ID columns, their migration, keyset
pages.

The migration test builds a catalogue on the schema before 0013 (migrations 0001-0012 on a
fresh database) from objects registered through the API, migrates it with the catalog's own
runner, and compares every object before and after (every column the old schema had, by
oid); then the DSL queries compiled for the new columns must select what the old SQL
(object_refs and JSONB) selected before the migration.
"""

from __future__ import annotations

import datetime as dt
import json
import uuid
from importlib import resources
from typing import Any

import asyncpg
import httpx
import pytest
from conftest import Users
from seed import batch

import awecore as awe
from awe_catalog.models import Caller
from awe_catalog.storage.migrations import apply_migrations
from awe_catalog.storage.objects import ObjectStore
from awe_catalog.storage.sql import compile_select
from awecore import Filter
from awecore.ids import new_oid
from awecore.query import QuerySpec
from awecore.server import pg
from awecore.stack import PostgresServer

pytestmark = pytest.mark.integration

#: this module's night (no other test module uses it)
NIGHT = dt.datetime(2011, 7, 23, 22, tzinfo=dt.UTC)
ADMIN = Caller(name="admin", is_admin=True, default_project="admin")


def at(hours: float) -> str:
    return (NIGHT + dt.timedelta(hours=hours)).isoformat()


async def populate(client: httpx.AsyncClient, tag: str) -> dict[str, Any]:
    """Two instruments with a chip of the same name each (a name is not an identity), two
    filters, raw and reduced frames of both, calibrations with a list of references, tile
    products, a frame without a chip; privileges 3 unless said."""
    (i1, i2) = await batch(client, [{"type": "Instrument", "privileges": 3,
                                     "attributes": {"name": f"CAM{tag}{n}"}} for n in (1, 2)])
    chips = await batch(client, [
        {"type": "Chip", "privileges": 3, "attributes": {"name": f"c{tag}"},
         "refs": {"instrument": i}} for i in (i1, i2)] + [
        {"type": "Chip", "privileges": 3, "attributes": {"name": f"d{tag}"},
         "refs": {"instrument": i1}}])
    filters = await batch(client, [{"type": "Filter", "privileges": 3,
                                    "attributes": {"name": f"{b}{tag}"}} for b in "gr"])
    raws = await batch(client, [
        {"type": "RawScienceFrame", "privileges": 3,
         "attributes": {"date_obs": at(k), "exptime": 10.0 * (k % 4), "object": f"F{k % 3}"},
         "refs": {"chip": chips[k % 3], "filter": filters[k % 2],
                  "instrument": i1 if k % 3 != 1 else i2}} for k in range(12)])
    naive = (NIGHT + dt.timedelta(hours=30)).replace(tzinfo=None).isoformat()
    raws += await batch(client, [{"type": "RawScienceFrame", "privileges": 3,
                                  "attributes": {"date_obs": naive}, "refs": {}}])
    reduced = await batch(client, [
        {"type": "ReducedScienceFrame", "privileges": 3 if k % 5 else 1,
         "attributes": {"date_obs": at(k), "exptime": 10.0 * (k % 4) if k % 4 else None},
         "refs": {"chip": chips[k % 3], "filter": filters[k % 2], "raw": raws[k],
                  "instrument": i1 if k % 3 != 1 else i2}} for k in range(12)])
    rawbias = await batch(client, [{"type": "RawBiasFrame", "privileges": 3,
                                    "attributes": {"date_obs": at(k)},
                                    "refs": {"chip": chips[0]}} for k in range(3)])
    bias = await batch(client, [{"type": "BiasFrame", "privileges": 3,
                                 "timestamp_start": at(-12), "timestamp_end": at(36),
                                 "refs": {"chip": chips[0], "raw_bias_frames": rawbias}}])
    tiles = await batch(client, [
        {"type": "CoaddedRegriddedFrame", "privileges": 3,
         "attributes": {"tile": f"T{tag}_{k % 2}", "n_frames": k},
         "refs": {"filter": filters[k % 2], "regridded_frames": []}} for k in range(4)])
    return {"instruments": [i1, i2], "chips": chips, "filters": filters, "raws": raws,
            "reduced": reduced, "rawbias": rawbias, "bias": bias, "tiles": tiles}


def queries(tag: str, made: dict[str, Any]) -> list[dict[str, Any]]:
    """DSL queries over the data-ID paths (and some that are not)."""
    def eq(path: list[str], value: Any, op: str = "eq") -> dict[str, Any]:
        return {"node": "compare", "op": op, "path": path, "value": value}
    chip, filt = f"c{tag}", f"g{tag}"
    return [
        {"cls": "ReducedScienceFrame", "where": eq(["chip", "name"], chip)},
        {"cls": "ReducedScienceFrame", "where": {"node": "and", "items": [
            eq(["chip", "name"], chip), eq(["filter", "name"], filt)]}},
        {"cls": "RawFrame", "where": {"node": "and", "items": [
            eq(["chip", "name"], chip),
            {"node": "between", "path": ["date_obs"], "low": at(2), "high": at(9)}]}},
        {"cls": "Frame", "where": eq(["chip", "instrument", "name"], f"CAM{tag}2")},
        {"cls": "ReducedScienceFrame", "where": eq(["raw"], made["raws"][4])},
        {"cls": "ReducedScienceFrame", "where": eq(["raw", "date_obs"], at(5), "ge")},
        {"cls": "ReducedScienceFrame", "where": {"node": "or", "items": [
            eq(["chip"], made["chips"][2]),
            {"node": "not", "item": eq(["filter", "name"], filt)}]}},
        {"cls": "RawScienceFrame", "where": {"node": "and", "items": [
            eq(["chip"], None), eq(["date_obs"], at(29), "gt")]}},
        {"cls": "Frame", "where": {"node": "and", "items": [
            eq(["chip"], made["chips"][0], "ne"),
            {"node": "in", "path": ["filter", "name"], "values": [filt, f"r{tag}"]}]}},
        {"cls": "CoaddedRegriddedFrame", "where": {"node": "and", "items": [
            eq(["tile"], f"T{tag}_1"), eq(["filter", "name"], f"r{tag}")]}},
        {"cls": "CoaddedRegriddedFrame", "where": {
            "node": "like", "path": ["tile"], "pattern": f"T{tag}_*"}},
        {"cls": "BiasFrame", "where": eq(["raw_bias_frames"], made["rawbias"][1])},
        {"cls": "Frame", "where": {"node": "in", "path": ["oid"],
                                      "values": made["reduced"] + made["tiles"]},
         "order_by": [{"path": ["date_obs"], "descending": True}]},
    ]


async def run(conn: asyncpg.Connection, spec: dict[str, Any], caller: Caller,
              dimensions: bool) -> list[str]:
    q = compile_select(QuerySpec.model_validate(spec), caller, 0, 1000, dimensions=dimensions)
    return [r["oid"] for r in await conn.fetch(q.sql, *q.params)]


async def test_migration_keeps_every_object_and_every_answer(
        postgres: PostgresServer, catalog_settings: Any, admin: httpx.AsyncClient,
        users: Users) -> None:
    tag = uuid.uuid4().hex[:6]
    made = await populate(admin, tag)
    alice = await users.make("mig")
    private = await batch(alice, [{"type": "ReducedScienceFrame", "privileges": 1,
                         "attributes": {"date_obs": at(3)},
                         "refs": {"chip": made["chips"][0], "filter": made["filters"][0]}}])
    # the old catalogue: migrations up to 0012, rows as the API registered them
    old_url = postgres.create_database(f"awe_mig_{tag}")
    live = await asyncpg.connect(catalog_settings.database_url.get_secret_value())
    old = await asyncpg.connect(old_url)
    try:
        files = sorted(f for f in resources.files("awe_catalog").joinpath("migrations")
                       .iterdir() if f.name.endswith(".sql"))
        await old.execute("CREATE TABLE schema_migrations (version text PRIMARY KEY, "
                          "applied_at timestamptz NOT NULL DEFAULT now())")
        for f in files:
            version = f.name.removesuffix(".sql")
            if version >= "0013":
                break
            async with old.transaction():
                await old.execute(f.read_text())
                await old.execute("INSERT INTO schema_migrations VALUES ($1)", version)
        columns = [r[0] for r in await old.fetch(
            "SELECT column_name FROM information_schema.columns WHERE table_name = 'objects' "
            "ORDER BY ordinal_position")]
        assert "dim_chip" not in columns and "obs_time" not in columns
        listed = ", ".join(columns)
        mine = [uuid.UUID(o) for group in made.values() for o in group] + [
            uuid.UUID(o) for o in private]
        ours = await live.fetch(f"SELECT {listed} FROM objects WHERE oid = ANY($1::uuid[])",
                                mine)
        oids = [r["oid"] for r in ours]
        await old.copy_records_to_table("objects", records=[tuple(r) for r in ours],
                                        columns=columns)
        refs = await live.fetch("SELECT src, name, pos, dst FROM object_refs "
                                "WHERE src = ANY($1::uuid[])", oids)
        await old.copy_records_to_table("object_refs", records=[tuple(r) for r in refs],
                                        columns=("src", "name", "pos", "dst"))

        async def snapshot() -> dict[str, str]:
            rows = await old.fetch(f"SELECT {listed} FROM objects ORDER BY oid")
            return {str(r["oid"]): json.dumps(dict(r), default=str, sort_keys=True)
                    for r in rows}
        before = await snapshot()
        assert len(before) == len(ours) >= 40
        bob = Caller(name="bob", default_project="nobody", projects=["nobody"])
        asked = queries(tag, made)
        answers = {(i, c.name): await run(old, spec, c, dimensions=False)
                   for i, spec in enumerate(asked) for c in (ADMIN, bob)}
        assert all(answers[(i, "admin")] for i in range(len(asked)))  # each selects some

        applied = await apply_migrations(old)
        assert "0013_dimensions" in applied
        assert await snapshot() == before  # not a row lost, not a value changed
        refs_after = await old.fetchval("SELECT count(*) FROM object_refs")
        assert refs_after == len(refs)
        # the columns hold the data ID: the reference, the tile, the observation time
        row = await old.fetchrow("SELECT * FROM objects WHERE oid = $1",
                                 uuid.UUID(made["reduced"][4]))
        assert str(row["dim_chip"]) == made["chips"][1]
        assert str(row["dim_filter"]) == made["filters"][0]
        assert str(row["dim_raw"]) == made["raws"][4]
        assert str(row["dim_instrument"]) == made["instruments"][1]
        assert row["obs_time"] == NIGHT + dt.timedelta(hours=4)
        naive = await old.fetchval("SELECT obs_time FROM objects WHERE oid = $1",
                                   uuid.UUID(made["raws"][-1]))
        assert naive == NIGHT + dt.timedelta(hours=30)  # a naive time is UTC
        bias = await old.fetchrow("SELECT dim_chip, dim_raw FROM objects WHERE oid = $1",
                                  uuid.UUID(made["bias"][0]))
        assert str(bias["dim_chip"]) == made["chips"][0] and bias["dim_raw"] is None
        tile = await old.fetchval("SELECT dim_tile FROM objects WHERE oid = $1",
                                  uuid.UUID(made["tiles"][1]))
        assert tile == f"T{tag}_1"
        pool = await pg.create_pool(old_url, min_size=1, max_size=1)
        try:
            async with pool.acquire() as conn:
                for (i, who), want in answers.items():
                    caller = ADMIN if who == "admin" else bob
                    assert await run(old, asked[i], caller, dimensions=True) == want, asked[i]
                    # as the API runs it: the chips and filters named looked up first
                    page = await ObjectStore(conn).query(QuerySpec.model_validate(asked[i]),
                                                         caller, 0, 1000)
                    assert [o.oid for o, _ in page] == want, asked[i]
        finally:
            await pool.close()
        # the same columns as the catalog fills them on registration (the session's)
        for oid in made["reduced"] + made["raws"] + made["tiles"]:
            dims = "dim_instrument, dim_chip, dim_filter, dim_raw, dim_tile, obs_time"
            q = f"SELECT {dims} FROM objects WHERE oid = $1"
            assert dict(await live.fetchrow(q, uuid.UUID(oid))) == dict(
                await old.fetchrow(q, uuid.UUID(oid)))
        # idempotent: once more changes nothing
        async with old.transaction():
            await old.execute((resources.files("awe_catalog").joinpath("migrations")
                               / "0013_dimensions.sql").read_text())
        assert await snapshot() == before
    finally:
        await old.close()
        await live.close()


async def test_keyset_pages_are_the_offset_pages(admin: httpx.AsyncClient) -> None:
    tag = uuid.uuid4().hex[:6]
    made = await populate(admin, tag)
    ours = {"node": "in", "path": ["oid"], "values": made["reduced"] + made["raws"]}
    by_chip = {"node": "and", "items": [ours, {"node": "in", "path": ["chip", "name"],
                                               "values": [f"c{tag}", f"d{tag}"]}]}
    for where, order, n in (
            (ours, [], 25), (ours, [{"path": ["exptime"], "descending": True}], 25),
            (ours, [{"path": ["exptime"]}, {"path": ["date_obs"], "descending": True}], 25),
            (by_chip, [], 24), (by_chip, [{"path": ["date_obs"]}], 24)):
        spec = {"cls": "Frame", "where": where, "order_by": order}
        r = await admin.post("/query", json={"query": spec, "limit": 1000})
        everything = [o["oid"] for o in r.json()["objects"]]
        assert len(everything) == n and r.json()["next_after"] is None
        got: list[str] = []
        after = None
        while True:
            body: dict[str, Any] = {"query": spec, "limit": 4}
            if after:
                body["after"] = after
            page = (await admin.post("/query", json=body)).json()
            by_offset = (await admin.post("/query", json={
                "query": spec, "limit": 4, "offset": len(got)})).json()
            assert [o["oid"] for o in page["objects"]] == [
                o["oid"] for o in by_offset["objects"]]
            got += [o["oid"] for o in page["objects"]]
            after = page["next_after"]
            if after is None:
                assert page["next_offset"] is None
                break
        assert got == everything, order


async def test_bad_cursors_are_refused(admin: httpx.AsyncClient) -> None:
    spec = {"cls": "Frame", "order_by": [{"path": ["exptime"]}]}
    for after, status in (("not a cursor!", 400), ("AAAA", 400), ("WzEsMl0", 400),
                          ("WyJ4IiwiYWJjIl0", 400)):
        r = await admin.post("/query", json={"query": spec, "after": after})
        assert r.status_code == status, (after, r.text)
        assert r.headers["content-type"].startswith("application/problem+json")
    r = await admin.post("/query", json={"query": spec, "after": "WzEsMl0", "offset": 5})
    assert r.status_code == 400 and "not both" in r.json()["detail"]


def test_the_client_pages_by_cursor(session: awe.CatalogClient,
                                    monkeypatch: pytest.MonkeyPatch) -> None:
    tag = "keyset-" + new_oid()[-8:]
    oids = session.create_batch([Filter(name=tag) for _ in range(7)])
    monkeypatch.setattr("awecore.client._http.PAGE_SIZE", 3)
    bodies: list[dict[str, Any]] = []
    original = session.request

    def request(method: str, path: str, **kwargs: Any) -> Any:
        if path == "/query":
            bodies.append(kwargs["json"])
        return original(method, path, **kwargs)
    monkeypatch.setattr(session, "request", request)
    q = Filter.name == tag
    everything = [o.record.oid for o in q if o.record is not None]
    assert sorted(everything) == sorted(oids)
    # the first page by offset, the next ones after the cursor the previous page gave
    assert [(b["offset"], "after" in b) for b in bodies] == [(0, False), (0, True), (0, True)]
    bodies.clear()
    assert [o.record.oid for o in q[2:6] if o.record is not None] == everything[2:6]
    assert [(b["offset"], b["limit"], "after" in b) for b in bodies] == [
        (2, 3, False), (0, 1, True)]
