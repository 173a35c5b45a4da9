"""Portal benchmarks: every page's latency at 10^5 objects in the catalogue, beside the API
call the page is built from.

The whole local stack runs (``awe up``: catalog, storage, lineage, compute, portal) with its
state in a temporary folder. About 10^5 objects are registered through the catalog's batch
API, as ingest and the workers register them: per chip a year of calibrations (read noise,
biases, hot pixel maps, master flats, cold pixel maps, zeropoints), each with a one-night
validity window (what the QC and timeline pages draw), and reduced science frames that
refer to them (what the object viewer and the query page go through). A user signs in to
the portal as a browser does (the sign-in form, its CSRF token, the session cookie); then
each page is asked many times in turn, and in the same run the service call the page is
built from, with the same token. The figure is the page's p95 beside the API's: the ratio
is what the portal adds (templates, the other calls a page makes). The goal: every page
< 300 ms p95.

    .venv/bin/python bench/portal.py [--objects 100000] [--requests 100]
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import random
import re
import shutil
import signal
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from _common import line, local_stack, percentile

from awe_portal.pages._qcseries import series_asks
from awecore.stack import ServiceProcess, free_port

GOAL_MS = 300.0
CHIPS = 32
FILTERS = ("g", "r")
NIGHT0 = dt.datetime(2003, 2, 14, 12, tzinfo=dt.UTC)  # noon: a night runs noon to noon
BATCH = 5000
#: the chip whose biases the make pages plan (from raw frames registered as records only:
#: planning reads no pixels; the workers then fail on the files, which is what the run and
#: log pages show)
RAW_CHIP = "ccd07"


@dataclass
class Loaded:
    """What the loader registered, for the pages to ask about."""

    instrument: str
    chips: dict[str, str]  # name -> oid
    filters: dict[str, str]
    nights: int
    biases: list[str]  # chip-major, one per night
    frames: list[str]
    raw_night: dt.date  # a night of RAW_CHIP with raw bias frames and nothing made yet


def nights_for(total: int) -> int:
    """Nights of calibrations so that with the frames they make about ``total`` objects:
    per chip and night 3 (read noise, bias, hot pixels) and per filter 3 (master flat, cold
    pixels, zeropoint), and as many reduced frames again."""
    per_night = CHIPS * (3 + 3 * len(FILTERS))
    return max(2, total // (2 * per_night))


async def post(client: httpx.AsyncClient, path: str, body: Any) -> Any:
    r = await client.post(path, json=body)
    r.raise_for_status()
    return r.json()


async def batch(client: httpx.AsyncClient, objects: list[dict[str, Any]]) -> list[str]:
    oids: list[str] = []
    for i in range(0, len(objects), BATCH):
        oids += (await post(client, "/objects/batch", {"objects": objects[i:i + BATCH]}))["oids"]
    return oids


def _cal(cls: str, night: int, refs: dict[str, str], **attributes: Any) -> dict[str, Any]:
    start = NIGHT0 + dt.timedelta(days=night)
    return {"type": cls, "privileges": 3, "refs": refs,
            "timestamp_start": start.isoformat(),
            "timestamp_end": (start + dt.timedelta(days=1)).isoformat(),
            "attributes": attributes}


async def load(client: httpx.AsyncClient, total: int, rng: random.Random) -> Loaded:
    """About ``total`` objects through the catalog's batch API (as ingest and workers
    register them): chips and filters, a calibration history per chip (what the QC and
    timeline pages draw), and reduced science frames referring to them (what the object
    viewer and queries page through). Every calibration has a one-night validity window."""
    nights = nights_for(total)
    (instrument,) = await batch(client, [{"type": "Instrument", "privileges": 3,
                                         "attributes": {"name": "BENCHCAM"}}])
    chips = dict(zip((f"ccd{i:02d}" for i in range(CHIPS)), await batch(client, [
        {"type": "Chip", "privileges": 3, "attributes": {"name": f"ccd{i:02d}", "nx": 2048,
                                                         "ny": 4096},
         "refs": {"instrument": instrument}} for i in range(CHIPS)]), strict=True))
    filters = dict(zip(FILTERS, await batch(client, [
        {"type": "Filter", "privileges": 3, "attributes": {"name": f}} for f in FILTERS]),
        strict=True))
    pairs = [(c, n) for c in chips.values() for n in range(nights)]
    noise = await batch(client, [_cal("ReadNoise", n, {"chip": c},
                                      read_noise=round(rng.gauss(5.0, 0.2), 3))
                                 for c, n in pairs])
    biases = await batch(client, [
        _cal("BiasFrame", n, {"chip": c, "read_noise": rn},
             imstat={"mean": round(rng.gauss(300, 3), 2), "stdev": round(rng.gauss(5, .2), 3)})
        for (c, n), rn in zip(pairs, noise, strict=True)])
    # the frames next: the lineage service follows the changelog in order, and the pages
    # show the first frames (with their biases, the graph is whole early)
    made = 1 + CHIPS + len(FILTERS) + 3 * len(pairs) + 3 * nights * CHIPS * len(FILTERS)
    frames = await batch(client, [
        {"type": "ReducedScienceFrame", "privileges": 3,
         "refs": {"chip": c, "filter": f, "bias": biases[ci * nights + n]},
         "attributes": {"exptime": 300.0, "object": f"KIDS_{i % 1000}",
                        "date_obs": (NIGHT0 + dt.timedelta(days=n, hours=10)).isoformat(),
                        "imstat": {"mean": 1000.0, "stdev": 30.0 + (i % 97) / 10}}}
        for i in range(max(0, total - made))
        for ci, c, f, n in [(i % CHIPS, list(chips.values())[i % CHIPS],
                             list(filters.values())[i // CHIPS % len(FILTERS)],
                             i // (CHIPS * len(FILTERS)) % nights)]])
    await batch(client, [_cal("HotPixelMap", n, {"chip": c, "bias": b},
                              hot_pixels=rng.randrange(50, 200))
                         for (c, n), b in zip(pairs, biases, strict=True)])
    triples = [(c, f, n) for c in chips.values() for f in filters.values()
               for n in range(nights)]
    await batch(client, [_cal("MasterFlatFrame", n, {"chip": c, "filter": f},
                              imstat={"mean": 1.0, "stdev": round(rng.gauss(.01, .001), 5)})
                         for c, f, n in triples])
    await batch(client, [_cal("ColdPixelMap", n, {"chip": c, "filter": f},
                              cold_pixels=rng.randrange(10, 80))
                         for c, f, n in triples])
    await batch(client, [_cal("PhotometricParameters", n, {"chip": c, "filter": f},
                              zeropoint=round(rng.gauss(24.5, .05), 3), n_stars=40)
                         for c, f, n in triples])
    raw_night = (NIGHT0 + dt.timedelta(days=nights + 5)).date()
    await batch(client, [
        {"type": "RawBiasFrame", "privileges": 3,
         "refs": {"instrument": instrument, "chip": chips[RAW_CHIP]},
         "filename": f"raw/BENCHCAM/{raw_night}/bias{n}/{RAW_CHIP}.fits", "file_size": 1,
         "attributes": {"exptime": 0.0, "date_obs": dt.datetime.combine(
             raw_night, dt.time(17, 2 * n), dt.UTC).isoformat()}} for n in range(10)])
    return Loaded(instrument, chips, filters, nights, biases, frames, raw_night)


def portal_process(env: dict[str, str], folder: Path) -> tuple[ServiceProcess | None, str]:
    """The stack's portal, or (a stack without one) a portal process of our own on it."""
    if env.get("AWE_PORTAL_URL"):
        return None, env["AWE_PORTAL_URL"]
    port = free_port()
    proc = ServiceProcess(
        "portal", [sys.executable, "-m", "uvicorn", "awe_portal.main:create_app", "--factory",
                   "--host", "127.0.0.1", "--port", str(port), "--no-access-log"],
        {"PATH": "/usr/bin:/bin", "AWE_SITE": env.get("AWE_SITE", "bench"),
         "AWE_PORTAL_CATALOG_URL": env["AWE_CATALOG_URL"],
         "AWE_PORTAL_STORAGE_URL": env["AWE_STORAGE_URL"],
         "AWE_PORTAL_LINEAGE_URL": env["AWE_LINEAGE_URL"],
         "AWE_PORTAL_COMPUTE_URL": env["AWE_COMPUTE_URL"],
         "AWE_PORTAL_CACHE_DIR": str(folder / "portal-cache"),
         "AWE_PORTAL_LOG_LEVEL": "WARNING"},
        folder / "portal.log", health_url=f"http://127.0.0.1:{port}/readyz")
    proc.start()
    return proc, f"http://127.0.0.1:{port}"


_CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


async def sign_in(portal: httpx.AsyncClient, token: str) -> None:
    """As a browser: the sign-in form (its CSRF token and cookie), then the token posted."""
    form = await portal.get("/signin")
    found = _CSRF.search(form.text)
    assert form.status_code == 200 and found, form.text[:500]
    r = await portal.post("/signin", data={"csrf_token": found.group(1), "token": token,
                                           "next": "/objects"})
    assert r.status_code in (200, 303), r.text[:500]
    assert (await portal.get("/objects")).status_code == 200


@dataclass
class Case:
    """A page, and the API call it is built from (the one that answers its question)."""

    name: str
    page: str  # the portal's path and query
    api: Callable[[], Awaitable[httpx.Response]]


async def timed(call: Callable[[], Awaitable[httpx.Response]], n: int, what: str) -> list[float]:
    for _ in range(3):  # warm: connections, caches, the planner's first look-ups
        (await call()).raise_for_status()
    out = []
    for _ in range(n):
        start = time.perf_counter()
        r = await call()
        out.append((time.perf_counter() - start) * 1000)
        if not r.is_success:
            raise AssertionError(f"{what}: HTTP {r.status_code}: {r.text[:300]}")
    return out


def cases(data: Loaded, apis: dict[str, httpx.AsyncClient], jobs: list[str],
          rng: random.Random) -> list[Case]:
    catalog, compute = apis["catalog"], apis["compute"]
    chip = sorted(data.chips)[rng.randrange(len(data.chips))]
    target = {"night": data.raw_night.isoformat(), "chip": RAW_CHIP}
    frame = data.frames[0] if data.frames else data.biases[0]
    bias = data.biases[0]
    dsl = f"ReducedScienceFrame.chip.name == '{chip}'"
    spec = {"cls": "ReducedScienceFrame", "where": {
        "node": "compare", "op": "eq", "path": ["chip", "name"], "value": chip}}
    # the QC page's one call: a query per class for its points' fields, and the names
    qc = {"queries": [{"query": spec.model_dump(mode="json"), "fields": list(fields),
                       "limit": limit}
                      for spec, fields, limit in series_asks(chip, named=("Chip", "Filter"))]}
    return [
        Case("classes with counts", "/objects?counts=true",
             lambda: catalog.get("/counts")),
        Case("query page (DSL, first page)", "/query?" + httpx.QueryParams({"q": dsl}).__str__(),
             lambda: catalog.post("/query", json={"query": spec, "limit": 50})),
        Case("object page (reduced frame)", f"/objects/{frame}",
             lambda: catalog.get(f"/objects/{frame}")),
        Case("object page (bias, and frames using it)", f"/objects/{bias}",
             lambda: catalog.get(f"/objects/{bias}")),
        Case("QC page (chip, a year)", f"/qc?chip={chip}",
             lambda: catalog.post("/query/values/batch", json=qc)),
        Case("calibration timeline (BiasFrame)", f"/timeline?cls=BiasFrame&chip={chip}",
             lambda: catalog.get("/calibrations/BiasFrame/timeline", params={"chip": chip})),
        Case("make: dry-run plan (BiasFrame)",
             f"/make?cls=BiasFrame&night={data.raw_night}&chip={RAW_CHIP}&plan=1",
             lambda: compute.post("/jobs", json={"cls": "BiasFrame", "dry_run": True,
                                                 "data_id": target})),
        Case("make: a run's jobs (polled fragment)",
             "/make/run/jobs?" + str(httpx.QueryParams({"jobs": ",".join(jobs)})),
             lambda: compute.post("/jobs/lookup", json={"ids": jobs})),
        Case("make: a failed job's log", f"/make/jobs/{jobs[0]}/log",
             lambda: compute.get(f"/jobs/{jobs[0]}/log")),
    ]


