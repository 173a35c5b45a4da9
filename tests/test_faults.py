"""Faults seen and survived: a retried job waits for its inputs again; /readyz names the
broker and the outbox relay's lag; workers resume after a broker restart, and the jobs
topic comes back with its configured partitions.

This module runs its own broker (the test stops it by pid and starts it again on the same
port), with the session's PostgreSQL, catalog and storage."""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import os
import sys
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import asyncpg
import httpx
import pytest
from aiokafka.admin import AIOKafkaAdminClient
from asgi_lifespan import LifespanManager
from conftest import ADMIN_TOKEN
from pydantic import SecretStr

import awecore as awe
from awe_catalog.config import CatalogSettings
from awe_catalog.main import create_app as catalog_app
from awe_compute.config import ComputeSettings
from awe_compute.main import create_app as compute_app
from awecore.client import StorageClient
from awecore.events import topic
from awecore.ingest import Ingester, expand
from awecore.server.kafka import topic_partitions
from awecore.sim import PRESETS, NightPlan, simulate_night
from awecore.stack import Broker, PostgresServer, ServiceProcess

pytestmark = pytest.mark.integration
NIGHT = dt.date(2008, 9, 9)  # its own night: other modules plan 2008-08-08
CAMERA = dataclasses.replace(PRESETS["tiny"], chips_x=2, chips_y=1, nx=64, ny=96)
PARTITIONS = 8
Job = dict[str, Any]
T = TypeVar("T")


async def until(what: str, check: Callable[[], Awaitable[T | None]],
                seconds: float = 120) -> T:
    """Poll ``check`` until it gives something; the deadline only guards against a hang."""
    deadline = time.monotonic() + seconds
    while True:
        got = await check()
        if got is not None and got is not False:
            return got
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not within {seconds} s")
        await asyncio.sleep(0.2)


@pytest.fixture(scope="module")
def own_broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Broker]:
    b = Broker(logfile=tmp_path_factory.mktemp("faults-broker") / "broker.log")
    b.start()
    try:
        yield b
    finally:
        b.stop()


@pytest.fixture(scope="module")
def settings(postgres: PostgresServer, own_broker: Broker, catalog_process: str,
             storage_process: str, tmp_path_factory: pytest.TempPathFactory) -> ComputeSettings:
    folder: Path = tmp_path_factory.mktemp("faults-night")
    simulate_night(folder, CAMERA, seed=8, date=NIGHT,
                   plan=NightPlan(n_bias=3, n_dome=2, n_twilight=2, science_fields=1,
                                  exposures_per_field=1, standard=False))
    with awe.CatalogClient(catalog_process, ADMIN_TOKEN) as catalog:
        report = Ingester(catalog, StorageClient(storage_process, ADMIN_TOKEN).put).ingest(
            expand([folder]))
    assert not report.failed
    return ComputeSettings(
        site="faults", database_url=SecretStr(postgres.create_database("awe_compute_faults")),
        catalog_url=catalog_process, storage_url=storage_process,
        service_token=SecretStr(ADMIN_TOKEN),
        kafka_bootstrap_servers=own_broker.bootstrap_servers, job_partitions=PARTITIONS,
        lease_seconds=3, reap_seconds=0.5, session_timeout_ms=3000, log_level="WARNING")


def worker_env(s: ComputeSettings) -> dict[str, str]:
    return {**os.environ, "AWE_SITE": s.site,
            "AWE_COMPUTE_DATABASE_URL": s.database_url.get_secret_value(),  # type: ignore[union-attr]
            "AWE_COMPUTE_CATALOG_URL": s.catalog_url, "AWE_COMPUTE_STORAGE_URL": s.storage_url,
            "AWE_COMPUTE_SERVICE_TOKEN": ADMIN_TOKEN,
            "AWE_COMPUTE_KAFKA_BOOTSTRAP_SERVERS": s.kafka_bootstrap_servers or "",
            "AWE_COMPUTE_JOB_PARTITIONS": str(PARTITIONS),
            "AWE_COMPUTE_LEASE_SECONDS": "3", "AWE_COMPUTE_SESSION_TIMEOUT_MS": "3000"}


