"""The catalogue at survey scale (issue 17): selective DSL queries, best calibrations,
registration, source ingest, cone search and lineage on a catalogue of 10^7 objects and
10^8 sources, each beside hand-written SQL on today's schema and on a schema designed for
the query (the limit), with EXPLAIN (ANALYZE, BUFFERS) of every statement. Latencies are on a
warm cache: each request runs once untimed before it is timed (see `warm`).

The catalogue is generated once (bench/_scale_gen.py) into --keep and reused: a second run
starts from what is there and applies any migration added since (so the figures follow
the schema in the tree). Our figures go through HTTP to real catalog and lineage service
processes on that database; the hand SQL goes straight to PostgreSQL.

    .venv/bin/python bench/scale.py [--keep DIR] [--objects 10000000] [--sources 100000000]
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import io
import json
import os
import random
import re
import sys
import time
import uuid
from collections.abc import Awaitable, Callable, Iterable
from pathlib import Path
from typing import Any

import _scale_gen as gen
import asyncpg
import httpx
import numpy as np
import orjson
from _common import TOKEN, catalog_and_lineage, percentile
from astropy.io import votable

from awecore.client import AsyncCatalogClient
from awecore.healpix import ranges_for_cone
from awecore.ids import new_oids
from awecore.stack import PostgresServer, ServiceProcess, free_port

REPORT: list[str] = []  # the figures table, printed again at the end
PLANS: list[tuple[str, str]] = []
UP = ("WITH RECURSIVE up(oid) AS (SELECT $1::uuid UNION SELECT e.dst FROM edges e "
      "JOIN up ON e.src = up.oid) SELECT n.oid, n.type FROM up JOIN nodes n USING (oid)")
DOWN = ("WITH RECURSIVE down(oid) AS (SELECT $1::uuid UNION SELECT e.src FROM edges e "
        "JOIN down ON e.dst = down.oid) SELECT n.oid, n.type FROM down JOIN nodes n USING (oid)")
TUNING = {"shared_buffers": "2GB", "maintenance_work_mem": "1GB", "work_mem": "64MB",
          "max_wal_size": "2GB", "effective_cache_size": "8GB", "random_page_cost": "1.1",
          "max_parallel_maintenance_workers": "2"}


def say(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def row(what: str, ours: float | None, today: float | None, designed: float | None,
        unit: str, goal: str) -> None:
    def f(v: float | None) -> str:
        return "-" if v is None else f"{v:,.1f}"
    text = f"| {what} | {f(ours)} | {f(today)} | {f(designed)} | {unit} | {goal} |"
    REPORT.append(text)
    print(text, flush=True)


async def timed(fn: Callable[[], Awaitable[Any]]) -> tuple[float, Any]:
    t = time.perf_counter()
    out = await fn()
    return (time.perf_counter() - t) * 1000, out


async def warm(fn: Callable[[], Awaitable[Any]]) -> tuple[float, Any]:
    """``timed`` after one untimed call: every figure is on a warm cache. Our request runs
    first for each case, so without this it alone would read the pages from disk and the
    hand SQL after it would find them in memory (its p95 is then the disk's, not ours)."""
    await fn()
    return await timed(fn)


async def explain(conn: asyncpg.Connection, title: str, sql: str, *args: Any) -> None:
    plan = await conn.fetch(f"EXPLAIN (ANALYZE, BUFFERS) {sql}", *args)
    PLANS.append((title, "\n".join(r[0] for r in plan)))


# -- the designed schemas (the limit): built once from the generated rows ---------------
DESIGNED = [
    # reduced frames by data ID: typed columns and one index in the query's order
    """CREATE TABLE IF NOT EXISTS designed_frames AS SELECT oid, type,
        (refs ->> 'chip')::uuid AS chip, (refs ->> 'filter')::uuid AS filter,
        (attributes ->> 'date_obs')::timestamptz AS date_obs, attributes, refs
        FROM objects WHERE type = 'ReducedScienceFrame'""",
    "CREATE INDEX IF NOT EXISTS designed_frames_key ON designed_frames (chip, filter, date_obs)",
    # calibrations by chip and window, the newest first
    """CREATE TABLE IF NOT EXISTS designed_calibrations AS SELECT oid, type,
        (refs ->> 'chip')::uuid AS chip, timestamp_start, timestamp_end, creation_date
        FROM objects WHERE timestamp_start IS NOT NULL AND is_valid = 1""",
    """CREATE INDEX IF NOT EXISTS designed_calibrations_key ON designed_calibrations
        (type, chip, timestamp_start) INCLUDE (timestamp_end, creation_date, oid)""",
    "CREATE TABLE IF NOT EXISTS designed_names AS SELECT oid, type, attributes ->> 'name' AS "
    "name FROM objects WHERE type IN ('Chip', 'Filter', 'Instrument')",
    "CREATE UNIQUE INDEX IF NOT EXISTS designed_names_key ON designed_names (type, name)",
    "VACUUM ANALYZE designed_frames",
    "VACUUM ANALYZE designed_calibrations",
    "VACUUM ANALYZE designed_names",
]
#: sources partitioned by HEALPix range: one partition per order-4 pixel block (13.4 deg^2),
#: rows stored in HEALPix order (a cone reads few, contiguous pages) with their unit vector,
#: so the distance test is arithmetic on a chord, not trigonometry per row
PARTITION_SHIFT = 4 ** (14 - 4)


async def build_designed_sources(conn: asyncpg.Connection) -> float:
    if await conn.fetchval("SELECT to_regclass('designed_sources') IS NOT NULL"):
        return 0.0
    t = time.perf_counter()
    await conn.execute(
        "CREATE TABLE designed_sources (LIKE sources INCLUDING DEFAULTS, "
        "cx double precision NOT NULL, cy double precision NOT NULL, "
        "cz double precision NOT NULL) PARTITION BY RANGE (healpix)")
    blocks = [r[0] for r in await conn.fetch(
        f"SELECT DISTINCT healpix / {PARTITION_SHIFT} FROM sources ORDER BY 1")]
    for b in blocks:
        await conn.execute(
            f"CREATE TABLE designed_sources_{b} PARTITION OF designed_sources "
            f"FOR VALUES FROM ({b * PARTITION_SHIFT}) TO ({(b + 1) * PARTITION_SHIFT})")
    await conn.execute("CREATE TABLE designed_sources_rest PARTITION OF designed_sources DEFAULT")
    await conn.execute(
        "INSERT INTO designed_sources SELECT s.*, cos(radians(dec)) * cos(radians(ra)), "
        "cos(radians(dec)) * sin(radians(ra)), sin(radians(dec)) FROM sources s "
        "ORDER BY healpix")
    await conn.execute("CREATE INDEX designed_sources_sky ON designed_sources (healpix)")
    await conn.execute("ALTER TABLE designed_sources ADD PRIMARY KEY (healpix, sourcelist, seq)")
    await conn.execute("VACUUM ANALYZE designed_sources")
    return time.perf_counter() - t


# -- the measurements ---------------------------------------------------------------------
async def selective(http: httpx.AsyncClient, conn: asyncpg.Connection, nights: int,
                    queries: int) -> None:
    today = """SELECT o.oid::text FROM objects o
        JOIN object_refs rc ON rc.src = o.oid AND rc.name = 'chip'
        JOIN objects c ON c.oid = rc.dst
        JOIN object_refs rf ON rf.src = o.oid AND rf.name = 'filter'
        JOIN objects f ON f.oid = rf.dst
        WHERE o.type = 'ReducedScienceFrame'
          AND c.type = 'Chip' AND c.attributes ->> 'name' = $1
          AND f.type = 'Filter' AND f.attributes ->> 'name' = $2
          AND (o.attributes ->> 'date_obs')::timestamptz >= $3
          AND (o.attributes ->> 'date_obs')::timestamptz < $4
        ORDER BY o.oid LIMIT 100"""
    # the best on today's schema: the chip and filter oids first, then the refs column
    today_best = """SELECT o.oid::text FROM objects o
        WHERE o.type = 'ReducedScienceFrame'
          AND o.refs ->> 'chip' = (SELECT oid::text FROM objects
                                   WHERE type = 'Chip' AND attributes ->> 'name' = $1)
          AND o.refs ->> 'filter' = (SELECT oid::text FROM objects
                                     WHERE type = 'Filter' AND attributes ->> 'name' = $2)
          AND (o.attributes ->> 'date_obs')::timestamptz >= $3
          AND (o.attributes ->> 'date_obs')::timestamptz < $4
        ORDER BY o.oid LIMIT 100"""
    designed = """SELECT d.oid::text FROM designed_frames d
        WHERE d.chip = (SELECT oid FROM designed_names WHERE type = 'Chip' AND name = $1)
          AND d.filter = (SELECT oid FROM designed_names WHERE type = 'Filter' AND name = $2)
          AND d.date_obs >= $3 AND d.date_obs < $4
        ORDER BY d.oid LIMIT 100"""
    rng = random.Random(17)
    cases = []
    for _ in range(queries):
        night = rng.randrange(nights)
        filt = gen.FILTERS[(night + 2 * rng.randrange(2)) % 5]
        start, end = gen.night_window(night)
        cases.append((f"ccd{rng.randrange(gen.CHIPS):02d}", filt, start, end))
    ours, hand, best, lim = [], [], [], []
    for chip, filt, start, end in cases:
        spec = {"cls": "ReducedScienceFrame", "where": {"node": "and", "items": [
            {"node": "compare", "op": "eq", "path": ["chip", "name"], "value": chip},
            {"node": "compare", "op": "eq", "path": ["filter", "name"], "value": filt},
            {"node": "compare", "op": "ge", "path": ["date_obs"], "value": start.isoformat()},
            {"node": "compare", "op": "lt", "path": ["date_obs"], "value": end.isoformat()}]}}
        ms, r = await warm(lambda s=spec: http.post("/query", json={"query": s, "limit": 100}))
        r.raise_for_status()
        ours.append(ms)
        got = sorted(o["oid"] for o in r.json()["objects"])
        for sql, out in ((today_best, best), (designed, lim)):
            ms, rows = await timed(lambda q=sql, a=(chip, filt, start, end): conn.fetch(q, *a))
            out.append(ms)
            assert sorted(x[0] for x in rows) == got, (len(rows), len(got))
        assert len(got) == gen.SCIENCE, len(got)
    # the four-join hand SQL of bench/catalog.py is timed on a few only: it is seconds
    for chip, filt, start, end in cases[:5]:
        ms, _ = await timed(lambda a=(chip, filt, start, end): conn.fetch(today, *a))
        hand.append(ms)
    a = cases[0]
    await explain(conn, "selective: today's schema, bench/catalog.py's joins", today, *a)
    await explain(conn, "selective: today's schema, best hand SQL", today_best, *a)
    await explain(conn, "selective: designed schema", designed, *a)
    for p in (50, 95):
        row(f"DSL selective query ({gen.SCIENCE} rows) p{p}, HTTP", percentile(ours, p),
            percentile(best, p), percentile(lim, p), "ms", "p95 < 20")
    row("  (today's schema, catalog.py's 4-join SQL, median of 5)", None,
        percentile(hand, 50), None, "ms", "")


async def calibration(http: httpx.AsyncClient, conn: asyncpg.Connection, nights: int,
                      queries: int) -> None:
    today = """SELECT o.oid::text FROM objects o
        WHERE o.type = 'BiasFrame' AND o.is_valid = 1 AND o.governed
          AND (o.refs ->> 'chip') = (SELECT oid::text FROM objects
                                     WHERE type = 'Chip' AND attributes ->> 'name' = $1)
          AND o.timestamp_start <= $2 AND o.timestamp_end >= $2
        ORDER BY o.creation_date DESC, o.oid DESC LIMIT 1"""
    designed = """SELECT d.oid::text FROM designed_calibrations d
        WHERE d.type = 'BiasFrame'
          AND d.chip = (SELECT oid FROM designed_names WHERE type = 'Chip' AND name = $1)
          AND d.timestamp_start <= $2 AND d.timestamp_end >= $2
        ORDER BY d.creation_date DESC, d.oid DESC LIMIT 1"""
    rng = random.Random(18)
    ours, base, lim = [], [], []
    for _ in range(queries):
        chip = f"ccd{rng.randrange(gen.CHIPS):02d}"
        when = gen.night_of(rng.randrange(2, nights - 3)) + dt.timedelta(hours=13)
        ms, r = await warm(lambda c=chip, w=when: http.get(
            "/calibrations/BiasFrame/best", params={"chip": c, "time": w.isoformat()}))
        r.raise_for_status()
        ours.append(ms)
        ms, a = await timed(lambda c=chip, w=when: conn.fetchval(today, c, w))
        base.append(ms)
        ms, b = await timed(lambda c=chip, w=when: conn.fetchval(designed, c, w))
        lim.append(ms)
        assert r.json()["oid"] == a == b
    await explain(conn, "best calibration: today's schema", today, "ccd07",
                  gen.night_of(nights // 2))
    await explain(conn, "best calibration: designed schema", designed, "ccd07",
                  gen.night_of(nights // 2))
    for p in (50, 95):
        row(f"best calibration p{p}, HTTP", percentile(ours, p), percentile(base, p),
            percentile(lim, p), "ms", "p95 < 5")


async def ids(conn: asyncpg.Connection, night: int) -> dict[str, Any]:
    """Oids of one chip-night's chip, filters, raw frame, bias and flat to refer to."""
    names = {r["name"]: r["oid"] for r in await conn.fetch(
        "SELECT attributes ->> 'name' AS name, oid::text FROM objects "
        "WHERE type IN ('Chip', 'Filter', 'Instrument')")}
    frame = await conn.fetchrow(
        "SELECT refs FROM objects WHERE type = 'ReducedScienceFrame' AND refs ->> 'chip' = $1 "
        "AND (attributes ->> 'date_obs')::timestamptz >= $2 LIMIT 1",
        names["ccd05"], gen.night_of(night))
    return {"names": names, "refs": json.loads(frame["refs"])}


async def run_in_turn(steps: Iterable[Awaitable[None]]) -> None:
    for step in steps:
        await step


async def registration(http: httpx.AsyncClient, conn: asyncpg.Connection, nights: int,
                       n: int, clients: int, cat_url: str) -> None:
    """``n`` reduced frames registered through the batch API by ``clients`` clients at once
    (each its share, in batches of 5,000), beside the same rows COPY'd by as many
    connections at once."""
    here = await ids(conn, nights - 1)
    refs = here["refs"]
    when = gen.night_of(nights + 10)

    def objects(tag: str) -> list[dict[str, Any]]:
        return [{"type": "ReducedScienceFrame", "privileges": 3, "refs": refs,
                 "filename": f"bench/{tag}/{i}.fits", "file_size": 20971520,
                 "checksum": f"{i:064x}", "software_version": "awe-1.0",
                 "attributes": {"date_obs": (when + dt.timedelta(seconds=i)).isoformat(),
                                "exptime": 360.0, "object": f"KIDS_{i % 1000}",
                                "imstat": {"mean": 1000.0, "stdev": 30.0}}}
                for i in range(n)]
    tag = uuid.uuid4().hex[:8]
    mine = objects(f"api-{tag}")
    batch = 5000
    share = -(-n // clients)
    made: list[str] = []

    async def post(part: list[dict[str, Any]]) -> None:
        for i in range(0, len(part), batch):
            # encoded as the AWE client encodes a batch (orjson), as bench/catalog.py does
            r = await http.post("/objects/batch",
                                content=orjson.dumps({"objects": part[i:i + batch]}),
                                headers={"Content-Type": "application/json"})
            r.raise_for_status()
            made.extend(r.json()["oids"])

    start = time.perf_counter()
    await asyncio.gather(*(post(mine[k:k + share]) for k in range(0, n, share)))
    ours = n / (time.perf_counter() - start)
    # the baseline: the same rows COPY'd into the same tables (every index in place), under
    # oids made as the service makes them (time-ordered: random ones would cost the COPY an
    # index leaf each on a table of 10^7)
    rows, ref_rows = [], []
    oids = new_oids(n)
    seq0 = int(await conn.fetchval("SELECT max(hlc) FROM objects")) + 1
    now = dt.datetime.now(dt.UTC)
    for i, o in enumerate(objects(f"copy-{tag}")):
        oid = uuid.UUID(oids[i])
        rows.append((oid, o["type"], "scale", now, "admin", "admin", 3, 1, 0, o["filename"],
                     o["file_size"], o["checksum"], o["software_version"],
                     json.dumps(o["attributes"]), json.dumps(refs), seq0 + i, seq0 + i,
                     "scale", True))
        ref_rows.extend((oid, k, 0, uuid.UUID(v)) for k, v in refs.items())
    cols = ("oid", "type", "site", "creation_date", "creator", "project", "privileges",
            "is_valid", "quality_flags", "filename", "file_size", "checksum",
            "software_version", "attributes", "refs", "hlc", "curation_hlc", "curation_site",
            "governed")
    copiers = [conn, *[await asyncpg.connect(cat_url) for _ in range(clients - 1)]]

    async def copy(c: asyncpg.Connection, first: int) -> None:
        for i in range(first, min(first + share, n), batch):
            j = min(i + batch, first + share, n)
            async with c.transaction():
                await c.copy_records_to_table("objects", records=rows[i:j], columns=cols)
                await c.copy_records_to_table(
                    "object_refs", records=ref_rows[i * len(refs):j * len(refs)],
                    columns=("src", "name", "pos", "dst"))

    try:
        start = time.perf_counter()
        await asyncio.gather(*(copy(c, k * share) for k, c in enumerate(copiers)))
        base = n / (time.perf_counter() - start)
    finally:
        for c in copiers[1:]:
            await c.close()
    who = "1 client" if clients == 1 else f"{clients} clients at once"
    row(f"registration, {n:,} reduced frames, {who} (batch API vs COPY)", ours, base, None,
        "objects/s", ">= 0.5x COPY and >= 20,000/s")
    gone = [uuid.UUID(o) for o in made] + [r[0] for r in rows]
    await conn.execute("DELETE FROM changes WHERE oid = ANY($1::uuid[])", gone)
    await conn.execute("DELETE FROM object_refs WHERE src = ANY($1::uuid[])", gone)
    await conn.execute("DELETE FROM objects WHERE oid = ANY($1::uuid[])", gone)


async def ingest(http: httpx.AsyncClient, conn: asyncpg.Connection, nights: int,
                 lists: int) -> None:
    here = await ids(conn, nights - 1)
    refs = here["refs"]
    sl = {"type": "SourceList", "privileges": 3, "refs": {
        "chip": refs["chip"], "filter": refs["filter"]}, "attributes": {"seeing": 0.7}}
    r = await http.post("/objects/batch", json={"objects": [sl] * (3 * lists)})
    r.raise_for_status()
    oids = r.json()["oids"]
    rng = np.random.default_rng(17_003)
    region = gen.footprint(10**6)
    # ours: the client's own method (a FITS table over HTTP), its encoding timed
    payloads = []
    for oid in oids[:lists]:
        rows = gen.source_rows(rng, [uuid.UUID(oid)], 0, region)
        payloads.append((oid, {k: rows[k] for k in (
            "ra", "dec", "x", "y", "flux", "flux_err", "mag", "mag_err", "snr", "flag")}))
    copies = [gen.source_copy(gen.source_rows(rng, [uuid.UUID(o)], 0, region))
              for o in oids[lists:]]
    catalog = AsyncCatalogClient(str(http.base_url), TOKEN, timeout=600)
    took = [0.0, 0.0, 0.0]

    async def copy(data: bytes, generic: bool) -> None:
        if not generic:
            await conn.copy_to_table("sources", source=io.BytesIO(data),
                                     columns=gen.SOURCE_COLS, format="binary")
            return
        # the foreign key's check planned once, not for each row as this connection's
        # force_custom_plan (the services' setting) has it, as the catalog's load does
        # (storage/sources.py): the best a COPY does, in the last column
        async with conn.transaction():
            await conn.execute("SET LOCAL plan_cache_mode = force_generic_plan")
            await conn.copy_to_table("sources", source=io.BytesIO(data),
                                     columns=gen.SOURCE_COLS, format="binary")

    try:
        # one list of each in turn, so that none of the three finds the index pages of
        # the region warmed by the others more often
        for i, (oid, columns) in enumerate(payloads):
            start = time.perf_counter()
            await catalog.load_sources(oid, columns)
            took[0] += time.perf_counter() - start
            for k, generic in ((1, False), (2, True)):
                start = time.perf_counter()
                await copy(copies[i + (k - 1) * lists], generic)
                took[k] += time.perf_counter() - start
    finally:
        await catalog.aclose()
    ours, base, best = (lists * gen.PER_LIST / t for t in took)
    row(f"source ingest, {lists} lists of {gen.PER_LIST:,} (HTTP FITS vs COPY; last: COPY "
        "with generic plans)", ours, base, best, "rows/s", ">= 0.5x COPY")
    gone = [uuid.UUID(o) for o in oids]
    await conn.execute("DELETE FROM sources WHERE sourcelist = ANY($1::uuid[])", gone)
    await conn.execute("DELETE FROM changes WHERE oid = ANY($1::uuid[])", gone)
    await conn.execute("DELETE FROM object_refs WHERE src = ANY($1::uuid[])", gone)
    await conn.execute("DELETE FROM objects WHERE oid = ANY($1::uuid[])", gone)


def cone_sql(table: str, ra: float, dec: float, radius: float) -> str:
    lo, hi = ranges_for_cone(ra, dec, radius)
    ranges = " OR ".join(f"healpix BETWEEN {a} AND {b}" for a, b in zip(lo, hi, strict=True))
    return (f"SELECT * FROM (SELECT sourcelist, seq, ra, dec, mag, degrees(2 * asin(sqrt("
            f"sin(radians(dec - $2) / 2) ^ 2 + cos(radians(dec)) * cos(radians($2)) * "
            f"sin(radians(ra - $1) / 2) ^ 2))) AS distance FROM {table} WHERE ({ranges})) s "
            f"WHERE distance <= $3 ORDER BY distance LIMIT $4")


def designed_cone_sql(ra: float, dec: float, radius: float) -> str:
    """The cone on designed_sources: the chord between unit vectors, squared, is the test
    and the order (monotonic in the angle); the angle is computed for the rows returned."""
    lo, hi = ranges_for_cone(ra, dec, radius)
    ranges = " OR ".join(f"healpix BETWEEN {a} AND {b}" for a, b in zip(lo, hi, strict=True))
    x, y, z = (float(np.cos(np.radians(dec)) * np.cos(np.radians(ra))),
               float(np.cos(np.radians(dec)) * np.sin(np.radians(ra))),
               float(np.sin(np.radians(dec))))
    chord2 = float((2 * np.sin(np.radians(radius) / 2)) ** 2)
    d2 = f"((cx - ({x!r})) ^ 2 + (cy - ({y!r})) ^ 2 + (cz - ({z!r})) ^ 2)"
    return (f"SELECT sourcelist, seq, ra, dec, mag, degrees(2 * asin(sqrt(d2) / 2)) AS distance "
            f"FROM (SELECT sourcelist, seq, ra, dec, mag, {d2} AS d2 FROM designed_sources "
            f"WHERE ({ranges}) AND {d2} <= {chord2!r}) s "
            f"WHERE $1::float8 IS NOT NULL AND $2::float8 IS NOT NULL AND $3::float8 > 0 "
            f"ORDER BY d2 LIMIT $4")


async def cone(http: httpx.AsyncClient, conn: asyncpg.Connection, sources: dict[str, Any],
               queries: int, limit: int) -> None:
    ra0, ra1, dec0, dec1 = sources["detail"]["region"]
    rng = random.Random(19)
    ours, base, lim, counts = [], [], [], []
    radius = 0.5
    for _ in range(queries):
        ra = rng.uniform(ra0 + radius, ra1 - radius)
        dec = rng.uniform(dec0 + radius, dec1 - radius)
        ms, r = await warm(lambda a=ra, d=dec: http.get("/sources/cone", params={
            "ra": a, "dec": d, "radius": radius, "limit": limit}))
        r.raise_for_status()
        ours.append(ms)
        ms, rows = await timed(lambda a=ra, d=dec: conn.fetch(
            cone_sql("sources", a, d, radius), a, d, radius, limit))
        base.append(ms)
        ms, rows2 = await timed(lambda a=ra, d=dec: conn.fetch(
            designed_cone_sql(a, d, radius), a, d, radius, limit))
        lim.append(ms)
        got = r.json()["sources"]
        assert len(got) == len(rows) == len(rows2) == limit
        # the same rows as the full cone's, in its order (ties by source list and number)
        want = sorted(rows, key=lambda x: (x["distance"], x["sourcelist"], x["seq"]))
        assert [(s["sourcelist"], s["seq"]) for s in got] == [
            (str(x["sourcelist"]), x["seq"]) for x in want]
        assert {(s["sourcelist"], s["seq"]) for s in got} == {
            (str(x["sourcelist"]), x["seq"]) for x in rows2}
    for _ in range(3):
        ra = rng.uniform(ra0 + radius, ra1 - radius)
        counts.append(await conn.fetchval(
            f"SELECT count(*) FROM ({cone_sql('sources', ra, 0.0, radius)}) c",
            ra, 0.0, radius, 10**9))
    await explain(conn, "cone: today's schema", cone_sql("sources", ra, 0.0, radius),
                  ra, 0.0, radius, limit)
    await explain(conn, "cone: designed schema (HEALPix range partitions, covering index)",
                  designed_cone_sql(ra, 0.0, radius), ra, 0.0, radius, limit)
    n = sources["rows"]
    for p in (50, 95):
        row(f"cone r=0.5 deg, nearest {limit:,} of ~{int(np.mean(counts)):,}, {n:,} sources, "
            f"p{p}", percentile(ours, p), percentile(base, p), percentile(lim, p), "ms",
            "p95 < 50 at 10^8")


async def scs(vo: httpx.AsyncClient, http: httpx.AsyncClient, conn: asyncpg.Connection,
              sources: dict[str, Any], queries: int, limit: int) -> None:
    """The VO service's Simple Cone Search (what TOPCAT and pyvo ask), MAXREC ``limit``,
    VERB 1: the same rounds as the catalog's cone search, answered as a VOTable. Its rows
    are checked against the catalog's cone answer (same sources, same order)."""
    ra0, ra1, dec0, dec1 = sources["detail"]["region"]
    rng = random.Random(21)
    ours, base = [], []
    radius = 0.5
    for i in range(queries):
        ra = rng.uniform(ra0 + radius, ra1 - radius)
        dec = rng.uniform(dec0 + radius, dec1 - radius)
        ms, r = await warm(lambda a=ra, d=dec: vo.get("/scs", params={
            "RA": a, "DEC": d, "SR": radius, "MAXREC": limit, "VERB": 1}))
        r.raise_for_status()
        ours.append(ms)
        ms, _ = await timed(lambda a=ra, d=dec: conn.fetch(
            cone_sql("sources", a, d, radius), a, d, radius, limit))
        base.append(ms)
        if i < 5:
            table = votable.parse_single_table(io.BytesIO(r.content))
            cone = (await http.get("/sources/cone", params={
                "ra": ra, "dec": dec, "radius": radius, "limit": limit})).json()["sources"]
            assert [str(x) for x in table.array["id"]] == [
                f"{s['sourcelist']}:{s['seq']}" for s in cone]
    for p in (50, 95):
        row(f"VO SCS r=0.5 deg, MAXREC {limit:,}, VOTable, p{p}", percentile(ours, p),
            percentile(base, p), None, "ms", "p95 < 50 at 10^8")


async def lineage(http: httpx.AsyncClient, conn: asyncpg.Connection, queries: int) -> None:
    rng = random.Random(20)
    lists = [r[0] for r in await conn.fetch(
        "SELECT oid FROM nodes TABLESAMPLE SYSTEM (1) WHERE type = 'SourceList' LIMIT $1",
        queries)]
    biases = [r[0] for r in await conn.fetch(
        "SELECT oid FROM nodes TABLESAMPLE SYSTEM (1) WHERE type = 'BiasFrame' LIMIT $1",
        queries)]
    for name, oids, sql in (("upstream", lists, UP), ("downstream", biases, DOWN)):
        ours, base, sizes = [], [], []
        for oid in rng.sample(oids, min(queries, len(oids))):
            ms, r = await warm(lambda o=oid, d=name: http.get(f"/lineage/{o}/{d}"))
            r.raise_for_status()
            ours.append(ms)
            ms, rows = await timed(lambda o=oid, q=sql: conn.fetch(q, o))
            base.append(ms)
            assert len(r.json()["nodes"]) == len(rows), (len(r.json()["nodes"]), len(rows))
            sizes.append(len(rows))
        await explain(conn, f"lineage {name}: recursive SQL", sql, oids[0])
        for p in (50, 95):
            row(f"lineage {name} ({min(sizes)}-{max(sizes)} nodes) p{p}, HTTP",
                percentile(ours, p), percentile(base, p), None, "ms", "p95 < 50")


# -- the run ------------------------------------------------------------------------------
async def prepare(cat_url: str, lin_url: str, args: argparse.Namespace) -> dict[str, Any]:
    cat = await asyncpg.connect(cat_url)
    lin = await asyncpg.connect(lin_url)
    try:
        await gen.migrate(cat, "awe_catalog", 7_031_001, upto=gen.TODAY)
        await gen.migrate(lin, "awe_lineage", 7_031_101)
        objects = await gen.generate_objects(cat, lin, args.objects, say)
        sources = await gen.generate_sources(cat, args.sources, say)
        later = await gen.migrate(cat, "awe_catalog", 7_031_001)
        if later:
            say(f"  applied to the populated catalogue: {', '.join(later)}")
            await cat.execute("ANALYZE")
        say("  designed schemas (the limit)")
        for statement in DESIGNED:
            await cat.execute(statement)
        took = await build_designed_sources(cat)
        if took:
            say(f"  designed sources built in {took:.0f} s")
        migrations = [r[0] for r in await cat.fetch(
            "SELECT version FROM schema_migrations ORDER BY version")]
        sizes = {r["name"]: r["bytes"] for r in await cat.fetch(
            "SELECT c.relname AS name, pg_total_relation_size(c.oid) AS bytes FROM pg_class c "
            "JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = 'public' "
            "AND c.relkind IN ('r', 'p') ORDER BY 2 DESC LIMIT 12")}
        return {"objects": objects, "sources": sources, "migrations": migrations,
                "sizes": sizes}
    finally:
        await cat.close()
        await lin.close()


def start_services(pg: PostgresServer, cat_url: str, lin_url: str,
                   folder: Path) -> tuple[list[ServiceProcess], str, str]:
    return catalog_and_lineage(
        {"AWE_CATALOG_DATABASE_URL": cat_url, "AWE_CATALOG_ADMIN_TOKEN": TOKEN,
         "AWE_CATALOG_LOG_LEVEL": "WARNING", "AWE_SITE": "scale"},
        {"AWE_LINEAGE_DATABASE_URL": lin_url, "AWE_LINEAGE_LOG_LEVEL": "WARNING",
         "AWE_SITE": "scale"}, folder)


def start_vo(cat_url: str, catalog: str, folder: Path) -> tuple[ServiceProcess, str]:
    """The VO service on the catalog's database, with a service account of its own (it asks
    the catalog who a token is)."""
    with httpx.Client(base_url=catalog, timeout=60,
                      headers={"Authorization": f"Bearer {TOKEN}"}) as admin:
        name = f"vo-scale-{uuid.uuid4().hex[:8]}"  # a new account on every run
        admin.post("/users", json={"name": name, "is_service": True}).raise_for_status()
        token = admin.post("/tokens", json={"user": name})
        token.raise_for_status()
    port = free_port()
    env = {**os.environ, "AWE_SITE": "scale", "AWE_VO_DATABASE_URL": cat_url,
           "AWE_VO_CATALOG_URL": catalog, "AWE_VO_SERVICE_TOKEN": token.json()["token"],
           "AWE_VO_LOG_LEVEL": "WARNING"}
    proc = ServiceProcess("vo", [sys.executable, "-m", "uvicorn", "awe_vo.main:create_app",
                                 "--factory", "--host", "127.0.0.1", "--port", str(port),
                                 "--no-access-log"], env, folder / "vo.log",
                          health_url=f"http://127.0.0.1:{port}/health")
    proc.start()
    return proc, f"http://127.0.0.1:{port}"


async def measure(args: argparse.Namespace, state: dict[str, Any], cat_url: str,
                  lin_url: str, catalog: str, lineage_url: str, vo_url: str) -> None:
    settings = {"plan_cache_mode": "force_custom_plan"}  # as the services' pools
    cat = await asyncpg.connect(cat_url, server_settings=settings)
    lin = await asyncpg.connect(lin_url, server_settings=settings)
    nights = state["objects"]["detail"]["nights"]
    auth = {"Authorization": f"Bearer {TOKEN}"}
    try:
        async with httpx.AsyncClient(base_url=catalog, timeout=600, headers=auth) as http, \
                httpx.AsyncClient(base_url=lineage_url, timeout=600, headers=auth) as lhttp, \
                httpx.AsyncClient(base_url=vo_url, timeout=600, headers=auth) as vo:
            steps = {
                "selective": lambda: selective(http, cat, nights, args.queries),
                "calibration": lambda: calibration(http, cat, nights, args.queries),
                "cone": lambda: cone(http, cat, state["sources"], args.queries,
                                     args.cone_limit),
                "scs": lambda: scs(vo, http, cat, state["sources"], args.queries,
                                   args.cone_limit),
                "lineage": lambda: lineage(lhttp, lin, args.queries),
                "registration": lambda: run_in_turn(
                    registration(http, cat, nights, args.register, k, cat_url)
                    for k in args.register_clients),
                "ingest": lambda: ingest(http, cat, nights, args.lists)}
            for name in args.only or list(steps):
                say(f"measuring: {name}")
                await steps[name]()
    finally:
        await cat.close()
        await lin.close()


AUTO_EXPLAIN = {"session_preload_libraries": "auto_explain",
                "auto_explain.log_min_duration": "0", "auto_explain.log_analyze": "on",
                "auto_explain.log_buffers": "on", "auto_explain.log_nested_statements": "on"}
#: the services' statements worth showing (not token checks and the like)
OURS = re.compile(r"FROM objects o|FROM sources|WITH RECURSIVE walk|LATERAL|near AS")


async def explain_ours(pg: PostgresServer, args: argparse.Namespace, cat_url: str,
                       lin_url: str, folder: Path, nights: int,
                       sources: dict[str, Any]) -> None:
    """The services' own statements, EXPLAIN ANALYZE'd by auto_explain (loaded only now,
    for new connections of restarted services, so it never slowed the timings above)."""
    conn = await asyncpg.connect(pg.url())
    for db in ("awe_catalog", "awe_lineage"):
        for k, v in AUTO_EXPLAIN.items():
            await conn.execute(f"ALTER DATABASE {db} SET {k} = '{v}'")
    log = folder / "postgres.log"
    offset = log.stat().st_size
    procs, catalog, lineage_url = start_services(pg, cat_url, lin_url, folder)
    try:
        auth = {"Authorization": f"Bearer {TOKEN}"}
        lc = await asyncpg.connect(lin_url)
        some = await lc.fetchval("SELECT oid::text FROM nodes WHERE type = 'SourceList' LIMIT 1")
        bias = await lc.fetchval("SELECT oid::text FROM nodes WHERE type = 'BiasFrame' "
                                 "OFFSET 100 LIMIT 1")
        await lc.close()
        start, end = gen.night_window(nights // 2)
        ra0, ra1, *_ = sources["detail"]["region"]
        async with httpx.AsyncClient(base_url=catalog, timeout=600, headers=auth) as http, \
                httpx.AsyncClient(base_url=lineage_url, timeout=600, headers=auth) as lhttp:
            spec = {"cls": "ReducedScienceFrame", "where": {"node": "and", "items": [
                {"node": "compare", "op": "eq", "path": ["chip", "name"], "value": "ccd07"},
                {"node": "compare", "op": "eq", "path": ["filter", "name"],
                 "value": gen.FILTERS[(nights // 2) % 5]},
                {"node": "compare", "op": "ge", "path": ["date_obs"], "value": start.isoformat()},
                {"node": "compare", "op": "lt", "path": ["date_obs"], "value": end.isoformat()}]}}
            (await http.post("/query", json={"query": spec, "limit": 100})).raise_for_status()
            (await http.get("/calibrations/BiasFrame/best", params={
                "chip": "ccd07", "time": (start + dt.timedelta(hours=13)).isoformat()}
            )).raise_for_status()
            (await http.get("/sources/cone", params={
                "ra": (ra0 + ra1) / 2, "dec": 0.0, "radius": 0.5, "limit": args.cone_limit}
            )).raise_for_status()
            (await lhttp.get(f"/lineage/{some}/upstream")).raise_for_status()
            (await lhttp.get(f"/lineage/{bias}/downstream")).raise_for_status()
    finally:
        for proc in reversed(procs):
            proc.stop()
        for db in ("awe_catalog", "awe_lineage"):
            for k in AUTO_EXPLAIN:
                await conn.execute(f"ALTER DATABASE {db} RESET {k}")
        await conn.close()
    text = log.read_bytes()[offset:].decode(errors="replace")
    for block in re.split(r"\n(?=\S)", text):
        if "plan:" in block and OURS.search(block):
            PLANS.append(("ours (the service's statement, auto_explain)", block.strip()))


def report_head(state: dict[str, Any]) -> None:
    o, s = state["objects"], state["sources"]
    od, sd = o["detail"], s["detail"]
    print(f"\nscale benchmark: {o['rows']:,} objects ({od['nights']:,} nights x {od['chips']} "
          f"chips, {od['refs']:,} references), {s['rows']:,} sources at "
          f"{gen.DENSITY:,.0f} per deg^2 over {sd['region']}")
    print(f"generated once: objects {o['seconds']:,.0f} s (COPY {od['copy_seconds']:,.0f} s "
          f"= {o['rows'] / od['copy_seconds']:,.0f} objects/s, indexes "
          f"{od['index_seconds']:,.0f} s), catalog {od['catalog_bytes'] / 2**30:.2f} GiB, "
          f"lineage {od['lineage_bytes'] / 2**30:.2f} GiB")
    print(f"               sources {s['seconds']:,.0f} s (COPY {sd['copy_seconds']:,.0f} s = "
          f"{s['rows'] / sd['copy_seconds']:,.0f} rows/s; indexes {sd['index_seconds']}), "
          f"{s['bytes'] / 2**30:.2f} GiB = {s['bytes'] / s['rows']:.0f} bytes per source; "
          + ", ".join(f"{k} {v / s['rows']:.0f} B/row" for k, v in
                      sd["relation_bytes"].items()))
    print("schema measured: catalog migrations " + ", ".join(state["migrations"]))
    print("largest tables: " + ", ".join(f"{k} {v / 2**30:.2f} GiB"
                                         for k, v in state["sizes"].items()))
    print("\n| figure | ours (HTTP) | today's schema, hand SQL | designed schema, hand SQL "
          "| unit | goal |\n|---|---|---|---|---|---|", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--keep", type=Path, default=Path("/tmp/awe-scale"),
                        help="where the generated catalogue is kept between runs")
    parser.add_argument("--objects", type=int, default=10**7)
    parser.add_argument("--sources", type=int, default=10**8)
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--register", type=int, default=20_000)
    parser.add_argument("--register-clients", type=int, nargs="+", default=[1, 2],
                        help="registration by this many clients at once, one figure each")
    parser.add_argument("--lists", type=int, default=25, help="source lists ingested")
    parser.add_argument("--cone-limit", type=int, default=1000)
    parser.add_argument("--generate-only", action="store_true")
    parser.add_argument("--only", nargs="+", choices=["selective", "calibration", "cone",
                                                     "scs", "lineage", "registration",
                                                     "ingest"],
                        help="measure these only")
    args = parser.parse_args()
    folder = gen.keep_dir(args.keep.absolute())
    server = PostgresServer(folder / "pg", logfile=folder / "postgres.log")
    procs: list[ServiceProcess] = []
    try:
        server.start()
        tuned = asyncio.run(tune(server.url()))
        if tuned:
            server.stop()
            server.start()
        cat_url = server.create_database("awe_catalog")
        lin_url = server.create_database("awe_lineage")
        state = asyncio.run(prepare(cat_url, lin_url, args))
        report_head(state)
        if args.generate_only:
            return
        procs, catalog, lineage_url = start_services(server, cat_url, lin_url, folder)
        vo_proc, vo_url = start_vo(cat_url, catalog, folder)
        procs.append(vo_proc)
        asyncio.run(measure(args, state, cat_url, lin_url, catalog, lineage_url, vo_url))
        for proc in reversed(procs):
            proc.stop()
        procs = []
        asyncio.run(explain_ours(server, args, cat_url, lin_url, folder,
                                 state["objects"]["detail"]["nights"], state["sources"]))
        print("\nEXPLAIN (ANALYZE, BUFFERS) of each statement")
        for title, plan in PLANS:
            print(f"\n-- {title}\n{plan}")
        print("\n" + "\n".join(REPORT))
    finally:
        for proc in reversed(procs):
            proc.stop()
        server.stop()


async def tune(url: str) -> bool:
    """Memory settings for a catalogue of this size (defaults are for a laptop's tests)."""
    conn = await asyncpg.connect(url)
    try:
        changed = False
        for name, value in TUNING.items():
            now = await conn.fetchval(
                "SELECT coalesce(setting, '') FROM pg_file_settings WHERE name = $1 "
                "AND sourcefile LIKE '%auto.conf' LIMIT 1", name)
            if now != value:
                await conn.execute(f"ALTER SYSTEM SET {name} = '{value}'")
                changed = True
        return changed
    finally:
        await conn.close()


if __name__ == "__main__":
    main()
