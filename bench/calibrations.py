"""Best-calibration look-ups at 10^6 calibrations: the catalogue's endpoints beside SQL.

Ten years of calibrations of a 32-chip camera are loaded straight into the catalogue's
database (8 classes, one per chip and night, each with its class's default window around its
night; one in 20 invalidated): 10^6 rows by default. Then, for random chips, classes and
moments, each look-up is timed three ways in the same run:

- ours: ``POST /calibrations/best`` with one request (HTTP, JSON, the caller's visibility),
  ``GET /calibrations/{cls}/best`` for the same, and the same look-ups a thousand at a
  time (the planner's way), per look-up; and the endpoint's own statement run straight on
  the database (what the look-up costs without HTTP and authentication, which every
  endpoint pays);
- hand-written SQL over the references a person would join (``object_refs`` to the chip by
  name), straight to PostgreSQL;
- hand-written SQL over the index the endpoint uses (the chip's oid in the object's refs),
  tuned so PostgreSQL uses it, straight to PostgreSQL: the floor.

    .venv/bin/python bench/calibrations.py [--nights 3900] [--lookups 500]
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import random
import time
from collections.abc import Awaitable, Callable
from typing import Any

import asyncpg
import httpx
from _common import TOKEN, catalog_service, line, percentile

from awe_catalog.models import Caller
from awe_catalog.storage.calibrations import CalibrationStore, Wanted

START = dt.datetime(2010, 1, 1, 12, tzinfo=dt.UTC)
#: class -> nights either side of its night that it is valid (the planner's defaults)
CLASSES = {"ReadNoise": 3, "BiasFrame": 3, "HotPixelMap": 3, "DomeFlatFrame": 7,
           "ColdPixelMap": 7, "TwilightFlatFrame": 21, "MasterFlatFrame": 7,
           "PhotometricParameters": 1}
FILTERED = {"DomeFlatFrame", "ColdPixelMap", "TwilightFlatFrame", "MasterFlatFrame",
            "PhotometricParameters"}

HAND_JOINS = """
SELECT o.oid::text FROM objects o
JOIN object_refs rc ON rc.src = o.oid AND rc.name = 'chip'
JOIN objects c ON c.oid = rc.dst AND c.type = 'Chip' AND c.attributes ->> 'name' = $2
WHERE o.type = $1 AND o.is_valid = 1
  AND o.timestamp_start <= $3 AND o.timestamp_end >= $3
ORDER BY o.creation_date DESC, o.oid DESC LIMIT 1
"""

#: the same, tuned by hand: the candidates first (PostgreSQL, left to itself, walks the
#: class's creation-date index backwards for the LIMIT 1 and filters 10^5 rows)
HAND_INDEX = """
WITH c AS MATERIALIZED (
  SELECT o.oid, o.creation_date FROM objects o
  WHERE o.type = $1 AND (o.refs ->> 'chip') = $2 AND o.is_valid = 1
    AND o.timestamp_start <= $3 AND o.timestamp_end >= $3)
