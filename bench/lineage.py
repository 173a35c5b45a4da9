"""Lineage benchmarks: upstream and downstream latency on synthetic graphs of 10^5 and 10^6
objects with realistic fan-in (one master bias per chip used by thousands of frames),
through the lineage service, beside a plain recursive SQL query on the same tables.

    .venv/bin/python bench/lineage.py [--sizes 100000 1000000] [--queries 100]
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import random
import secrets
import shutil
import statistics
import tempfile
import time
import uuid
from pathlib import Path

import asyncpg
import httpx
from _common import catalog_and_lineage

from awecore.ids import new_oid
from awecore.server import pg
from awecore.stack import PostgresServer, ServiceProcess

TOKEN = "awe_" + secrets.token_urlsafe(32)  # the catalog refuses a short or default one
CHIPS = 32
NIGHT = dt.datetime(2003, 2, 14, tzinfo=dt.UTC)
UP = ("WITH RECURSIVE up(oid) AS (SELECT $1::uuid UNION SELECT e.dst FROM edges e "
      "JOIN up ON e.src = up.oid) SELECT n.oid, n.type FROM up JOIN nodes n USING (oid)")
DOWN = ("WITH RECURSIVE down(oid) AS (SELECT $1::uuid UNION SELECT e.src FROM edges e "
        "JOIN down ON e.dst = down.oid) SELECT n.oid, n.type FROM down JOIN nodes n USING (oid)")


def p(values: list[float], q: float) -> float:
    return statistics.quantiles(values, n=100)[q - 1] if len(values) > 1 else values[0]


async def build(conn: asyncpg.Connection, size: int) -> tuple[list[str], list[str]]:
    """Per chip: a master bias and flat for the whole run, then raw -> reduced -> sources.

    Returns the source lists (deep upstream) and the master biases (huge downstream)."""
    per_chip = size // CHIPS
    frames = max(1, (per_chip - 17) // 3)
    nodes, edges = [], []
    sources, biases = [], []
    seq = 0

    def node(type_: str) -> uuid.UUID:
        nonlocal seq
        seq += 1
        oid = uuid.UUID(new_oid())
        nodes.append((oid, type_, "bench", NIGHT, "admin", "admin", 3, 1, 1, seq))
        return oid

    for _chip in range(CHIPS):
        raw_b = [node("RawBiasFrame") for _ in range(10)]
        bias = node("BiasFrame")
        edges.extend((bias, "raw_bias_frames", i, r) for i, r in enumerate(raw_b))
        raw_f = [node("RawDomeFlatFrame") for _ in range(5)]
        flat = node("MasterFlatFrame")
        edges.extend((flat, "raw_dome_flat_frames", i, r) for i, r in enumerate(raw_f))
        edges.append((flat, "bias", 0, bias))
        biases.append(str(bias))
        for _ in range(frames):
            raw = node("RawScienceFrame")
            red = node("ReducedScienceFrame")
            src = node("SourceList")
            edges += [(red, "raw", 0, raw), (red, "bias", 0, bias), (red, "flat", 0, flat),
                      (src, "frame", 0, red)]
            sources.append(str(src))
    await conn.execute("TRUNCATE nodes, edges")
    await conn.copy_records_to_table(
        "nodes", records=nodes, columns=("oid", "type", "site", "creation_date", "creator",
                                         "project", "privileges", "is_valid", "created_valid",
                                         "seq"))
    await conn.copy_records_to_table("edges", records=edges,
                                     columns=("src", "name", "pos", "dst"))
    await conn.execute("ANALYZE nodes; ANALYZE edges")
    print(f"graph: {len(nodes):,} objects, {len(edges):,} references; each master bias is "
          f"used by {frames:,} reduced frames", flush=True)
    return sources, biases


async def measure(conn: asyncpg.Connection, http: httpx.AsyncClient, oids: list[str],
                  direction: str, sql: str) -> None:
    ours, base = [], []
    sizes = set()
    for oid in oids:
        t = time.perf_counter()
        r = await http.get(f"/lineage/{oid}/{direction}")
        r.raise_for_status()
        ours.append((time.perf_counter() - t) * 1000)
        t = time.perf_counter()
        rows = await conn.fetch(sql, uuid.UUID(oid))
        base.append((time.perf_counter() - t) * 1000)
        assert len(r.json()["nodes"]) == len(rows), (len(r.json()["nodes"]), len(rows))
        sizes.add(len(rows))
    for q in (50, 95):
        o, b = p(ours, q), p(base, q)
        print(f"  {direction:<10} p{q}: ours {o:9.2f} ms   recursive SQL {b:9.2f} ms   "
              f"ratio {o / b:6.2f} (lower is better; {min(sizes):,}-{max(sizes):,} objects)")


async def run(sizes: list[int], queries: int, db: str, url: str) -> None:
    conn = await asyncpg.connect(db, server_settings={"plan_cache_mode": "force_custom_plan"})
    rng = random.Random(1)
    try:
        async with httpx.AsyncClient(base_url=url, timeout=600,
                                     headers={"Authorization": f"Bearer {TOKEN}"}) as http:
            for size in sizes:
                sources, biases = await build(conn, size)
                await measure(conn, http, rng.sample(sources, queries), "upstream", UP)
                await measure(conn, http, [rng.choice(biases) for _ in range(queries // 5)],
                              "downstream", DOWN)
    finally:
        await conn.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sizes", type=int, nargs="+", default=[100_000, 1_000_000])
    parser.add_argument("--queries", type=int, default=100)
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="awe-bench-lineage-"))
    folder.chmod(0o711)
    server = PostgresServer(folder / "pg")
    procs: list[ServiceProcess] = []
    try:
        server.start()
        catalog_db = server.create_database("awe_catalog")
        lineage_db = server.create_database("awe_lineage")

        async def migrate() -> None:
            conn = await asyncpg.connect(lineage_db)
            await pg.apply_migrations(conn, "awe_lineage", 7_031_101)
            await conn.close()

        asyncio.run(migrate())
        procs, _, lineage_url = catalog_and_lineage(
            {"AWE_CATALOG_DATABASE_URL": catalog_db, "AWE_CATALOG_ADMIN_TOKEN": TOKEN,
             "AWE_CATALOG_LOG_LEVEL": "WARNING"},
            {"AWE_LINEAGE_DATABASE_URL": lineage_db, "AWE_LINEAGE_LOG_LEVEL": "WARNING"},
            folder)
        print(f"lineage benchmark: {args.queries} upstream and {args.queries // 5} downstream "
              "queries per size (embedded PostgreSQL, one uvicorn worker, 2 cores)")
        asyncio.run(run(args.sizes, args.queries, lineage_db, lineage_url))
    finally:
        for proc in reversed(procs):
            proc.stop()
        server.stop()
        shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
