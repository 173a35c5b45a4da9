"""Compute benchmarks, each beside a baseline from the same run:

- reduction throughput (megapixels/s) on synthetic frames: the pipeline's reduce_science
  (with weights and bad pixels) vs a bare numpy (raw - bias) / flat vs ccdproc's ccd_process;
- reduction throughput (megapixels/s) through the compute service: a full local stack in a
  temporary state folder, a simulated night ingested, its calibrations made first through the
  service (untimed), then the ReducedScienceFrame of every raw science frame submitted as
  one plan and made by the service's two workers, timed from the submit to the last job done
  (HTTP, planning, Kafka, storage round trips, FITS decode and encode, registration); vs
  reduce_science in this process, a bare numpy (raw - bias) / flat and ccdproc's ccd_process
  of exactly the same raw and calibration pixels (read back from storage, untimed), and
  the service's frames' agreement with both;
- source ingest (rows/s) through the catalog's API vs raw asyncpg COPY of the same rows;
- cone-search latency (p50/p95 for a few radii) on N sources (the ingested rows topped up to
  N by raw COPY) through the catalog's API vs the catalog's SQL written out by hand (asyncpg).

    .venv/bin/python bench/compute.py [--parts synthetic,service,sources] [--frames 20]
        [--night small] [--fields 2] [--exposures 2] [--ingest 1000000]
        [--sources 1000000] [--radii 0.1,0.5,2] [--queries 100]

Planning a 10^4-node DAG is bench/planning.py (`make bench-compute` runs both). Not here
yet: source extraction (SourceList) through the service, and the service's scaling beyond
the two workers of one machine.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import io
import itertools
import os
import secrets
import shutil
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import asyncpg
import ccdproc
import httpx
import numpy as np
from astropy import units as u
from astropy.io import fits
from astropy.nddata import CCDData

import awecore as awe
from awecore import pipelines as p
from awecore.client import ComputeClient, StorageClient
from awecore.ingest import Ingester, expand
from awecore.jobs import JobOut, PlanIn, TargetRef
from awecore.model import RawScienceFrame
from awecore.sim import PRESETS, NightPlan, simulate_night
from awecore.stack import PostgresServer, ServiceProcess, Stack, StackSettings, free_port

TOKEN = "awe_" + secrets.token_urlsafe(32)  # the catalog refuses a short or default one
NIGHT = dt.date(2003, 2, 14)
PARTS = ("synthetic", "service", "sources")


# -- reduction of synthetic frames ----------------------------------------------------------
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
    print(f"reduction, {frames} synthetic frames of {size}x{size}: ours {ours:8.1f} Mpix/s   "
          f"bare numpy {bare:8.1f} Mpix/s (ratio {ours / bare:4.2f})   "
          f"ccdproc {ref:8.1f} Mpix/s (ratio {ours / ref:4.2f})")
    image, _ = p.reduce_science(raws[0], bias, flat, hot, cold)
    good = ~(hot | cold)
    agree = np.max(np.abs(image[good] - ((raws[0] - bias) / flat)[good]))
    print(f"  agreement with bare numpy on good pixels: max |diff| {agree:.2e} ADU")


# -- reduction through the compute service --------------------------------------------------
def _submit(compute: ComputeClient, targets: list[TargetRef]) -> list[JobOut]:
    """Every target as one plan: what they share is queued once."""
    return compute.submit_plan(PlanIn(targets=targets)).jobs


def _wait(compute: ComputeClient, ids: list[str], poll: float = 0.1) -> list[JobOut]:
    """Until every job is done, cheaply: asks only for the oldest job not yet seen done (jobs
    run roughly in order), so polling adds about one request per `poll` to the stack."""
    done: dict[str, JobOut] = {}
    pending = list(ids)
    while pending:
        job = compute.job(pending[0])
        if job.status in ("failed", "cancelled"):
            raise RuntimeError(f"{job.cls} job {job.id} {job.status}: {job.error}\n"
                               f"{compute.log(job.id)}")
        if job.status == "done":
            done[job.id] = job
            pending.pop(0)
            continue
        time.sleep(poll)
    return [done[i] for i in ids]


def _pixels(storage: StorageClient, name: str, dtype: type = np.float32) -> np.ndarray:
    data = fits.getdata(io.BytesIO(storage.get(name)))
    return np.asarray(data, dtype=dtype)


def service_reduction(root: Path, preset: str, fields: int, exposures: int) -> None:
    spec = PRESETS[preset]
    chips = [spec.chip_name(i) for i in range(spec.n_chips)]
    filters = [f.name for f in spec.filters]
    stack = Stack(StackSettings(state_dir=root / "state", site="bench"))
    try:
        t = time.perf_counter()
        env = stack.up()
        print(f"reduction through the compute service: local stack up in "
              f"{time.perf_counter() - t:.1f} s (PostgreSQL, broker, catalog + relay, storage, "
              f"lineage, federation, compute API + 2 workers) in {root / 'state'}")
        catalog = awe.connect(env["AWE_CATALOG_URL"], env["AWE_TOKEN"])
        storage = StorageClient(env["AWE_STORAGE_URL"], env["AWE_TOKEN"])
        compute = ComputeClient(env["AWE_COMPUTE_URL"], env["AWE_TOKEN"], timeout=600)

        t = time.perf_counter()
        night = root / "night"
        simulate_night(night, spec, seed=2003, date=NIGHT,
                       plan=NightPlan(science_fields=fields, exposures_per_field=exposures))
        simulated = time.perf_counter() - t
        t = time.perf_counter()
        files = expand([night])
        report = Ingester(catalog, storage.put).ingest(files)
        if report.failed:
            raise RuntimeError(f"ingest refused files: {report.failed}")
        print(f"  night: {len(files)} exposures of the '{preset}' camera ({spec.n_chips} chips "
              f"of {spec.nx}x{spec.ny}) simulated in {simulated:.1f} s, ingested in "
              f"{time.perf_counter() - t:.1f} s ({sum(report.frames.values())} chip frames)")

        # the calibrations first, untimed: what each reduction needs is then there
        raws = [(r.record.oid, r.chip.name, r.filter.name)
                for r in RawScienceFrame.select() if r.record is not None]
        t = time.perf_counter()
        targets = [TargetRef(cls=cls, date=NIGHT, chip=chip) for chip in chips
                   for cls in ("BiasFrame", "HotPixelMap")]
        targets += [TargetRef(cls=cls, date=NIGHT, chip=chip, filter=f) for chip in chips
                    for f in filters for cls in ("MasterFlatFrame", "ColdPixelMap")]
        calibrations = _submit(compute, targets)
        _wait(compute, [j.id for j in calibrations])
        print(f"  calibrations (untimed): {len(calibrations)} jobs in "
              f"{time.perf_counter() - t:.1f} s")

        # timed: a ReducedScienceFrame of every raw science frame, through the service, as
        # one plan (planned against the catalog, queued, made by the two workers)
        t0 = time.perf_counter()
        submitted = compute.submit_plan(PlanIn(targets=[
            TargetRef(cls="ReducedScienceFrame", date=NIGHT, chip=chip, filter=f, raw=oid)
            for oid, chip, f in raws]))
        jobs = submitted.jobs
        products = [str(o) for o in submitted.targets]
        t_submitted = time.perf_counter() - t0
        finished = _wait(compute, [j.id for j in jobs])
        elapsed = time.perf_counter() - t0
        others = [j.cls for j in jobs if j.cls != "ReducedScienceFrame"]
        run = [(j.finished - j.started).total_seconds() for j in finished
               if j.started and j.finished]

        # the same frames, in this process: the raw and calibration pixels the service used
        records = catalog.get_records(products)
        refs = {o: records[o].refs for o in products}
        inputs = catalog.get_records(sorted({str(r[k]) for r in refs.values()
                                             for k in ("raw", "bias", "flat", "hot", "cold")}))
        cache: dict[str, np.ndarray] = {}

        def load(oid: str, dtype: type = np.float32) -> np.ndarray:
            if oid not in cache:
                name = inputs[oid].filename
                assert name is not None
                cache[oid] = _pixels(storage, name, dtype)
            return cache[oid]

        frames = []
        for o in products:
            r = refs[o]
            frames.append((load(str(r["raw"])), load(str(r["bias"])), load(str(r["flat"])),
                           load(str(r["hot"]), bool), load(str(r["cold"]), bool)))
        mpix = sum(raw.size for raw, *_ in frames) / 1e6
        service = mpix / elapsed

        def rate(fn: Callable[..., object]) -> float:
            t = time.perf_counter()
            for frame in frames:
                fn(*frame)
            return mpix / (time.perf_counter() - t)

        inproc = rate(p.reduce_science)
        bare = rate(lambda raw, bias, flat, _h, _c: (raw - bias) / flat)
        masters = {id(a): CCDData(a, unit=u.adu) for _r, b, f, _h, _c in frames for a in (b, f)}
        ref = rate(lambda raw, bias, flat, _h, _c: ccdproc.ccd_process(
            CCDData(raw, unit=u.adu), master_bias=masters[id(bias)],
            master_flat=masters[id(flat)]))
        print(f"  {len(frames)} reduced frames ({mpix:.1f} Mpix): service {service:6.2f} Mpix/s "
              f"({elapsed:.1f} s; planning and queueing {t_submitted:.1f} s, jobs ran "
              f"{statistics.mean(run):.2f} s each on average)")
        print(f"    vs reduce_science in this process {inproc:7.1f} Mpix/s (ratio "
              f"{service / inproc:5.3f})   bare numpy {bare:7.1f} Mpix/s (ratio "
              f"{service / bare:5.3f})   ccdproc {ref:7.1f} Mpix/s (ratio {service / ref:5.3f})")
        print("    the service figure is wall clock from the submit to the last job done:\n"
              "    HTTP to the compute API, planning the targets (one plan) against the catalog,\n"
              "    each job on Kafka, the worker reading the raw frame (and once per worker the\n"
              "    4 calibrations) from storage over HTTP and decoding their FITS,\n"
              "    reduce_science with weights and QC, encoding and storing image and weight\n"
              "    FITS, registering the product in the catalog (outbox, relay to Kafka);\n"
              "    2 workers on 2 cores, beside the idle rest of the stack.\n"
              "    The baselines start from the same pixels in memory, in one process, and write\n"
              "    nothing.")
        if others:
            print(f"    NOTE: the timed submits also queued {len(others)} other jobs: "
                  f"{sorted(set(others))}")
        worst_bare = worst_ref = 0.0
        for o, (raw, bias, flat, hot, cold) in zip(products, frames, strict=True):
            name = records[o].filename
            assert name is not None
            made = _pixels(storage, name)
            good = ~(hot | cold) & (raw < 65000) & (flat > 0)
            worst_bare = max(worst_bare, float(np.max(np.abs(
                made[good] - ((raw - bias) / flat)[good]))))
            theirs = np.asarray(ccdproc.ccd_process(
                CCDData(raw, unit=u.adu), master_bias=masters[id(bias)],
                master_flat=masters[id(flat)]).data)
            worst_ref = max(worst_ref, float(np.max(np.abs(made[good] - theirs[good])
                                                    / np.maximum(np.abs(theirs[good]), 1.0))))
        print(f"    agreement of the service's frames on good pixels: max |diff| vs bare numpy "
              f"{worst_bare:.2e} ADU; max relative diff vs ccdproc {worst_ref:.2e} "
              f"(ccdproc scales the flat to mean 1)")
        storage.close()
        compute.close()
        catalog.close()
    finally:
        stack.down()


# -- source ingest and cone search ----------------------------------------------------------
def _sky(rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    ra = rng.uniform(0, 360, n)
    dec = np.degrees(np.arcsin(rng.uniform(-1, 1, n)))
    return ra, dec, rng.uniform(14, 24, n)


def _rows(oid: str, ra: np.ndarray, dec: np.ndarray, mag: np.ndarray) -> list[tuple[Any, ...]]:
    from awecore.healpix import healpix_of

    return list(zip(itertools.repeat(uuid.UUID(oid)), range(len(ra)), ra.tolist(),
                    dec.tolist(), healpix_of(ra, dec).tolist(), mag.tolist(), strict=False))


_DISTANCE = ("degrees(2 * asin(sqrt(sin(radians(s.dec - $4) / 2) ^ 2 + cos(radians(s.dec))"
             " * cos(radians($4)) * sin(radians(s.ra - $3) / 2) ^ 2)))")
_COLUMNS = ("s.sourcelist::text AS sourcelist, s.seq, s.ra, s.dec, s.x, s.y, s.flux, s.flux_err,"
            f" s.mag, s.mag_err, s.snr, s.flag, {_DISTANCE} AS distance")
_FILTER = f"($6::real IS NULL OR s.mag <= $6) AND {_DISTANCE} <= $5 ORDER BY distance LIMIT $7"

#: The catalog's cone statement (awe_catalog.storage.sources), as an admin sees it (every
#: object visible), written out by hand: the HEALPix ranges read first (a materialised CTE
#: keeps the planner from a distance-ordered scan of the whole table).
SAME_SQL = (f"WITH s AS MATERIALIZED (SELECT s.* FROM unnest($1::bigint[], $2::bigint[])"
            f" AS r(lo, hi) JOIN sources s ON s.healpix BETWEEN r.lo AND r.hi) "
            f"SELECT {_COLUMNS} FROM s JOIN objects l ON l.oid = s.sourcelist "
            f"WHERE {_FILTER}")


async def sources(ingest: int, n: int, catalog: str, db: str, radii: list[float],
                  queries: int) -> None:
    from awecore.healpix import ranges_for_cone

    rng = np.random.default_rng(2)
    ra, dec, mag = _sky(rng, ingest)
    auth = {"Authorization": f"Bearer {TOKEN}"}
    async with httpx.AsyncClient(base_url=catalog, headers=auth, timeout=600) as http:

        async def source_list() -> str:
            r = await http.post("/objects", json={"type": "SourceList", "privileges": 3})
            r.raise_for_status()
            return str(r.json()["oid"])

        chunk = 200_000
        lists = [(await source_list(), i, min(ingest, i + chunk))
                 for i in range(0, ingest, chunk)]
        t = time.perf_counter()
        for oid, a, b in lists:
            r = await http.post(f"/sources/{oid}", json={
                "ra": ra[a:b].tolist(), "dec": dec[a:b].tolist(), "mag": mag[a:b].tolist()})
            r.raise_for_status()
        ours = ingest / (time.perf_counter() - t)
        # planned like the catalog's pool plans: with the actual values every time
        conn = await asyncpg.connect(db, server_settings={"plan_cache_mode":
                                                          "force_custom_plan"})
        try:
            await conn.execute("CREATE TABLE bench_sources (LIKE sources INCLUDING ALL)")
            rows = _rows(lists[0][0], ra, dec, mag)
            t = time.perf_counter()
            await conn.copy_records_to_table("bench_sources", records=rows, columns=(
                "sourcelist", "seq", "ra", "dec", "healpix", "mag"))
            base = ingest / (time.perf_counter() - t)
            del rows
            await conn.execute("DROP TABLE bench_sources")
            print(f"source ingest, {ingest:,} rows: ours {ours:10,.0f} rows/s   raw COPY "
                  f"{base:10,.0f} rows/s   ratio {ours / base:4.2f} (higher is better)")

            # top the source table up to n rows by raw COPY, a million per source list
            t = time.perf_counter()
            loaded = ingest
            while loaded < n:
                k = min(1_000_000, n - loaded)
                await conn.copy_records_to_table(
                    "sources", records=_rows(await source_list(), *_sky(rng, k)),
                    columns=("sourcelist", "seq", "ra", "dec", "healpix", "mag"))
                loaded += k
            if n > ingest:
                copied = time.perf_counter() - t
                print(f"  {n - ingest:,} more sources loaded by raw COPY into the indexed "
                      f"source table in {copied:.0f} s ({(n - ingest) / copied:,.0f} rows/s)")
            await conn.execute("VACUUM ANALYZE sources")
            total = await conn.fetchval("SELECT count(*) FROM sources")
            size = await conn.fetchval(
                "SELECT pg_size_pretty(pg_total_relation_size('sources'))")
            print(f"cone search on {total:,} sources ({size} with indexes), {queries} random "
                  f"cones per radius, nearest first: the API (HTTP + JSON) vs the catalog's "
                  f"SQL by hand (asyncpg):")
            limit = 100_000

            async def by_api(c_ra: float, c_dec: float, radius: float) -> tuple[int, float]:
                t = time.perf_counter()
                r = await http.get("/sources/cone", params={
                    "ra": c_ra, "dec": c_dec, "radius": radius, "limit": limit})
                r.raise_for_status()
                got = len(r.json()["sources"])
                return got, (time.perf_counter() - t) * 1000

            def by_hand(sql: str) -> Callable[[float, float, float],
                                              Awaitable[tuple[int, float]]]:
                async def run(c_ra: float, c_dec: float, radius: float) -> tuple[int, float]:
                    t = time.perf_counter()
                    lo, hi = ranges_for_cone(c_ra, c_dec, radius)
                    got = len(await conn.fetch(sql, lo, hi, c_ra, c_dec, radius, None, limit))
                    return got, (time.perf_counter() - t) * 1000
                return run

            paths = [by_api, by_hand(SAME_SQL)]
            for path in paths:  # warm each path (connections, plans)
                for _ in range(3):
                    await path(10.0, 0.0, 0.5)
            for radius in radii:
                times: list[list[float]] = [[] for _ in paths]
                found = []
                for i in range(queries):
                    cone = (float(rng.uniform(0, 360)), float(rng.uniform(-60, 60)), radius)
                    # rotate which goes first, so none always finds the pages cached
                    got = {}
                    for k in range(len(paths)):
                        j = (i + k) % len(paths)
                        got[j], ms = await paths[j](*cone)
                        times[j].append(ms)
                    if len(set(got.values())) != 1:
                        raise AssertionError(f"cone {cone}: API and same SQL found "
                                             f"{[got[j] for j in range(len(paths))]}")
                    found.append(got[0])
                (a50, a95), (h50, h95) = (
                    (q[49], q[94]) for q in (statistics.quantiles(ms, n=100) for ms in times))
                print(f"  r={radius:<4g} deg ({statistics.mean(found):6.0f} found on average): "
                      f"API p50 {a50:7.1f} ms  p95 {a95:7.1f} ms   same SQL by hand p50 "
                      f"{h50:7.1f} ms  p95 {h95:7.1f} ms   ratio p50 {a50 / h50:4.2f}  p95 "
                      f"{a95 / h95:4.2f} (lower is better)")
        finally:
            await conn.close()


def source_benches(root: Path, ingest: int, n: int, radii: list[float], queries: int) -> None:
    server = PostgresServer(root / "pg")
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
                              root / "catalog.log",
                              health_url=f"http://127.0.0.1:{port}/health")
        proc.start()
        asyncio.run(sources(ingest, n, f"http://127.0.0.1:{port}", db, radii, queries))
    finally:
        if proc is not None:
            proc.stop()
        server.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--parts", default=",".join(PARTS),
                        help=f"comma-separated, of {', '.join(PARTS)}")
    parser.add_argument("--frames", type=int, default=20, help="synthetic frames")
    parser.add_argument("--size", type=int, default=1024, help="synthetic frame side (pixels)")
    parser.add_argument("--night", default="small", choices=sorted(PRESETS),
                        help="the simulated camera of the service run")
    parser.add_argument("--fields", type=int, default=2, help="science fields of the night")
    parser.add_argument("--exposures", type=int, default=2,
                        help="exposures per field and filter")
    parser.add_argument("--ingest", type=int, default=1_000_000,
                        help="sources ingested through the API (and by raw COPY)")
    parser.add_argument("--sources", type=int, default=1_000_000,
                        help="sources in the table for cone search")
    parser.add_argument("--radii", default="0.1,0.5,2", help="cone radii (degrees)")
    parser.add_argument("--queries", type=int, default=100, help="cones per radius")
    args = parser.parse_args()
    parts = [s.strip() for s in args.parts.split(",") if s.strip()]
    if unknown := set(parts) - set(PARTS):
        parser.error(f"unknown parts {sorted(unknown)}")
    print("compute benchmark (2 cores)")
    root = Path(tempfile.mkdtemp(prefix="awe-bench-compute-"))
    root.chmod(0o711)  # PostgreSQL runs as nobody under root: it must get through
    # only this run's stack settings are ever read, never a developer's .awe/awe.env
    os.environ["AWE_STATE_DIR"] = str(root / "state")
    try:
        if "synthetic" in parts:
            reduction(args.frames, args.size)
        if "service" in parts:
            service_reduction(root, args.night, args.fields, args.exposures)
        if "sources" in parts:
            source_benches(root, args.ingest, args.sources,
                           [float(r) for r in args.radii.split(",")], args.queries)
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
