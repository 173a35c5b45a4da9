"""Catalogue benchmarks: registration through the batch API and DSL query latency.

Each figure is printed beside a baseline measured in the same run on the same database:
raw asyncpg COPY of the same rows for registration, and a hand-written SQL query for the
DSL and best-calibration look-ups.

    .venv/bin/python bench/catalog.py [--objects 100000] [--queries 200] [--streams 1,2]

Registration is measured from one client (each batch waits for the answer to the one
before) and from two clients at once (a pipeline registers from many workers), each beside
the same rows COPY'd from as many connections.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import random
import sys
import time
import uuid
from typing import Any

import asyncpg
import httpx
import orjson
from _common import TOKEN, catalog_service, line, percentile

from awecore.ids import new_oid

BATCH = 5000
NIGHT = dt.datetime(2003, 2, 14, tzinfo=dt.UTC)


async def post(client: httpx.AsyncClient, path: str, body: Any) -> Any:
    """A JSON request as the AWE client sends it (``awecore.client`` encodes bodies with
    orjson: httpx's ``json=`` takes the standard library, some 10 µs an object of a batch,
    time the benchmark would count against the catalogue)."""
    r = await client.post(path, content=orjson.dumps(body),
                          headers={"Content-Type": "application/json"})
    r.raise_for_status()
    return r.json()


def frame(chip: str, filt: str, i: int) -> dict[str, Any]:
    return {"type": "ReducedScienceFrame", "privileges": 3,
            "attributes": {"exptime": 300.0, "object": f"KIDS_{i % 1000}",
                           "imstat": {"mean": 1000.0, "stdev": 30.0 + (i % 97) / 10}},
            "refs": {"chip": chip, "filter": filt}}


async def setup_model(client: httpx.AsyncClient) -> tuple[dict[str, str], dict[str, str]]:
    chips = {f"ccd{i:02d}": o for i, o in enumerate((await post(client, "/objects/batch", {
        "objects": [{"type": "Chip", "privileges": 3, "attributes": {"name": f"ccd{i:02d}"}}
                    for i in range(32)]}))["oids"])}
    filters = {n: o for n, o in zip(["u", "g", "r", "i", "z"], (await post(
        client, "/objects/batch", {"objects": [
            {"type": "Filter", "privileges": 3, "attributes": {"name": n}}
            for n in ["u", "g", "r", "i", "z"]]}))["oids"], strict=True)}
    # a year of master biases per chip: the best-calibration look-up has to choose
    biases = [{"type": "BiasFrame", "privileges": 3, "refs": {"chip": c},
               "timestamp_start": (NIGHT + dt.timedelta(days=d - 1)).isoformat(),
               "timestamp_end": (NIGHT + dt.timedelta(days=d + 1)).isoformat()}
              for c in chips.values() for d in range(365)]
    for i in range(0, len(biases), BATCH):
        await post(client, "/objects/batch", {"objects": biases[i:i + BATCH]})
    return chips, filters


async def bench_registration(client: httpx.AsyncClient, db_url: str, n: int,
                             chips: dict[str, str], filters: dict[str, str],
                             streams: int) -> None:
    """``n`` reduced frames in batches of BATCH, from ``streams`` clients at once (a
    pipeline registers from many workers; 1 is one client waiting for each answer), beside
    the same rows COPY'd by hand, each batch in a transaction, from as many connections."""
    chip_ids, filter_ids = list(chips.values()), list(filters.values())
    objects = [frame(chip_ids[i % 32], filter_ids[i % 5], i) for i in range(n)]
    batches = [objects[i:i + BATCH] for i in range(0, n, BATCH)]
    done = 0

    async def register(mine: list[list[dict[str, Any]]]) -> None:
        nonlocal done
        for batch in mine:
            await post(client, "/objects/batch", {"objects": batch})
            done += len(batch)
            print(f"\r  registered {done:,}/{n:,}", end="", file=sys.stderr)

    start = time.perf_counter()
    await asyncio.gather(*(register(batches[k::streams]) for k in range(streams)))
    ours = n / (time.perf_counter() - start)
    print(file=sys.stderr)

    # baseline: the same rows, COPY'd by hand into tables of the same shape
    conns = [await asyncpg.connect(db_url, server_settings={
        "plan_cache_mode": "force_custom_plan"}) for _ in range(streams)]
    try:
        await conns[0].execute("CREATE TABLE IF NOT EXISTS bench_objects "
                               "(LIKE objects INCLUDING ALL)")
        await conns[0].execute("CREATE TABLE IF NOT EXISTS bench_refs "
                               "(LIKE object_refs INCLUDING ALL)")
        now = dt.datetime.now(dt.UTC)
        rows, refs = [], []
        for o in objects:
            oid = uuid.UUID(new_oid())
            rows.append((oid, o["type"], "bench", now, "admin", "admin", 3, 1, 0,
                         json.dumps(o["attributes"]), json.dumps(o["refs"]), 1, 1, "bench"))
            refs.extend((oid, name, 0, uuid.UUID(dst)) for name, dst in o["refs"].items())
        cols = ("oid", "type", "site", "creation_date", "creator", "project", "privileges",
                "is_valid", "quality_flags", "attributes", "refs", "hlc", "curation_hlc",
                "curation_site")

        async def copy(conn: asyncpg.Connection, starts: range) -> None:
            for i in starts:
                async with conn.transaction():
                    await conn.copy_records_to_table("bench_objects", records=rows[i:i + BATCH],
                                                     columns=cols)
                    await conn.copy_records_to_table(
                        "bench_refs", records=refs[2 * i:2 * (i + BATCH)],
                        columns=("src", "name", "pos", "dst"))

        start = time.perf_counter()
        await asyncio.gather(*(copy(conn, range(k * BATCH, n, streams * BATCH))
                               for k, conn in enumerate(conns)))
        base = n / (time.perf_counter() - start)
    finally:
        for conn in conns:
            await conn.close()
    what = "1 client" if streams == 1 else f"{streams} clients at once"
    line(f"registration, {n:,} objects, {what}", ours, base, "objects/s", True)


