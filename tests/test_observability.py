"""Observability: metrics on every process, JSON logs, request ids across services and into
job logs, liveness apart from readiness, and the leases of running jobs.

Real parts throughout: the session's PostgreSQL, broker, catalog and storage processes, a
relay and a compute worker as processes, the other services in-process under their
lifespans. Every wait is for a state; the deadlines only guard against a hang.
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import inspect
import json
import os
import re
import sys
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, TypeVar

import asyncpg
import httpx
import pytest
from asgi_lifespan import LifespanManager
from conftest import ADMIN_TOKEN, PROCESSES, service_env
from pydantic import SecretStr

import awecore as awe
from awe_catalog.config import CatalogSettings
from awe_compute.config import ComputeSettings
from awe_compute.main import create_app as compute_app
from awe_compute.storage.jobs import JobStore
from awe_compute.worker import Worker
from awe_federation.config import FederationSettings, PeerSite
from awe_federation.main import create_app as federation_app
from awe_lineage.config import LineageSettings
from awe_lineage.main import create_app as lineage_app
from awecore.client import StorageClient
from awecore.ingest import Ingester, expand
from awecore.server import pg
from awecore.sim import PRESETS, NightPlan, simulate_night
from awecore.stack import Broker, PostgresServer, ServiceProcess

pytestmark = pytest.mark.integration
T = TypeVar("T")
NIGHT = dt.date(2011, 11, 11)  # this module's own night: other modules' objects differ
CAMERA = dataclasses.replace(PRESETS["tiny"], chips_x=2, chips_y=1, nx=64, ny=96)
SITE = "obs"  # the compute site: its own topic and consumer group


async def until(what: str, probe: Callable[[], Awaitable[T | None] | T | None],
                seconds: float = 120) -> T:
    """The first truthy answer of ``probe`` (a function or a coroutine function); the
    deadline only guards against a hang."""
    deadline = time.monotonic() + seconds
    while True:
        got = probe()
        if inspect.isawaitable(got):
            got = await got
        if got:
            return got
        if time.monotonic() > deadline:
            raise AssertionError(f"not {what} within {seconds} s")
        await asyncio.sleep(0.2)


def sample(text: str, name: str, **labels: str) -> float | None:
    """The value of a Prometheus sample with (at least) these labels, or None."""
    for line in text.splitlines():
        if not line.startswith(name) or line.startswith("#"):
            continue
        head, _, value = line.rpartition(" ")
        metric, _, rest = head.partition("{")
        if metric != name:
            continue
        have = dict(re.findall(r'(\w+)="([^"]*)"', rest))
        if all(have.get(k) == v for k, v in labels.items()):
            return float(value)
    return None


def json_lines(path: Path) -> list[dict[str, Any]]:
    """Every line of a process's log, each parsed as JSON (fails on any other line)."""
    out = []
    for number, line in enumerate(path.read_text(errors="replace").splitlines(), 1):
        if line.strip():
            try:
                out.append(json.loads(line))
            except ValueError:
                raise AssertionError(f"{path.name}:{number} is not JSON: {line!r}") from None
    return out


def logged(log: Path, **fields: str) -> list[dict[str, Any]]:
    """The log's lines that have these fields."""
    return [e for e in json_lines(log) if all(e.get(k) == v for k, v in fields.items())]


def beat(heartbeat: Path) -> dict[str, Any]:
    """What a relay or worker last wrote to its heartbeat file ({} before it did)."""
    try:
        return dict(json.loads(heartbeat.read_text()))
    except (OSError, ValueError):
        return {}


def status_url(heartbeat: Path) -> str | None:
    """The status server of a relay or worker, from its heartbeat file (once written)."""
    port = beat(heartbeat).get("metrics_port")
    return f"http://127.0.0.1:{port}" if port else None


async def get(url: str, **kwargs: Any) -> httpx.Response:
    async with httpx.AsyncClient(timeout=30) as http:
        return await http.get(url, **kwargs)


