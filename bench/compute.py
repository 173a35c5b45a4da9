"""Compute benchmarks, each beside a baseline from the same run:

- reduction throughput (megapixels/s): the pipeline's reduce_science (with weights and bad
  pixels) vs a bare numpy (raw - bias) / flat vs ccdproc's ccd_process, same frames;
- source ingest (rows/s) through the catalog's API vs raw asyncpg COPY of the same rows;
- cone-search latency (p50/p95) on N sources through the API vs the same SQL by hand.

    .venv/bin/python bench/compute.py [--frames 20] [--sources 1000000]

Not here yet: reduction through the compute service's workers, and planning a 10^4-node DAG.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

import asyncpg
import ccdproc
import httpx
import numpy as np
from astropy import units as u
from astropy.nddata import CCDData

from awecore import pipelines as p
from awecore.stack import PostgresServer, ServiceProcess, free_port

TOKEN = "awe_bench_admin"


def reduction(frames: int, size: int) -> None:
    rng = np.random.default_rng(1)
    bias = rng.normal(500, 2, (size, size)).astype(np.float32)
    flat = rng.uniform(0.95, 1.05, (size, size)).astype(np.float32)
    hot = rng.random((size, size)) < 0.0005
    cold = rng.random((size, size)) < 0.0005
    raws = [(rng.poisson(1000, (size, size)) * flat + bias).astype(np.float32)
            for _ in range(frames)]
    mpix = frames * size * size / 1e6

    def rate(fn: object) -> float:
        t = time.perf_counter()
        for raw in raws:
            fn(raw)  # type: ignore[operator]
        return mpix / (time.perf_counter() - t)

    ours = rate(lambda raw: p.reduce_science(raw, bias, flat, hot, cold))
    bare = rate(lambda raw: (raw - bias) / flat)
    master_bias = CCDData(bias, unit=u.adu)
    master_flat = CCDData(flat, unit=u.adu)
    ref = rate(lambda raw: ccdproc.ccd_process(CCDData(raw, unit=u.adu),
                                               master_bias=master_bias, master_flat=master_flat))
    print(f"reduction, {frames} frames of {size}x{size}: ours {ours:8.1f} Mpix/s   "
          f"bare numpy {bare:8.1f} Mpix/s (ratio {ours / bare:4.2f})   "
          f"ccdproc {ref:8.1f} Mpix/s (ratio {ours / ref:4.2f})")
    image, _ = p.reduce_science(raws[0], bias, flat, hot, cold)
    good = ~(hot | cold)
    agree = np.max(np.abs(image[good] - ((raws[0] - bias) / flat)[good]))
    print(f"  agreement with bare numpy on good pixels: max |diff| {agree:.2e} ADU")


async def sources(n: int, catalog: str, db: str, queries: int) -> None:
    rng = np.random.default_rng(2)
    ra = rng.uniform(0, 360, n)
    dec = np.degrees(np.arcsin(rng.uniform(-1, 1, n)))
    mag = rng.uniform(14, 24, n)
    auth = {"Authorization": f"Bearer {TOKEN}"}
    async with httpx.AsyncClient(base_url=catalog, headers=auth, timeout=600) as http:
        chunk = 200_000
        lists = []
        for i in range(0, n, chunk):
            r = await http.post("/objects", json={"type": "SourceList", "privileges": 3})
            lists.append((r.json()["oid"], i, min(n, i + chunk)))
        t = time.perf_counter()
        for oid, a, b in lists:
            r = await http.post(f"/sources/{oid}", json={
                "ra": ra[a:b].tolist(), "dec": dec[a:b].tolist(), "mag": mag[a:b].tolist()})
            r.raise_for_status()
        ours = n / (time.perf_counter() - t)
        conn = await asyncpg.connect(db)
        try:
            await conn.execute("CREATE TABLE bench_sources (LIKE sources INCLUDING ALL)")
            from awe_catalog.storage.sources import healpix_of

            pix = healpix_of(ra, dec)
            rows = [(uuid.UUID(lists[0][0]), i, float(ra[i]), float(dec[i]), int(pix[i]),
                     float(mag[i])) for i in range(n)]
            t = time.perf_counter()
            await conn.copy_records_to_table("bench_sources", records=rows, columns=(
                "sourcelist", "seq", "ra", "dec", "healpix", "mag"))
            base = n / (time.perf_counter() - t)
            print(f"source ingest, {n:,} rows: ours {ours:10,.0f} rows/s   raw COPY "
                  f"{base:10,.0f} rows/s   ratio {ours / base:4.2f} (higher is better)")
            await conn.execute("ANALYZE sources")
            times, sizes = [], []
            for _ in range(queries):
                c_ra, c_dec = float(rng.uniform(0, 360)), float(rng.uniform(-60, 60))
                t = time.perf_counter()
                r = await http.get("/sources/cone", params={"ra": c_ra, "dec": c_dec,
                                                           "radius": 0.2})
                times.append((time.perf_counter() - t) * 1000)
                sizes.append(len(r.json()["sources"]))
            q = statistics.quantiles(times, n=100)
            print(f"cone search r=0.2 deg on {n:,} sources ({statistics.mean(sizes):.0f} "
                  f"found on average): p50 {q[49]:.1f} ms  p95 {q[94]:.1f} ms")
        finally:
            await conn.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--frames", type=int, default=20)
    parser.add_argument("--size", type=int, default=1024)
    parser.add_argument("--sources", type=int, default=1_000_000)
    parser.add_argument("--queries", type=int, default=100)
    args = parser.parse_args()
    print("compute benchmark (2 cores)")
    reduction(args.frames, args.size)
    folder = Path(tempfile.mkdtemp(prefix="awe-bench-compute-"))
    folder.chmod(0o711)
    server = PostgresServer(folder / "pg")
    proc = None
    try:
        server.start()
        db = server.create_database("awe_catalog")
        port = free_port()
        proc = ServiceProcess("catalog", [sys.executable, "-m", "uvicorn",
                                          "awe_catalog.main:create_app", "--factory", "--host",
                                          "127.0.0.1", "--port", str(port), "--no-access-log"],
                              {**os.environ, "AWE_CATALOG_DATABASE_URL": db,
                               "AWE_CATALOG_ADMIN_TOKEN": TOKEN,
                               "AWE_CATALOG_LOG_LEVEL": "WARNING",
                               "AWE_CATALOG_MAX_BODY_BYTES": str(512 * 1024 * 1024)},
                              folder / "catalog.log",
                              health_url=f"http://127.0.0.1:{port}/health")
        proc.start()
        asyncio.run(sources(args.sources, f"http://127.0.0.1:{port}", db, args.queries))
    finally:
        if proc is not None:
            proc.stop()
        server.stop()
        shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