HAND_QUERY = """
SELECT o.oid::text, o.type, o.attributes, o.refs, o.creation_date
FROM objects o
JOIN object_refs rc ON rc.src = o.oid AND rc.name = 'chip'
JOIN objects c ON c.oid = rc.dst
JOIN object_refs rf ON rf.src = o.oid AND rf.name = 'filter'
JOIN objects f ON f.oid = rf.dst
WHERE o.type = 'ReducedScienceFrame'
  AND c.type = 'Chip' AND c.attributes ->> 'name' = $1
  AND f.type = 'Filter' AND f.attributes ->> 'name' = $2
ORDER BY o.oid LIMIT 100
"""

HAND_BEST = """
SELECT o.oid::text FROM objects o
JOIN object_refs rc ON rc.src = o.oid AND rc.name = 'chip'
JOIN objects c ON c.oid = rc.dst AND c.type = 'Chip' AND c.attributes ->> 'name' = $1
WHERE o.type = 'BiasFrame' AND o.is_valid = 1
  AND o.timestamp_start <= $2 AND o.timestamp_end >= $2
ORDER BY o.creation_date DESC, o.oid DESC LIMIT 1
"""


async def bench_queries(client: httpx.AsyncClient, conn: asyncpg.Connection, n: int,
                        queries: int) -> None:
    rng = random.Random(42)
    pairs = [(f"ccd{rng.randrange(32):02d}", rng.choice("ugriz")) for _ in range(queries)]
    ours, base = [], []
    for chip, filt in pairs:
        spec = {"cls": "ReducedScienceFrame", "where": {"node": "and", "items": [
            {"node": "compare", "op": "eq", "path": ["chip", "name"], "value": chip},
            {"node": "compare", "op": "eq", "path": ["filter", "name"], "value": filt}]}}
        t = time.perf_counter()
        page = await post(client, "/query", {"query": spec, "limit": 100})
        ours.append((time.perf_counter() - t) * 1000)
        t = time.perf_counter()
        rows = await conn.fetch(HAND_QUERY, chip, filt)
        base.append((time.perf_counter() - t) * 1000)
        assert [o["oid"] for o in page["objects"]] == [r["oid"] for r in rows]
    line(f"DSL query p50 at {n:,} frames (HTTP)", percentile(ours, 50), percentile(base, 50),
         "ms", False)
    line(f"DSL query p95 at {n:,} frames (HTTP)", percentile(ours, 95), percentile(base, 95),
         "ms", False)
    ours, base = [], []
    for chip, _ in pairs:
        when = NIGHT + dt.timedelta(days=rng.randrange(360), hours=12)
        t = time.perf_counter()
        r = await client.get("/calibrations/BiasFrame/best",
                             params={"chip": chip, "time": when.isoformat()})
        ours.append((time.perf_counter() - t) * 1000)
        t = time.perf_counter()
        best = await conn.fetchval(HAND_BEST, chip, when)
        base.append((time.perf_counter() - t) * 1000)
        assert r.json()["oid"] == best
    line("best calibration p50 (HTTP)", percentile(ours, 50), percentile(base, 50), "ms", False)
    line("best calibration p95 (HTTP)", percentile(ours, 95), percentile(base, 95), "ms", False)