# -- fixtures ------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def relay(catalog_settings: CatalogSettings, catalog_process: str,
          tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """The outbox relay as a process, metrics on a free port; yields its heartbeat file."""
    folder = tmp_path_factory.mktemp("relay")
    heartbeat = folder / "heartbeat.json"
    proc = ServiceProcess("relay", [sys.executable, "-m", "awe_catalog.relay"],
                          {**service_env(catalog_settings), "AWE_CATALOG_LOG_LEVEL": "INFO",
                           "AWE_CATALOG_RELAY_METRICS_PORT": "0",
                           "AWE_CATALOG_RELAY_HEARTBEAT_FILE": str(heartbeat)},
                          folder / "relay.log")
    proc.start()
    try:
        yield heartbeat
    finally:
        proc.stop()


@pytest.fixture(scope="module")
def compute_settings(postgres: PostgresServer, broker: Broker, catalog_process: str,
                     storage_process: str,
                     tmp_path_factory: pytest.TempPathFactory) -> ComputeSettings:
    """A night of raw biases ingested, and compute settings of this module's own site."""
    folder: Path = tmp_path_factory.mktemp("obs-night")
    simulate_night(folder, CAMERA, seed=11, date=NIGHT,
                   plan=NightPlan(n_bias=3, n_dome=2, n_twilight=2, science_fields=1,
                                  exposures_per_field=1, standard=False))
    with awe.CatalogClient(catalog_process, ADMIN_TOKEN) as catalog:
        report = Ingester(catalog, StorageClient(storage_process, ADMIN_TOKEN).put).ingest(
            expand([folder]))
    assert not report.failed
    return ComputeSettings(
        site=SITE, database_url=SecretStr(postgres.create_database("awe_compute_obs")),
        catalog_url=catalog_process, storage_url=storage_process,
        service_token=SecretStr(ADMIN_TOKEN), kafka_bootstrap_servers=broker.bootstrap_servers,
        lease_seconds=3, reap_seconds=0.5, session_timeout_ms=3000, log_level="INFO")