@pytest.fixture(scope="module")
async def compute(settings: ComputeSettings,
                  tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[httpx.AsyncClient]:
    logs = tmp_path_factory.mktemp("faults-workers")
    workers = [ServiceProcess(f"worker{i}", [sys.executable, "-m", "awe_compute.worker"],
                              worker_env(settings), logs / f"worker{i}.log") for i in range(2)]
    app = compute_app(settings)
    try:
        async with LifespanManager(app, startup_timeout=120,
                                   shutdown_timeout=120) as manager, httpx.AsyncClient(
                transport=httpx.ASGITransport(app=manager.app),  # type: ignore[arg-type]
                base_url="http://compute", timeout=60,
                headers={"Authorization": f"Bearer {ADMIN_TOKEN}"}) as client:
            client.workers = workers  # type: ignore[attr-defined]
            yield client
    finally:
        for w in workers:
            w.stop()


async def jobs(compute: httpx.AsyncClient, ids: list[str]) -> list[Job]:
    r = await compute.post("/jobs/lookup", json={"ids": ids})
    assert r.status_code == 200, r.text
    return list(r.json())


async def all_done(compute: httpx.AsyncClient, ids: list[str], seconds: float = 180) -> list[Job]:
    assert ids, "no jobs to wait for"

    async def check() -> list[Job] | None:
        found = await jobs(compute, ids)
        failed = [j for j in found if j["status"] in ("failed", "cancelled")]
        assert not failed, [(j["cls"], j["status"], j["error"]) for j in failed]
        return found if all(j["status"] == "done" for j in found) else None
    return await until("jobs done", check, seconds)


async def test_a_retried_job_waits_for_its_inputs(compute: httpx.AsyncClient,
                                                  settings: ComputeSettings,
                                                  catalog_process: str) -> None:
    """Retrying a cancelled job never runs it before its inputs exist: it waits while an
    input is not done, is refused (409, naming the input) while an input is cancelled,
    and a worker handed it too early puts it back to wait."""
    workers: list[ServiceProcess] = compute.workers  # type: ignore[attr-defined]
    for w in workers:
        w.stop()
    body = {"cls": "ColdPixelMap", "date": NIGHT.isoformat(), "chip": "ccd50", "filter": "842"}
    r = await compute.post("/jobs", json=body)
    assert r.status_code == 201, r.text
    submitted = r.json()["jobs"]
    cold = next(j for j in submitted if j["cls"] == "ColdPixelMap")
    assert cold["deps"], submitted
    inputs = {j["id"]: j for j in submitted if j["id"] in cold["deps"]}
    dome = next(j for j in inputs.values() if j["cls"] == "DomeFlatFrame")

    # cancelled itself, retried while its inputs are not made: waiting, not ready
    assert (await compute.post(f"/jobs/{cold['id']}/cancel")).json()["status"] == "cancelled"
    r = await compute.post(f"/jobs/{cold['id']}/retry")
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "waiting" and r.json()["error"] is None
    # an input cancelled: the job is cancelled with it, and its retry is refused by name
    r = await compute.post(f"/jobs/{dome['id']}/cancel")
    assert r.status_code == 200, r.text
    (again,) = await jobs(compute, [cold["id"]])
    assert again["status"] == "cancelled"
    assert again["error"] == f"an input was cancelled: job {dome['id']}"
    r = await compute.post(f"/jobs/{cold['id']}/retry")
    assert r.status_code == 409, r.text
    assert r.headers["content-type"] == "application/problem+json"
    assert dome["id"] in r.json()["detail"] and "DomeFlatFrame" in r.json()["detail"]
    # retrying the input requeues the job that was cancelled because of it: waiting
    r = await compute.post(f"/jobs/{dome['id']}/retry")
    assert r.status_code == 200, r.text  # its own inputs (bias...) are not made either
    assert r.json()["status"] == ("waiting" if dome["deps"] else "ready"), r.text
    (again,) = await jobs(compute, [cold["id"]])
    assert again["status"] == "waiting" and again["error"] is None
    # a premature nudge (as an old retry gave): the job is marked ready and announced
    # while its inputs are not made; the worker that gets it puts it back to wait
    conn = await asyncpg.connect(settings.database_url.get_secret_value())  # type: ignore[union-attr]
    try:
        await conn.execute("UPDATE jobs SET status = 'ready' WHERE id = $1",
                           uuid.UUID(cold["id"]))
    finally:
        await conn.close()
    for w in workers:
        w.start()
    done = {j["id"]: j for j in await all_done(compute, [cold["id"], *inputs])}
    made = done[cold["id"]]
    # made once, after every input was done, from the inputs' products
    assert made["attempts"] == 1, made
    for dep in inputs.values():
        assert dt.datetime.fromisoformat(made["started"]) >= dt.datetime.fromisoformat(
            done[dep["id"]]["finished"])
    log = (await compute.get(f"/jobs/{cold['id']}/log")).text
    assert "not in the catalog" not in log
    with awe.CatalogClient(catalog_process, ADMIN_TOKEN) as catalog:
        product = catalog.get_records([made["product"]])[made["product"]]
        dome_product = catalog.get_records([done[dome["id"]]["product"]])
    refs = product.refs if hasattr(product, "refs") else product["refs"]
    flat = [v for v in refs.values()] if isinstance(refs, dict) else refs
    assert any(done[dome["id"]]["product"] in str(v) for v in flat), refs
    assert dome_product, "the input's product is registered"


async def test_readyz_names_the_relay_lag(postgres: PostgresServer, own_broker: Broker,
                                          tmp_path: Path) -> None:
    """A catalog whose relay does not run fails readiness once more changes than the
    limit wait (check 'relay'); the relay started, the lag goes to 0 and readiness back."""
    url = postgres.create_database(f"awe_catalog_lag_{uuid.uuid4().hex[:6]}")
    settings = CatalogSettings(site="lag", database_url=SecretStr(url),
                               kafka_bootstrap_servers=own_broker.bootstrap_servers,
                               admin_token=SecretStr(ADMIN_TOKEN), relay_lag_limit=3,
                               relay_poll_seconds=0.2, log_level="WARNING")
    app = catalog_app(settings)
    async with LifespanManager(app, startup_timeout=120, shutdown_timeout=120) as manager, \
            httpx.AsyncClient(transport=httpx.ASGITransport(app=manager.app),  # type: ignore[arg-type]
                              base_url="http://catalog",
                              headers={"Authorization": f"Bearer {ADMIN_TOKEN}"}) as client:
        ready = await client.get("/readyz")
        assert ready.status_code == 200, ready.text
        assert ready.json()["checks"]["relay"] == "ok"
        assert ready.json()["broker"] == "ok"  # shown; the catalog serves without it
        for i in range(5):
            r = await client.post("/objects", json={"type": "Filter",
                                                    "attributes": {"name": f"lag{i}"}})
            assert r.status_code == 201, r.text
        down = await client.get("/readyz")
        assert down.status_code == 503, down.text
        assert down.headers["content-type"] == "application/problem+json"
        relay = down.json()["checks"]["relay"]
        assert relay.startswith("relay: ") and "not published (limit 3)" in relay, relay
        lag = int(relay.split()[1])
        assert lag >= 5
        env = {**os.environ, "AWE_SITE": "lag", "AWE_CATALOG_DATABASE_URL": url,
               "AWE_CATALOG_KAFKA_BOOTSTRAP_SERVERS": own_broker.bootstrap_servers,
               "AWE_CATALOG_RELAY_POLL_SECONDS": "0.2", "AWE_CATALOG_LOG_LEVEL": "INFO"}
        proc = ServiceProcess("relay", [sys.executable, "-m", "awe_catalog.relay"], env,
                              tmp_path / "relay.log")
        proc.start()
        try:
            async def caught_up() -> dict[str, Any] | None:
                r = await client.get("/readyz")
                return r.json() if r.status_code == 200 else None
            body = await until("the relay caught up", caught_up)
            assert body["checks"]["relay"] == "ok" and body["relay_lag"] == 0
        finally:
            proc.stop()


async def test_workers_resume_after_a_broker_restart(
        compute: httpx.AsyncClient, own_broker: Broker, settings: ComputeSettings) -> None:
    """The broker stops: /readyz answers 503 naming it. It starts again, empty, on the same
    port: the jobs topic is made again with its configured partitions, and a job submitted
    then is made within seconds."""
    workers: list[ServiceProcess] = compute.workers  # type: ignore[attr-defined]
    for w in workers:
        w.start()  # (running already unless an earlier test failed midway)
    # the workers are consuming: a first job is made
    first = await compute.post("/jobs", json={"cls": "BiasFrame", "date": NIGHT.isoformat(),
                                              "chip": "ccd51", "anew": True})
    assert first.status_code == 201, first.text
    await all_done(compute, [j["id"] for j in first.json()["jobs"]])
    assert (await compute.get("/readyz")).json()["checks"]["broker"] == "ok"

    own_broker.stop()
    async def broker_down() -> dict[str, Any] | None:
        r = await compute.get("/readyz")
        return r.json() if r.status_code == 503 else None
    down = await until("readyz failing without the broker", broker_down, 60)
    assert down["checks"]["broker"].startswith("broker:"), down
    assert down["checks"]["database"] == "ok"
    assert "broker" in down["detail"]

    own_broker.start()  # the same port; a memory broker comes back with nothing
    back = time.monotonic()
    r = await compute.post("/jobs", json={"cls": "DomeFlatFrame", "date": NIGHT.isoformat(),
                                          "chip": "ccd51", "filter": "842"})
    assert r.status_code == 201, r.text
    ids = [j["id"] for j in r.json()["jobs"]]
    assert ids
    await all_done(compute, ids, seconds=120)
    # how soon is for a benchmark to say (no timed assertion here): printed for the record
    print(f"\njob made {time.monotonic() - back:.1f} s after the broker came back")
    admin = AIOKafkaAdminClient(bootstrap_servers=own_broker.bootstrap_servers)
    await admin.start()
    try:
        name = topic(settings.site, "compute.jobs")
        assert await topic_partitions(admin, [name]) == {name: PARTITIONS}
    finally:
        await admin.close()
    ready = await until("readyz again", lambda: _ready(compute), 60)
    assert ready["checks"]["broker"] == "ok"


async def _ready(client: httpx.AsyncClient) -> dict[str, Any] | None:
    r = await client.get("/readyz")
    return r.json() if r.status_code == 200 else None