async def wait_lineage(lineage: httpx.AsyncClient, oid: str, deadline: float = 900) -> None:
    """Until the lineage service has followed the changelog up to ``oid`` (the object page
    draws its graph); the deadline only guards against a hang."""
    end = time.monotonic() + deadline
    while (await lineage.get(f"/lineage/{oid}/upstream")).status_code != 200:
        if time.monotonic() > end:
            raise AssertionError(f"lineage has not followed {oid} in {deadline} s")
        await asyncio.sleep(1)


async def failed_run(compute: httpx.AsyncClient, data: Loaded) -> list[str]:
    """The BiasFrame of the raw night made for real: its jobs, once the workers have
    failed them (the raw frames are records without files)."""
    r = await compute.post("/jobs", json={"cls": "BiasFrame", "data_id": {
        "night": data.raw_night.isoformat(), "chip": RAW_CHIP}})
    r.raise_for_status()
    ids = [j["id"] for j in r.json()["jobs"]]
    assert ids, r.text
    while True:  # until the workers have ended every job: a state, not a time
        jobs = (await compute.post("/jobs/lookup", json={"ids": ids})).json()
        if all(j["status"] in ("done", "failed", "cancelled") for j in jobs):
            return ids
        await asyncio.sleep(0.3)


async def run(env: dict[str, str], portal_url: str, total: int, n: int) -> None:
    headers = {"Authorization": f"Bearer {env['AWE_TOKEN']}"}
    rng = random.Random(13)
    apis = {name: httpx.AsyncClient(base_url=env[f"AWE_{name.upper()}_URL"], headers=headers,
                                    timeout=600) for name in ("catalog", "lineage", "compute")}
    portal = httpx.AsyncClient(base_url=portal_url, timeout=600, follow_redirects=False)
    try:
        start = time.perf_counter()
        data = await load(apis["catalog"], total, rng)
        count = (await apis["catalog"].post("/query/count", json={"cls": "DBObject"})).json()[
            "count"]
        print(f"  loaded {count:,} objects in {time.perf_counter() - start:.0f} s "
              f"({data.nights} nights of calibrations, {len(data.frames):,} frames)",
              file=sys.stderr)
        await wait_lineage(apis["lineage"], data.frames[0] if data.frames else data.biases[0])
        await sign_in(portal, env["AWE_TOKEN"])
        worst = 0.0
        jobs = await failed_run(apis["compute"], data)
        for case in cases(data, apis, jobs, rng):
            page = await timed(lambda c=case: portal.get(c.page), n, case.name)  # type: ignore[misc]
            api = await timed(case.api, n, case.name + " (API)")
            line(f"{case.name} p95", percentile(page, 95), percentile(api, 95), "ms", False)
            worst = max(worst, percentile(page, 95))
        print(f"slowest page p95 {worst:.1f} ms: goal < {GOAL_MS:.0f} ms "
              + ("met" if worst < GOAL_MS else "NOT met"))
    finally:
        await portal.aclose()
        for client in apis.values():
            await client.aclose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--objects", type=int, default=100_000)
    parser.add_argument("--requests", type=int, default=100, help="per page and per API call")
    args = parser.parse_args()
    print(f"portal benchmark: {args.objects:,} objects, {args.requests} requests per page "
          "(local stack, one uvicorn worker per service, 2 cores)")
    # a stop (SIGTERM) unwinds like an error: the stack is taken down, its folder removed
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    folder = Path(tempfile.mkdtemp(prefix="awe-bench-portal-"))
    folder.chmod(0o711)  # PostgreSQL runs as nobody under root: it must get through
    try:
        with local_stack(folder / "state") as env:
            proc, url = portal_process(env, folder)
            try:
                asyncio.run(run(env, url, args.objects, args.requests))
            finally:
                if proc is not None:
                    proc.stop()
    finally:
        shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