@pytest.fixture(scope="module")
async def compute(compute_settings: ComputeSettings,
                  tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[
                      tuple[httpx.AsyncClient, Path, Path]]:
    """The compute API in-process and one worker process; yields the API's client, the
    worker's heartbeat file and its log."""
    s = compute_settings
    folder = tmp_path_factory.mktemp("obs-worker")
    heartbeat, logfile = folder / "heartbeat.json", folder / "worker.log"
    env = {**os.environ, "AWE_SITE": s.site,
           "AWE_COMPUTE_DATABASE_URL": s.database(), "AWE_COMPUTE_CATALOG_URL": s.catalog_url,
           "AWE_COMPUTE_STORAGE_URL": s.storage_url, "AWE_COMPUTE_SERVICE_TOKEN": ADMIN_TOKEN,
           "AWE_COMPUTE_KAFKA_BOOTSTRAP_SERVERS": s.kafka_bootstrap_servers or "",
           "AWE_COMPUTE_LEASE_SECONDS": "3", "AWE_COMPUTE_SESSION_TIMEOUT_MS": "3000",
           "AWE_COMPUTE_WORKER_HEARTBEAT_FILE": str(heartbeat)}
    app = compute_app(s)
    async with LifespanManager(app, startup_timeout=120, shutdown_timeout=120) as manager:
        worker = ServiceProcess("worker", [sys.executable, "-m", "awe_compute.worker"], env,
                                logfile)
        worker.start()
        try:
            async with httpx.AsyncClient(
                    transport=httpx.ASGITransport(app=manager.app),  # type: ignore[arg-type]
                    base_url="http://compute", timeout=60,
                    headers={"Authorization": f"Bearer {ADMIN_TOKEN}"}) as client:
                yield client, heartbeat, logfile
        finally:
            worker.stop()


@asynccontextmanager
async def in_process(app: Any) -> AsyncIterator[httpx.AsyncClient]:
    """A service app under its lifespan, and a client of it."""
    async with LifespanManager(app, startup_timeout=120, shutdown_timeout=120) as manager, \
            httpx.AsyncClient(transport=httpx.ASGITransport(app=manager.app),  # type: ignore[arg-type]
                              base_url="http://service", timeout=60) as client:
        yield client


def new_token(catalog: str, prefix: str) -> str:
    """A fresh user's token: no service has it cached, so each asks the catalog."""
    name = f"{prefix}-{uuid.uuid4().hex[:8]}"
    with httpx.Client(base_url=catalog, headers={"Authorization": f"Bearer {ADMIN_TOKEN}"},
                      timeout=30) as admin:
        assert admin.post("/users", json={"name": name}).status_code == 201
        made = admin.post("/tokens", json={"user": name})
        assert made.status_code == 201, made.text
        return str(made.json()["token"])


# -- metrics -------------------------------------------------------------------------------
async def test_catalog_and_storage_serve_their_metrics(admin: httpx.AsyncClient,
                                                       catalog_process: str,
                                                       storage_process: str) -> None:
    await admin.get("/whoami")
    text = (await admin.get("/metrics")).text
    assert (sample(text, "awe_catalog_requests_total", method="GET", route="/whoami",
                   status="200") or 0) >= 1
    assert "# TYPE awe_catalog_objects_created_total counter" in text

    name = f"obs/{uuid.uuid4().hex}.txt"
    storage = StorageClient(storage_process, ADMIN_TOKEN)
    try:
        before = sample((await get(f"{storage_process}/metrics")).text,
                        "awe_storage_bytes_total", direction="written") or 0.0
        storage.put(name, b"x" * 1000)
        text = (await get(f"{storage_process}/metrics")).text
    finally:
        storage.close()
    assert (sample(text, "awe_storage_bytes_total", direction="written") or 0) >= before + 1000
    assert (sample(text, "awe_storage_files_total", operation="stored") or 0) >= 1


async def test_lineage_and_federation_report_follower_lag(
        postgres: PostgresServer, catalog_process: str, admin: httpx.AsyncClient) -> None:
    made = await admin.post("/objects", json={"type": "Filter", "attributes": {
        "name": f"obs-{uuid.uuid4().hex[:6]}"}})
    assert made.status_code == 201, made.text
    newest = (await admin.get("/changes", params={"limit": 1})).json()["last_sequence"]
    assert newest > 0
    lineage = LineageSettings(
        site="test", database_url=SecretStr(postgres.create_database("awe_lineage_obs")),
        catalog_url=catalog_process, service_token=SecretStr(ADMIN_TOKEN),
        kafka_bootstrap_servers=None, catch_up_seconds=3600, log_level="WARNING")
    async with in_process(lineage_app(lineage)) as client:
        # the lag is read when scraped: the changelog's newest less what the graph applied
        async def lag() -> float | None:
            text = (await client.get("/metrics")).text
            value = sample(text, "awe_follower_lag", follower="lineage")
            return None if value is None else value + 1  # 0 is an answer too
        assert await until("a lineage lag", lag) >= 1
        ready = (await client.get("/readyz")).json()
        assert ready["checks"] == {"database": "ok", "loop:catch-up": "ok"}

    # federation with a peer it does not follow (follow off): the whole changelog is behind
    federation = FederationSettings(
        site="obs", database_url=SecretStr(postgres.create_database("awe_federation_obs")),
        catalog_url=catalog_process, service_token=SecretStr(ADMIN_TOKEN), follow=False,
        peers=[PeerSite(site="peer-x", catalog_url=catalog_process,
                        token=SecretStr(ADMIN_TOKEN))], log_level="WARNING")
    async with in_process(federation_app(federation)) as client:
        text = (await client.get("/metrics")).text
        assert sample(text, "awe_follower_lag", follower="federation:peer-x") >= newest  # type: ignore[operator]
        assert sample(text, "awe_federation_applied_sequence", peer="peer-x") == 0.0
        assert "# TYPE awe_consumer_lag gauge" in text


async def test_relay_serves_outbox_lag(relay: Path, admin: httpx.AsyncClient) -> None:
    url = await until("a relay heartbeat", lambda: status_url(relay))
    assert (await get(f"{url}/livez")).status_code == 200
    await until("the relay ready", lambda: _ok(f"{url}/readyz"))
    made = await admin.post("/objects", json={"type": "Filter", "attributes": {
        "name": f"obs-{uuid.uuid4().hex[:6]}"}})
    assert made.status_code == 201, made.text
    newest = (await admin.get("/changes", params={"limit": 1})).json()["last_sequence"]

    async def published() -> bool:  # the lag falls to 0 once the relay has published it
        text = (await get(f"{url}/metrics")).text
        return sample(text, "awe_outbox_lag") == 0.0 and beat(relay).get("cursor", 0) >= newest
    await until("the relay caught up", published)
    text = (await get(f"{url}/metrics")).text
    assert (sample(text, "awe_outbox_published_total") or 0) >= 1
    assert (sample(text, "awe_heartbeat_timestamp_seconds") or 0) > 0


async def _ok(url: str) -> bool:
    try:
        return (await get(url)).status_code == 200
    except httpx.HTTPError:
        return False


# -- logs and request ids ------------------------------------------------------------------
async def test_logs_are_json_and_request_ids_cross_services(catalog_process: str,
                                                            storage_process: str) -> None:
    token = new_token(catalog_process, "obs")
    request_id = f"obs-{uuid.uuid4().hex}"
    got = await get(f"{storage_process}/files", params={"prefix": "obs/"},
                    headers={"Authorization": f"Bearer {token}", "X-Request-ID": request_id})
    assert got.status_code == 200, got.text
    assert got.headers["x-request-id"] == request_id  # echoed
    fresh = await get(f"{storage_process}/livez")
    assert re.fullmatch(r"[0-9a-f]{32}", fresh.headers["x-request-id"])  # made when absent

    # storage asked the catalog who the token is, under the same id
    catalog_log = PROCESSES["catalog"].logfile
    whoami = await until("the request id in the catalog's log",
                         lambda: logged(catalog_log, request_id=request_id, path="/whoami"))
    assert whoami[0]["service"] == "catalog" and whoami[0]["status"] == 200
    storage_log = PROCESSES["storage"].logfile
    lines = json_lines(storage_log)  # every line is JSON, ...
    # ... uvicorn's and httpx's (the call to the catalog, with the id) included
    assert any(e.get("logger", "").startswith("uvicorn") for e in lines)
    calls = [e for e in lines if e.get("logger") == "httpx" and e.get("request_id") == request_id]
    assert calls and "/whoami" in calls[0]["event"]
    assert json_lines(catalog_log)


async def test_request_id_reaches_the_jobs_log_and_worker_metrics(
        compute: tuple[httpx.AsyncClient, Path, Path]) -> None:
    client, heartbeat, worker_log = compute
    request_id = f"obs-job-{uuid.uuid4().hex}"
    r = await client.post("/jobs", json={"cls": "BiasFrame", "date": NIGHT.isoformat(),
                                         "chip": "ccd50"}, headers={"X-Request-ID": request_id})
    assert r.status_code == 201, r.text
    ids = [j["id"] for j in r.json()["jobs"]]
    assert ids

    async def finished() -> list[dict[str, Any]] | None:
        jobs = (await client.post("/jobs/lookup", json={"ids": ids})).json()
        return jobs if all(j["status"] in ("done", "failed") for j in jobs) else None
    jobs = await until("the jobs finished", finished, 300)
    assert {j["status"] for j in jobs} == {"done"}, [j["error"] for j in jobs]
    log = (await client.get(f"/jobs/{ids[-1]}/log")).text
    assert f"(request {request_id})" in log.splitlines()[0]  # the submission
    assert f"(request {request_id}): made" in log  # the worker's line
    # the worker's own log and the catalog's (which the worker called) carry it too
    assert logged(worker_log, request_id=request_id, event="job done")
    assert await until("the worker's calls in the catalog's log",
                       lambda: logged(PROCESSES["catalog"].logfile, request_id=request_id))

    url = status_url(heartbeat)
    assert url is not None
    text = (await get(f"{url}/metrics")).text
    assert (sample(text, "awe_compute_job_seconds_count", cls="BiasFrame",
                   outcome="done") or 0) >= 1
    assert sample(text, "awe_heartbeat_timestamp_seconds")
    assert (await get(f"{url}/readyz")).json()["status"] == "ok"
    api = (await client.get("/metrics")).text
    assert (sample(api, "awe_compute_jobs", status="done") or 0) >= len(ids)
    assert sample(api, "awe_compute_jobs", status="ready") is not None  # the queue's depth


# -- liveness and readiness ----------------------------------------------------------------
async def test_readyz_fails_while_the_database_is_away_and_livez_does_not(
        postgres: PostgresServer, catalog_process: str) -> None:
    name = f"awe_federation_away_{uuid.uuid4().hex[:6]}"
    settings = FederationSettings(
        site="obs", database_url=SecretStr(postgres.create_database(name)),
        catalog_url=catalog_process, service_token=SecretStr(ADMIN_TOKEN), follow=False,
        log_level="WARNING")
    superuser = await asyncpg.connect(postgres.url())
    try:
        async with in_process(federation_app(settings)) as client:
            ready = await client.get("/readyz")
            assert ready.status_code == 200 and ready.json()["checks"] == {"database": "ok"}
            assert (await client.get("/health")).json() == ready.json()  # the alias
            await superuser.execute(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS false')
            await superuser.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                                    "WHERE datname = $1", name)

            async def refused() -> httpx.Response | None:
                r = await client.get("/readyz")
                return r if r.status_code == 503 else None
            down = await until("readyz failing", refused)
            assert down.headers["content-type"] == "application/problem+json"
            assert down.json()["checks"].get("database", "").startswith("database:"), \
                down.json()
            assert (await client.get("/livez")).status_code == 200  # alive all the same
            await superuser.execute(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS true')
            assert await until("readyz again", lambda: _status(client, "/readyz", 200))
    finally:
        await superuser.execute(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS true')
        await superuser.close()


async def _status(client: httpx.AsyncClient, path: str, status: int) -> bool:
    return (await client.get(path)).status_code == status


# -- jobs: who may fail a job, and leases renewed while a job runs -------------------------
@pytest.fixture(scope="module")
async def jobs_pool(postgres: PostgresServer) -> AsyncIterator[asyncpg.Pool]:
    pool = await pg.create_pool(postgres.create_database("awe_compute_leases"), 1, 4)
    async with pool.acquire() as conn:
        await pg.apply_migrations(conn, "awe_compute", 7_031_301)
    try:
        yield pool
    finally:
        await pool.close()


async def ready_job(pool: asyncpg.Pool) -> str:
    job_id = uuid.uuid4()
    async with pool.acquire() as conn:
        await conn.execute(
            "INSERT INTO jobs (id, key, cls, chip, night, product, status, submitted_by) "
            "VALUES ($1, $2, 'BiasFrame', 'ccd50', '2011-11-11', gen_random_uuid(), 'ready', "
            "'test')", job_id, f"obs-{job_id}")
    return str(job_id)


async def test_only_the_worker_holding_a_job_may_fail_it(jobs_pool: asyncpg.Pool) -> None:
    job_id = await ready_job(jobs_pool)
    async with jobs_pool.acquire() as conn:
        store = JobStore(conn)
        assert await store.claim(job_id, "host:1", 60) is not None
        assert not await store.fail(job_id, "host:2", "boom", "not mine\n")
        row = await conn.fetchrow("SELECT status, error, worker FROM jobs WHERE id = $1",
                                  uuid.UUID(job_id))
        assert (row["status"], row["error"], row["worker"]) == ("running", None, "host:1")
        assert await store.fail(job_id, "host:1", "boom", "mine\n")
        assert await conn.fetchval("SELECT status FROM jobs WHERE id = $1",
                                   uuid.UUID(job_id)) == "failed"


async def test_a_running_jobs_lease_is_renewed(jobs_pool: asyncpg.Pool) -> None:
    settings = ComputeSettings(lease_seconds=0.9, database_url=SecretStr("postgresql://unused"))
    worker = Worker(settings, jobs_pool, None)  # type: ignore[arg-type]
    job_id = await ready_job(jobs_pool)
    async with jobs_pool.acquire() as conn:
        assert await JobStore(conn).claim(job_id, worker.name, settings.lease_seconds)

    async def lease() -> dt.datetime:
        async with jobs_pool.acquire() as conn:
            value = await conn.fetchval("SELECT lease_until FROM jobs WHERE id = $1",
                                        uuid.UUID(job_id))
        assert isinstance(value, dt.datetime)
        return value

    first = await lease()
    async with worker.leased(job_id):  # a job that runs until the lease has moved twice
        second = await until("a renewal", lambda: _later(lease, first), 60)
        third = await until("another renewal", lambda: _later(lease, second), 60)
    assert first < second < third
    assert worker.renewals._value.get() >= 2  # type: ignore[attr-defined]
    # another worker's renewal is refused, and so is one after the job ended
    async with jobs_pool.acquire() as conn:
        store = JobStore(conn)
        assert not await store.renew(job_id, "elsewhere:1", 60)
        assert await store.fail(job_id, worker.name, "stopped", "")
        assert not await store.renew(job_id, worker.name, 60)


async def _later(read: Callable[[], Awaitable[dt.datetime]],
                 than: dt.datetime) -> dt.datetime | None:
    now = await read()
    return now if now > than else None
