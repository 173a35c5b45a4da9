"""The compute service: targets planned into jobs, made by workers in a consumer group."""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
from asgi_lifespan import LifespanManager
from conftest import ADMIN_TOKEN, CLI_ENV
from pydantic import SecretStr

import awecore as awe
from awe_compute.config import ComputeSettings
from awe_compute.main import create_app
from awecore.client import StorageClient
from awecore.ingest import Ingester, expand
from awecore.sim import PRESETS, NightPlan, simulate_night
from awecore.stack import Broker, PostgresServer, ServiceProcess

pytestmark = pytest.mark.integration
NIGHT = dt.date(2007, 7, 7)
CAMERA = dataclasses.replace(PRESETS["tiny"], chips_x=2, chips_y=1, nx=64, ny=96)
Job = dict[str, Any]


@pytest.fixture(scope="module")
def settings(postgres: PostgresServer, broker: Broker, catalog_process: str,
             storage_process: str, tmp_path_factory: pytest.TempPathFactory) -> ComputeSettings:
    folder: Path = tmp_path_factory.mktemp("compute-night")
    simulate_night(folder, CAMERA, seed=7, date=NIGHT,
                   plan=NightPlan(n_bias=3, n_dome=2, n_twilight=2, science_fields=1,
                                  exposures_per_field=1, standard=False))
    with awe.CatalogClient(catalog_process, ADMIN_TOKEN) as catalog:
        report = Ingester(catalog, StorageClient(storage_process, ADMIN_TOKEN).put).ingest(
            expand([folder]))
    assert not report.failed
    return ComputeSettings(
        site="test", database_url=SecretStr(postgres.create_database("awe_compute_test")),
        catalog_url=catalog_process, storage_url=storage_process,
        service_token=SecretStr(ADMIN_TOKEN), kafka_bootstrap_servers=broker.bootstrap_servers,
        lease_seconds=3, reap_seconds=0.5, session_timeout_ms=3000, log_level="WARNING")


def worker_env(s: ComputeSettings) -> dict[str, str]:
    return {**os.environ, "AWE_SITE": s.site,
            "AWE_COMPUTE_DATABASE_URL": s.database_url.get_secret_value(),
            "AWE_COMPUTE_CATALOG_URL": s.catalog_url, "AWE_COMPUTE_STORAGE_URL": s.storage_url,
            "AWE_COMPUTE_SERVICE_TOKEN": ADMIN_TOKEN,
            "AWE_COMPUTE_KAFKA_BOOTSTRAP_SERVERS": s.kafka_bootstrap_servers,
            "AWE_COMPUTE_LEASE_SECONDS": "3", "AWE_COMPUTE_SESSION_TIMEOUT_MS": "3000"}