async def run(n: int, queries: int, streams: list[int], db_url: str, catalog: str) -> None:
    # the same planner setting as the catalog's pool, so the baseline is not handicapped
    conn = await asyncpg.connect(db_url, server_settings={"plan_cache_mode": "force_custom_plan"})
    try:
        async with httpx.AsyncClient(base_url=catalog, timeout=600,
                                     headers={"Authorization": f"Bearer {TOKEN}"}) as client:
            chips, filters = await setup_model(client)
            for k in streams:
                await bench_registration(client, db_url, n, chips, filters, k)
            await conn.execute("ANALYZE")
            if queries:
                await bench_queries(client, conn, n * len(streams), queries)
    finally:
        await conn.close()


async def bench_source_ingest(url: str, db_url: str, n: int) -> None:
    """One source list of ``n`` sources loaded the way our client loads them (awecore's
    ``AsyncCatalogClient.load_sources``: a FITS table over HTTP, its encoding timed), beside
    a binary COPY of the same rows, built beforehand, into an empty table of the same shape
    (its indexes and its reference to objects): the floor of any load."""
    import io  # imported here: this benchmark's lines stay apart from the others'

    import _scale_gen as gen
    import numpy as np

    from awecore.client import AsyncCatalogClient
    from awecore.healpix import healpix_of
    from awecore.records import ObjectIn

    conn = await asyncpg.connect(db_url)
    catalog = AsyncCatalogClient(url, TOKEN, timeout=600)
    try:
        ours_oid, base_oid = await catalog.create_batch(
            [ObjectIn(type="SourceList", privileges=3)] * 2)
        rng = np.random.default_rng(17_004)
        ra, dec = rng.uniform(150, 152, n), rng.uniform(-2, 0, n)
        mag = 18 + 7 * rng.power(3.0, n)
        flux = 10 ** (-0.4 * (mag - 30))
        cols = {"ra": ra, "dec": dec, "x": rng.uniform(0, 2048, n),
                "y": rng.uniform(0, 4096, n), "flux": flux, "flux_err": np.sqrt(flux),
                "mag": mag, "mag_err": 1.0857 / np.sqrt(flux), "snr": np.sqrt(flux),
                "flag": (rng.random(n) < 0.05).astype(np.int32)}
        await conn.execute("CREATE TABLE bench_sources (LIKE sources INCLUDING ALL)")
        await conn.execute("ALTER TABLE bench_sources ADD FOREIGN KEY (sourcelist) "
                           "REFERENCES objects (oid)")
        rows = np.zeros(n, dtype=gen._SOURCE_DTYPE)
        rows["n"] = len(gen.SOURCE_COLS)
        for i, size in enumerate((16, 4, 8, 8, 8, 4, 4, 8, 8, 4, 4, 4, 4)):
            rows[f"l{i}"] = size
        rows["sourcelist"] = np.frombuffer(uuid.UUID(base_oid).bytes, dtype="V16")[0]
        rows["seq"] = np.arange(n, dtype=np.int32)
        rows["healpix"] = healpix_of(ra, dec)
        for name, values in cols.items():
            rows[name] = values
        data = gen.source_copy(rows)

        start = time.perf_counter()
        assert await catalog.load_sources(ours_oid, cols) == n
        ours = n / (time.perf_counter() - start)
        start = time.perf_counter()
        await conn.copy_to_table("bench_sources", source=io.BytesIO(data),
                                 columns=gen.SOURCE_COLS, format="binary")
        base = n / (time.perf_counter() - start)
        line(f"source ingest, 1 list of {n:,} (HTTP)", ours, base, "rows/s", True)
    finally:
        await conn.execute("DROP TABLE IF EXISTS bench_sources")
        await catalog.aclose()
        await conn.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--objects", type=int, default=100_000)
    parser.add_argument("--queries", type=int, default=200, help="0: registration only")
    parser.add_argument("--streams", default="1,2",
                        help="registration from this many clients at once, one figure each "
                             "(each registers --objects more frames)")
    parser.add_argument("--no-source-ingest", action="store_true",
                        help="skip the source-list ingest (with --queries 0: registration only)")
    args = parser.parse_args()
    streams = [int(k) for k in args.streams.split(",")]
    print(f"catalog benchmark: {args.objects:,} objects, {args.queries} queries "
          "(embedded PostgreSQL, one uvicorn worker, 2 cores)")
    with catalog_service() as catalog:
        asyncio.run(run(args.objects, args.queries, streams, catalog.db_url, catalog.url))
        if not args.no_source_ingest:
            asyncio.run(bench_source_ingest(catalog.url, catalog.db_url, 10**6))


if __name__ == "__main__":
    main()