SELECT oid::text FROM c ORDER BY creation_date DESC, oid DESC LIMIT 1
"""


async def load(client: httpx.AsyncClient, conn: asyncpg.Connection,
               nights: int) -> dict[str, str]:
    """The camera through the API; its calibrations straight into the tables (the
    catalogue's registration is benchmarked in bench/catalog.py). Returns chip oids."""
    names = [f"ccd{i:02d}" for i in range(32)]
    r = await client.post("/objects/batch", json={"objects": [
        {"type": "Chip", "privileges": 3, "attributes": {"name": n}} for n in names]
        + [{"type": "Filter", "privileges": 3, "attributes": {"name": "r"}}]})
    r.raise_for_status()
    *chips, filt = r.json()["oids"]
    t = time.perf_counter()
    await conn.execute("""
        INSERT INTO objects (oid, type, site, creation_date, creator, project, privileges,
                             is_valid, quality_flags, timestamp_start, timestamp_end,
                             attributes, refs, hlc, curation_hlc, curation_site)
        SELECT gen_random_uuid(), k.cls, 'bench', $3::timestamptz + (d + 1) * interval '1 day',
               'admin', 'admin', 3, CASE WHEN random() < 0.05 THEN 0 ELSE 1 END, 0,
               $3::timestamptz + (d - k.days) * interval '1 day',
               $3::timestamptz + (d + 1 + k.days) * interval '1 day', '{}'::jsonb,
               jsonb_build_object('chip', c.chip) || CASE WHEN k.filtered
                   THEN jsonb_build_object('filter', $4::text) ELSE '{}'::jsonb END,
               1, 1, 'bench'
        FROM unnest($1::text[], $2::int[], $5::bool[]) AS k(cls, days, filtered),
             unnest($6::text[]) AS c(chip), generate_series(0, $7 - 1) AS d
        """, list(CLASSES), list(CLASSES.values()), START, filt,
        [c in FILTERED for c in CLASSES], chips, nights)
    await conn.execute("""
        INSERT INTO object_refs (src, name, pos, dst)
        SELECT oid, 'chip', 0, (refs ->> 'chip')::uuid FROM objects
        WHERE type = ANY($1::text[]) AND site = 'bench'
        """, list(CLASSES))
    await conn.execute("ANALYZE objects")
    await conn.execute("ANALYZE object_refs")
    count = await conn.fetchval("SELECT count(*) FROM objects WHERE type = ANY($1::text[])",
                                list(CLASSES))
    print(f"loaded {count:,} calibrations in {time.perf_counter() - t:.0f} s")
    return dict(zip(names, chips, strict=True))


def wanted(rng: random.Random, chips: dict[str, str], nights: int) -> dict[str, Any]:
    cls = rng.choice(list(CLASSES))
    when = START + dt.timedelta(days=rng.uniform(0, nights), hours=rng.uniform(0, 24))
    return {"cls": cls, "chip": rng.choice(list(chips)), "time": when.isoformat(),
            **({"filter": "r"} if cls in FILTERED else {})}


async def bench(client: httpx.AsyncClient, conn: asyncpg.Connection,
                generic: asyncpg.Connection, chips: dict[str, str],
                nights: int, lookups: int, n: int) -> None:
    rng = random.Random(11)
    asked = [wanted(rng, chips, nights) for _ in range(lookups)]
    ours, by_get, joins, index, statement = [], [], [], [], []
    admin = Caller(name="admin", is_admin=True, projects=["admin"], default_project="admin")
    # the endpoint's statement as the catalogue runs it: on a connection of its look-up
    # pool, which plans it once (awe_catalog.factory: ProcessContext.lookups)
    store = CalibrationStore(generic)
    whens = [dt.datetime.fromisoformat(w["time"]) for w in asked]

    async def timed(out: list[float], call: Callable[[], Awaitable[Any]]) -> Any:
        t = time.perf_counter()
        got = await call()
        out.append((time.perf_counter() - t) * 1000)
        return got

    for w in (wanted(rng, chips, nights) for _ in range(20)):  # a server that has run
        (await client.post("/calibrations/best", json={"requests": [w]})).raise_for_status()
        await client.get(f"/calibrations/{w['cls']}/best",
                         params={k: v for k, v in w.items() if k != "cls"})
    # the light ways one after the other for each look-up (the same load for all); the
    # hand-written join (a scan of 10^6 rows) in a loop of its own afterwards: a look-up
    # that follows it pays for the caches it evicted, whichever way it is
    posts, gets, directs, by_indexes = [], [], [], []
    for w, when in zip(asked, whens, strict=True):
        posts.append(await timed(ours, lambda w=w: client.post(
            "/calibrations/best", json={"requests": [w]})))
        gets.append(await timed(by_get, lambda w=w: client.get(
            f"/calibrations/{w['cls']}/best",
            params={k: v for k, v in w.items() if k != "cls"})))
        directs.append(await timed(statement, lambda w=w, when=when: store.best(
            [Wanted(0, w["cls"], w["chip"], w.get("filter"), when)], ["Chip"], ["Filter"],
            admin)))
        by_indexes.append(await timed(index, lambda w=w, when=when: conn.fetchval(
            HAND_INDEX, w["cls"], chips[w["chip"]], when)))
    by_joins = [await timed(joins, lambda w=w, when=when: conn.fetchval(
        HAND_JOINS, w["cls"], w["chip"], when)) for w, when in zip(asked, whens, strict=True)]
    for w, r, g, direct, by_join, by_index in zip(asked, posts, gets, directs, by_joins,
                                                   by_indexes, strict=True):
        r.raise_for_status()
        assert g.status_code in (200, 404), g.text
        (got,) = r.json()["objects"]
        assert (got or {}).get("oid") == by_join == by_index, (w, got, by_join, by_index)
        assert (g.json()["oid"] if g.status_code == 200 else None) == by_index
        assert (direct[0].oid if direct else None) == by_index
    for p in (50, 95):
        line(f"best calibration p{p} at {n:,} (HTTP vs joins)", percentile(ours, p),
             percentile(joins, p), "ms", False)
    for p in (50, 95):
        line(f"GET .../best p{p} at {n:,} (HTTP vs joins)", percentile(by_get, p),
             percentile(joins, p), "ms", False)
    line(f"best calibration p95 at {n:,} (HTTP vs tuned)", percentile(ours, 95),
         percentile(index, 95), "ms", False)
    line(f"best calibration p95 at {n:,} (SQL vs tuned)", percentile(statement, 95),
         percentile(index, 95), "ms", False)
    # what any authenticated request costs here: a GET of one object by oid
    floor = []
    for _ in range(lookups):
        t = time.perf_counter()
        (await client.get(f"/objects/{chips['ccd00']}")).raise_for_status()
        floor.append((time.perf_counter() - t) * 1000)
    line("p95: best calibration vs GET one object (HTTP)", percentile(ours, 95),
         percentile(floor, 95), "ms", False)
    # the planner's way: a thousand look-ups a request, per look-up
    batch = [wanted(rng, chips, nights) for _ in range(1000)]
    times = []
    for _ in range(5):
        t = time.perf_counter()
        r = await client.post("/calibrations/best", json={"requests": batch})
        times.append((time.perf_counter() - t) * 1000 / len(batch))
        r.raise_for_status()
    t = time.perf_counter()
    for w in batch:
        await conn.fetchval(HAND_INDEX, w["cls"], chips[w["chip"]],
                            dt.datetime.fromisoformat(w["time"]))
    hand = (time.perf_counter() - t) * 1000 / len(batch)
    line("per look-up, 1000 a request vs one by one", min(times), hand, "ms", False)


async def run(url: str, db_url: str, nights: int, lookups: int) -> None:
    conn = await asyncpg.connect(db_url, server_settings={"plan_cache_mode": "force_custom_plan"})
    generic = await asyncpg.connect(db_url,
                                    server_settings={"plan_cache_mode": "force_generic_plan"})
    for c in (conn, generic):
        for kind in ("json", "jsonb"):  # as the catalog's connections decode them
            await c.set_type_codec(kind, encoder=json.dumps, decoder=json.loads,
                                   schema="pg_catalog")
    try:
        async with httpx.AsyncClient(base_url=url, timeout=600,
                                     headers={"Authorization": f"Bearer {TOKEN}"}) as client:
            chips = await load(client, conn, nights)
            n = 32 * len(CLASSES) * nights
            await bench(client, conn, generic, chips, nights, lookups, n)
    finally:
        await conn.close()
        await generic.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--nights", type=int, default=3900,
                        help="nights of calibrations (x 32 chips x 8 classes)")
    parser.add_argument("--lookups", type=int, default=500)
    args = parser.parse_args()
    print(f"best-calibration benchmark: {32 * len(CLASSES) * args.nights:,} calibrations, "
          f"{args.lookups} look-ups (embedded PostgreSQL, one uvicorn worker, 2 cores)")
    with catalog_service() as catalog:
        asyncio.run(run(catalog.url, catalog.db_url, args.nights, args.lookups))


if __name__ == "__main__":
    main()