@pytest.fixture(scope="module")
async def compute(settings: ComputeSettings,
                  tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[httpx.AsyncClient]:
    logs = tmp_path_factory.mktemp("workers")
    workers = [ServiceProcess(f"worker{i}", [sys.executable, "-m", "awe_compute.worker"],
                              worker_env(settings), logs / f"worker{i}.log") for i in range(2)]
    for w in workers:
        w.start()
    app = create_app(settings)
    try:
        # the timeouts only guard against a hang (asgi-lifespan's default, 5 s, is short
        # for a start-up on a loaded machine)
        async with LifespanManager(app, startup_timeout=120,
                                   shutdown_timeout=120) as manager, httpx.AsyncClient(
                transport=httpx.ASGITransport(app=manager.app),  # type: ignore[arg-type]
                base_url="http://compute",
                headers={"Authorization": f"Bearer {ADMIN_TOKEN}"}) as client:
            client.workers = workers  # type: ignore[attr-defined]
            yield client
    finally:
        for w in workers:
            w.stop()


async def until(compute: httpx.AsyncClient, ids: list[str], done: Callable[[Job], bool],
                what: str, seconds: float = 180) -> list[Job]:
    """The jobs, once each of them is in the state ``done`` describes (the workers change
    their states asynchronously: a test waits for a state, never assumes it). The deadline
    only guards against a hang."""
    deadline = time.monotonic() + seconds
    while True:
        r = await compute.post("/jobs/lookup", json={"ids": ids})
        assert r.status_code == 200, r.text
        jobs: list[Job] = r.json()
        if all(done(j) for j in jobs):
            return jobs
        if time.monotonic() > deadline:
            raise AssertionError(f"jobs not {what} in {seconds} s: " + ", ".join(
                f"{j['cls']} {j['status']} (attempts {j['attempts']})" for j in jobs))
        await asyncio.sleep(0.3)


def ended(job: Job) -> bool:
    return job["status"] in ("done", "failed", "cancelled")


async def finished(compute: httpx.AsyncClient, ids: list[str], seconds: float = 180) -> None:
    jobs = await until(compute, ids, ended, "finished", seconds)
    assert {j["status"] for j in jobs} == {"done"}, [(j["cls"], j["error"]) for j in jobs
                                                     if j["status"] != "done"]


async def test_dry_run_then_jobs_made_by_workers(compute: httpx.AsyncClient,
                                                 catalog_process: str) -> None:
    body = {"cls": "ColdPixelMap", "date": NIGHT.isoformat(), "chip": "ccd50", "filter": "841"}
    dry = (await compute.post("/jobs", json={**body, "dry_run": True})).json()
    assert dry["jobs"] == [] and any("make DomeFlatFrame" in p for p in dry["plan"])
    r = await compute.post("/jobs", json=body)
    assert r.status_code == 201, r.text
    submitted = r.json()
    classes = [j["cls"] for j in submitted["jobs"]]
    assert classes == ["ReadNoise", "BiasFrame", "HotPixelMap", "DomeFlatFrame",
                       "ColdPixelMap"]
    # each job says what it makes by data ID: a bias has no filter, a dome flat has one
    ids = {j["cls"]: j["data_id"] for j in submitted["jobs"]}
    assert ids["BiasFrame"] == {"chip": "ccd50", "night": NIGHT.isoformat()}
    assert ids["DomeFlatFrame"] == {"chip": "ccd50", "filter": "841", "night": NIGHT.isoformat()}
    # the same target again while it is being made: the same jobs, nothing new
    again = (await compute.post("/jobs", json=body)).json()
    assert {j["id"] for j in again["jobs"]} <= {j["id"] for j in submitted["jobs"]}
    await finished(compute, [j["id"] for j in submitted["jobs"]])
    with awe.CatalogClient(catalog_process, ADMIN_TOKEN) as catalog:
        cold = catalog.get(submitted["target"])
        assert cold.type == "ColdPixelMap" and cold.flat.bias.type == "BiasFrame"  # type: ignore[attr-defined]
    assert (await compute.post("/jobs", json=body)).json()["jobs"] == []  # up to date now
    page = (await compute.get("/jobs", params={"status": "done"})).json()
    assert len(page["jobs"]) >= 5
    log = (await compute.get(f"/jobs/{submitted['jobs'][0]['id']}/log")).text
    assert "made" in log


async def test_a_worker_killed_mid_job_is_replaced(compute: httpx.AsyncClient,
                                                   settings: ComputeSettings,
                                                   catalog_process: str,
                                                   tmp_path: Path) -> None:
    """A worker is killed while it makes a job (held mid-job by a storage that does not
    answer); when its lease runs out, another worker makes the job under the same oid."""
    from conftest import PROCESSES

    body = {"cls": "HotPixelMap", "date": NIGHT.isoformat(), "chip": "ccd51"}
    workers: list[ServiceProcess] = compute.workers  # type: ignore[attr-defined]
    for w in workers:
        w.stop()
    storage = PROCESSES["storage"]
    assert storage.pid is not None
    doomed = ServiceProcess("doomed", [sys.executable, "-m", "awe_compute.worker"],
                            worker_env(settings), tmp_path / "doomed.log")
    conn = await asyncpg.connect(settings.database_url.get_secret_value())
    os.kill(storage.pid, signal.SIGSTOP)
    try:
        submitted = (await compute.post("/jobs", json=body)).json()
        first = submitted["jobs"][0]
        doomed.start()
        # the doomed worker has claimed it (the one worker there is; its lease may even
        # have run out already: the job is then ready again, and still its first attempt)
        try:
            await until(compute, [first["id"]], lambda j: j["attempts"] >= 1, "claimed")
        except AssertionError as exc:
            raise AssertionError(f"{exc}\n{doomed.log_tail()}") from None
        doomed_pid = doomed.pid
        doomed.kill()  # mid-job: it holds the job, waiting for the raw biases
    finally:
        os.kill(storage.pid, signal.SIGCONT)
    try:
        for w in workers:
            w.start()
        await finished(compute, [j["id"] for j in submitted["jobs"]])
        row = await conn.fetchrow("SELECT attempts, worker FROM jobs WHERE id = $1",
                                  uuid.UUID(first["id"]))
    finally:
        await conn.close()
    assert row["attempts"] == 2 and not row["worker"].endswith(f":{doomed_pid}")
    log = (await compute.get(f"/jobs/{first['id']}/log")).text
    assert "lease expired" in log
    with awe.CatalogClient(catalog_process, ADMIN_TOKEN) as catalog:
        spec = awe.ReadNoise.chip.name == "ccd51"
        spec._session = catalog
        middle = dt.datetime.combine(NIGHT, dt.time(23, 59), dt.UTC)  # a made calibration's
        made = [o for o in spec if o.record and o.record.timestamp_start  # window covers it
                and o.record.timestamp_end
                and o.record.timestamp_start <= middle <= o.record.timestamp_end]
    assert len(made) == 1 and made[0].record.oid == first["product"]  # type: ignore[union-attr]


async def test_failures_and_bad_requests(compute: httpx.AsyncClient) -> None:
    r = await compute.post("/jobs", json={"cls": "HotPixelMap", "date": "1999-01-01",
                                          "chip": "ccd50"})
    assert r.status_code == 404 and "RawBiasFrame" in r.json()["detail"]
    r = await compute.post("/jobs", json={"cls": "Nope", "date": "2007-07-07", "chip": "x"})
    assert r.status_code == 400 and "cannot make Nope" in r.json()["detail"]
    r = await compute.post("/jobs/plan", json={"targets": [
        {"cls": "HotPixelMap", "date": "2007-07-07", "chip": "ccd50"}],
        "params": {"HotPixleMap": {"nsigma": 5}}, "dry_run": True})
    assert r.status_code == 400 and "HotPixleMap, which AWE does not make" in r.json()["detail"]
    r = await compute.post("/jobs", json={"cls": "ReducedScienceFrame", "date": "2007-07-07",
                                          "chip": "ccd50", "filter": "841"})
    assert r.status_code == 400 and "made from one raw frame" in r.json()["detail"]
    r = await compute.post("/jobs", json={"cls": "HotPixelMap", "date": "soon", "chip": "x"})
    assert r.status_code == 400
    assert (await compute.get("/jobs/not-a-job")).status_code == 404
    r = await compute.post(f"/jobs/{uuid.uuid4()}/retry")
    assert r.status_code == 404


async def test_class_get_through_compute(compute: httpx.AsyncClient, settings: ComputeSettings,
                                         monkeypatch: pytest.MonkeyPatch) -> None:
    """HotPixelMap.get(...) submits to the compute service and waits for its workers."""
    from conftest import start_service

    env = {**worker_env(settings), "AWE_COMPUTE_REAP_SECONDS": "0.5"}
    proc, url = start_service("compute-api", "awe_compute.main:create_app", env,
                              Path(__import__("tempfile").mkdtemp()))
    try:
        monkeypatch.setenv("AWE_CATALOG_URL", settings.catalog_url)
        monkeypatch.setenv("AWE_COMPUTE_URL", url)
        monkeypatch.setenv("AWE_TOKEN", ADMIN_TOKEN)
        awe.connect()
        flat = await asyncio.to_thread(awe.MasterFlatFrame.get, NIGHT, "ccd51", "842")
        assert flat.record is not None and flat.twilight.type == "TwilightFlatFrame"  # type: ignore[union-attr]
        again = await asyncio.to_thread(awe.MasterFlatFrame.get, NIGHT, "ccd51", "842")
        assert again == flat
        fresh = await asyncio.to_thread(awe.MasterFlatFrame.make, NIGHT, "ccd51", "842")
        assert fresh != flat and fresh.dome == flat.dome  # type: ignore[attr-defined]
        r = await asyncio.to_thread(
            subprocess.run, [sys.executable, "-m", "awecore.cli", "jobs", "--status", "done"],
            capture_output=True, text=True, timeout=60, check=False,
            env={"AWE_COMPUTE_URL": url, "AWE_TOKEN": ADMIN_TOKEN, **CLI_ENV, "COLUMNS": "200"})
        assert r.returncode == 0, r.stderr
        assert "MasterFlatFrame" in r.stdout and "done" in r.stdout
    finally:
        proc.stop()


async def test_a_failing_job_fails_its_dependants(compute: httpx.AsyncClient,
                                                  settings: ComputeSettings) -> None:
    body = {"cls": "ColdPixelMap", "date": NIGHT.isoformat(), "chip": "ccd50", "filter": "842"}
    workers: list[ServiceProcess] = compute.workers  # type: ignore[attr-defined]
    for w in workers:
        w.stop()
    conn = await asyncpg.connect(settings.database_url.get_secret_value())
    try:
        submitted = (await compute.post("/jobs", json=body)).json()
        first = next(j for j in submitted["jobs"] if j["cls"] == "DomeFlatFrame")
        # one of its raw flats is gone: the recipe cannot load it
        await conn.execute(
            "UPDATE jobs SET raws = jsonb_set(raws, '{raw_dome_flat_frames,0}', "
            "to_jsonb($2::text)) WHERE id = $1", uuid.UUID(first["id"]), str(uuid.uuid4()))
    finally:
        await conn.close()
    for w in workers:
        w.start()
    ids = [first["id"], *(j["id"] for j in submitted["jobs"] if j["cls"] == "ColdPixelMap")]
    jobs = await until(compute, ids, ended, "finished")
    assert jobs[0]["status"] == "failed" and "not in the catalog" in jobs[0]["error"]
    assert jobs[0]["attempts"] == 1
    assert "Traceback" in (await compute.get(f"/jobs/{ids[0]}/log")).text
    assert {j["status"] for j in jobs[1:]} == {"failed"}
    assert all(j["error"] == f"an input failed: job {ids[0]}" for j in jobs[1:])
    r = await compute.post(f"/jobs/{ids[0]}/retry")
    assert r.status_code == 200, r.text
    retried = r.json()
    # the retry took: the job is ready again, unless a worker has taken it up already
    assert retried["status"] == "ready" or retried["attempts"] == 2, retried
    (again,) = await until(compute, ids[:1], lambda j: j["attempts"] >= 2 and ended(j),
                           "retried and finished")
    # it ran again, and failed again: its input is still gone
    assert again["status"] == "failed" and "not in the catalog" in again["error"]
    assert again["attempts"] == 2


async def test_many_targets_as_one_plan(compute: httpx.AsyncClient,
                                        catalog_process: str) -> None:
    """Two chips' flats planned together: each shared calibration is one job, and a
    waiting client polls every job in one request."""
    targets = [{"cls": "MasterFlatFrame", "date": NIGHT.isoformat(), "chip": c, "filter": f}
               for c in ("ccd50", "ccd51") for f in ("841", "842")]
    dry = (await compute.post("/jobs/plan", json={"targets": targets, "dry_run": True})).json()
    assert dry["jobs"] == [] and len(dry["targets"]) == 4
    r = await compute.post("/jobs/plan", json={"targets": targets})
    assert r.status_code == 201, r.text
    submitted = r.json()
    keys = [(j["cls"], j["chip"], j["filter"]) for j in submitted["jobs"]]
    assert len(keys) == len(set(keys))  # deduplicated across the targets
    to_make = sum(line.startswith("make MasterFlatFrame") for line in dry["plan"])
    assert to_make >= 3  # one was made by an earlier test: it is used, not made again
    assert sum(j["cls"] == "MasterFlatFrame" for j in submitted["jobs"]) == to_make
    ids = [j["id"] for j in submitted["jobs"]]
    await finished(compute, ids)
    polled = (await compute.post("/jobs/lookup", json={"ids": ids})).json()
    assert [j["id"] for j in polled] == ids and {j["status"] for j in polled} == {"done"}
    with awe.CatalogClient(catalog_process, ADMIN_TOKEN) as catalog:
        made = catalog.get_many(submitted["targets"])
        assert [(o.chip.name, o.filter.name) for o in made] == [  # type: ignore[attr-defined]
            (t["chip"], t["filter"]) for t in targets]
    r = await compute.post("/jobs/lookup", json={"ids": [str(uuid.uuid4())]})
    assert r.status_code == 404 and "no job" in r.json()["detail"]
    r = await compute.post("/jobs/lookup", json={"ids": ["x'; DROP TABLE jobs; --"]})
    assert r.status_code == 400 and "UUID" in r.json()["detail"]
    r = await compute.post("/jobs/plan", json={"targets": [], "dry_run": True})
    assert r.status_code in (400, 422)
