"""The ``awe`` command's conventions, run as a user runs it (a subprocess) against the real
catalog, storage and compute processes: formats that parse, full ids and unique prefixes,
jobs cancelled and retried, tokens listed and revoked, exit codes, ``.awe`` found upwards."""

from __future__ import annotations

import csv
import dataclasses
import datetime as dt
import io
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from importlib.metadata import version
from pathlib import Path

import asyncpg
import httpx
import pytest
from conftest import ADMIN_TOKEN, CLI_ENV, PROCESSES, start_service
from seed import seed
from typer.testing import CliRunner

import awecore as awe
from awecore.cli import app
from awecore.cli._lineage import node_rows
from awecore.client import ComputeClient, StorageClient
from awecore.ingest import Ingester, expand
from awecore.jobs import JobOut, TargetIn
from awecore.lineage import Edge, Graph, Node
from awecore.sim import PRESETS, NightPlan, simulate_night
from awecore.stack import Broker, PostgresServer, ServiceProcess

pytestmark = pytest.mark.integration
NIGHT = dt.date(2008, 8, 8)
CAMERA = dataclasses.replace(PRESETS["tiny"], chips_x=2, chips_y=1, nx=64, ny=96)
#: its own site, so its jobs topic and worker group are its own (test_compute runs "test")
SITE = "clitest"


def awe_cli(*args: str, token: str = ADMIN_TOKEN, cwd: Path | None = None,
            **urls: str) -> subprocess.CompletedProcess[str]:
    """``awe ARGS`` in a clean environment: the services' URLs (catalog=..., compute=...)
    and a token, nothing else."""
    env = {**CLI_ENV, "AWE_TOKEN": token, "COLUMNS": "300",
           **{f"AWE_{k.upper()}_URL": v for k, v in urls.items()}}
    return subprocess.run([sys.executable, "-m", "awecore.cli", *args], capture_output=True,
                          text=True, env=env, timeout=120, check=False, cwd=cwd)


def ok(r: subprocess.CompletedProcess[str]) -> str:
    assert r.returncode == 0, f"exit {r.returncode}\n{r.stdout}\n{r.stderr}"
    return r.stdout


def failed(r: subprocess.CompletedProcess[str], error: str, text: str) -> None:
    """A refused request: exit code 1 and one line naming the error and what to fix."""
    assert r.returncode == 1, f"exit {r.returncode}\n{r.stdout}\n{r.stderr}"
    assert error in r.stderr and text in r.stderr, r.stderr
    assert "Traceback" not in r.stderr


def rows_of_csv(text: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(text)))


# -- conventions that need no service ----------------------------------------------------
def test_version_completion_and_usage_errors() -> None:
    shown = CliRunner().invoke(app, ["--version"])
    assert shown.exit_code == 0 and shown.output.strip() == f"awe {version('awecore')}"
    # completion is for the shell it runs from; typer's switch names one where none is
    for shell, mark in (("bash", "complete -o default -F _awe_completion awe"),
                        ("zsh", "compdef _awe_completion awe")):
        r = subprocess.run(
            [sys.executable, "-m", "awecore.cli", "--show-completion", shell],
            capture_output=True, text=True, timeout=60, check=False,
            env={**CLI_ENV, "_TYPER_COMPLETE_TEST_DISABLE_SHELL_DETECTION": "1"})
        assert r.returncode == 0 and "_AWE_COMPLETE" in r.stdout and mark in r.stdout, r
    # a wrong command line is typer's: exit code 2
    assert awe_cli("no-such-command").returncode == 2
    assert awe_cli("jobs", "--limit", "0", compute="http://127.0.0.1:9").returncode == 2
    assert awe_cli("query", "Chip", "--format", "yaml").returncode == 2
    # a service that cannot be reached is a failure, not a usage error
    failed(awe_cli("whoami", catalog="http://127.0.0.1:9"), "ServiceUnavailable",
           "cannot reach the catalog")
    failed(awe_cli("jobs"), "ServiceUnavailable", "no compute address")


def test_lineage_as_a_listing() -> None:
    now = dt.datetime.now(dt.UTC)
    node = {"site": "a", "creation_date": now, "creator": "me", "is_valid": 1}
    graph = Graph(root="r", direction="upstream", edges=[
        Edge(src="r", name="flat", dst="f"), Edge(src="r", name="bias", dst="b"),
        Edge(src="f", name="bias", dst="b")],
        nodes=[Node(oid=o, type=t, **node) for o, t in (
            ("b", "BiasFrame"), ("f", "MasterFlatFrame"), ("r", "ReducedScienceFrame"))])
    rows = node_rows(graph)
    assert rows[0]["oid"] == "r"  # the root first
    made = {r["oid"]: r["made_from"] for r in rows}
    assert made["r"] == [{"name": "flat", "oid": "f"}, {"name": "bias", "oid": "b"}]
    assert made["b"] == []


# -- the catalog: query, curate, tokens, .awe ---------------------------------------------
async def test_query_formats_columns_and_curate(admin: httpx.AsyncClient,
                                                catalog_process: str) -> None:
    s = await seed(admin)
    expr = f"ReducedScienceFrame.chip.name == 'ccd53-{s.tag}'"
    default = ["oid", "type", "chip.name", "filter.name", "date_obs", "is_valid",
               "quality_flags", "creator", "creation_date"]
    got = json.loads(ok(awe_cli("query", expr, "--format", "json", catalog=catalog_process)))
    assert len(got) == 6 and list(got[0]) == default
    assert {g["oid"] for g in got} == set(s.reduced[:6])  # full oids
    assert {g["chip.name"] for g in got} == {f"ccd53-{s.tag}"}
    assert dt.datetime.fromisoformat(got[0]["creation_date"]).tzinfo is not None
    table = ok(awe_cli("query", expr, "--limit", "2", catalog=catalog_process))
    assert "chip.name" in table and "imstat" not in table and s.reduced[0] in table
    rows = rows_of_csv(ok(awe_cli("query", expr, "--columns", "oid,imstat.stdev,chip.name",
                                  "--format", "csv", catalog=catalog_process)))
    assert len(rows) == 6 and list(rows[0]) == ["oid", "imstat.stdev", "chip.name"]
    assert {float(r["imstat.stdev"]) for r in rows} == {10.0, 11.0, 12.0}
    everything = json.loads(ok(awe_cli("query", expr, "--columns", "all", "--limit", "1",
                                       "--format", "json", catalog=catalog_process)))
    assert {"imstat.stdev", "flat", "filename"} <= set(everything[0])
    failed(awe_cli("query", expr, "--columns", "oid,chip.nme", catalog=catalog_process),
           "InvalidQuery", "Chip has no attribute 'nme'")

    # curate by a unique start of the oid; a start shared by two oids is refused
    oid = s.reduced[0]
    r = awe_cli("curate", oid[:-6], "--invalid", "--comment", "satellite trail [1:24]",
                "--format", "json", catalog=catalog_process)
    (curated,) = json.loads(ok(r))
    assert curated["oid"] == oid and curated["is_valid"] == 0
    with awe.CatalogClient(catalog_process, ADMIN_TOKEN) as catalog:
        record = catalog.get(oid).record
        assert record is not None and record.is_valid == 0
        assert record.comments == "satellite trail [1:24]"
    # made in one request, they share their time: the start of their (UUIDv7) oids
    a, b = s.reduced[0], s.reduced[1]
    shared = a[:next(i for i, (x, y) in enumerate(zip(a, b, strict=True)) if x != y)]
    assert 0 < len(shared) < 36
    failed(awe_cli("curate", shared, "--valid", catalog=catalog_process), "InvalidRequest",
           "starts more than one oid")
    failed(awe_cli("curate", str(uuid.uuid4()), "--valid", catalog=catalog_process),
           "NotFound", "")
    failed(awe_cli("curate", "not-an-oid", "--valid", catalog=catalog_process), "NotFound",
           "an oid is a UUID")
    assert awe_cli("curate", oid, catalog=catalog_process).returncode == 2  # nothing to do
    r = awe_cli("curate", oid, "--privileges", "9", catalog=catalog_process)
    assert r.returncode == 2


def test_tokens_listed_and_revoked(catalog_process: str) -> None:
    admin = httpx.Client(base_url=catalog_process,
                         headers={"Authorization": f"Bearer {ADMIN_TOKEN}"})
    name = f"tok-{os.urandom(3).hex()}"
    assert admin.post("/users", json={"name": name}).status_code == 201
    first = ok(awe_cli("token", "create", "--user", name, "--label", "laptop",
                       catalog=catalog_process)).strip()
    second = ok(awe_cli("token", "create", "--user", name, "--label", "cluster",
                        catalog=catalog_process)).strip()
    assert first.startswith("awe_") and second.startswith("awe_")

    out = ok(awe_cli("token", "list", "--format", "json", token=first,
                     catalog=catalog_process))
    assert first not in out and second not in out  # never the secret
    mine = json.loads(out)
    assert [t["label"] for t in mine] == ["laptop", "cluster"]
    assert set(mine[0]) == {"id", "user", "label", "created", "last_used", "revoked",
                            "revoked_at", "scope", "expires"}
    by_label = {t["label"]: t for t in mine}
    assert by_label["laptop"]["last_used"] is not None  # this very listing used it
    assert by_label["cluster"]["last_used"] is None
    rows = rows_of_csv(ok(awe_cli("token", "list", "--user", name, "--format", "csv",
                                  catalog=catalog_process)))
    assert [r["id"] for r in rows] == [t["id"] for t in mine]  # an admin lists theirs
    table = ok(awe_cli("token", "list", token=first, catalog=catalog_process))
    assert by_label["cluster"]["id"] in table
    failed(awe_cli("token", "list", "--user", "admin", token=first, catalog=catalog_process),
           "Forbidden", "only an admin")

    # revoked by a unique start of its id: refused from the next request on
    doomed = by_label["cluster"]["id"]
    assert httpx.get(f"{catalog_process}/whoami",
                     headers={"Authorization": f"Bearer {second}"}).status_code == 200
    assert doomed[:8] in ok(awe_cli("token", "revoke", doomed[:8], token=first,
                                    catalog=catalog_process))
    r = httpx.get(f"{catalog_process}/whoami", headers={"Authorization": f"Bearer {second}"})
    assert r.status_code == 401 and r.json()["error"] == "unauthorized"
    failed(awe_cli("whoami", token=second, catalog=catalog_process), "Unauthorized",
           "revoked")
    failed(awe_cli("token", "revoke", doomed, token=first, catalog=catalog_process),
           "Conflict", "revoked already")
    failed(awe_cli("token", "revoke", str(uuid.uuid4()), token=first,
                   catalog=catalog_process), "NotFound", "no token")
    # another user's token is not theirs to revoke (nor to find)
    admins = json.loads(ok(awe_cli("token", "list", "--format", "json",
                                   catalog=catalog_process)))
    failed(awe_cli("token", "revoke", admins[0]["id"], token=first, catalog=catalog_process),
           "NotFound", f"of {name}")
    listed = json.loads(ok(awe_cli("token", "list", "--format", "json", token=first,
                                   catalog=catalog_process)))
    assert {t["label"]: t["revoked"] for t in listed} == {"laptop": False, "cluster": True}
    admin.close()


def test_dot_awe_found_from_a_subfolder(catalog_process: str, tmp_path: Path) -> None:
    project, home = tmp_path / "project", tmp_path / "home"
    (project / ".awe").mkdir(parents=True)
    home.mkdir()
    (project / ".awe" / "awe.env").write_text(
        f"AWE_CATALOG_URL={catalog_process}\nAWE_TOKEN={ADMIN_TOKEN}\n")
    deep = project / "notebooks" / "2008"
    deep.mkdir(parents=True)
    env = {"PATH": CLI_ENV["PATH"], "HOME": str(home)}  # no AWE_STATE_DIR: look upwards

    def run(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, *args], capture_output=True, text=True,
                              env=env, timeout=60, check=False, cwd=cwd)

    r = run(deep, "-m", "awecore.cli", "whoami")
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["name"] == "admin"
    r = run(deep, "-c", "import awecore as awe; print(awe.connect().whoami()['name'])")
    assert r.returncode == 0 and r.stdout.strip() == "admin", r.stderr
    # where no folder above has one, there is nothing to connect to
    r = run(home, "-m", "awecore.cli", "whoami")
    assert r.returncode == 1 and "no catalog address" in r.stderr


# -- the compute service: jobs by prefix, cancelled, retried ------------------------------
@pytest.fixture(scope="module")
def compute_env(postgres: PostgresServer, broker: Broker, catalog_process: str,
                storage_process: str, tmp_path_factory: pytest.TempPathFactory,
                ) -> dict[str, str]:
    """A night of raw frames in the catalogue, and the environment of a compute service
    of its own (its own database and site)."""
    folder = tmp_path_factory.mktemp("cli-night")
    simulate_night(folder, CAMERA, seed=8, date=NIGHT,
                   plan=NightPlan(n_bias=3, n_dome=2, n_twilight=2, science_fields=1,
                                  exposures_per_field=1, standard=False))
    with awe.CatalogClient(catalog_process, ADMIN_TOKEN) as catalog:
        report = Ingester(catalog, StorageClient(storage_process, ADMIN_TOKEN).put).ingest(
            expand([folder]))
    assert not report.failed
    return {**os.environ, "AWE_SITE": SITE,
            "AWE_COMPUTE_DATABASE_URL": postgres.create_database("awe_compute_cli"),
            "AWE_COMPUTE_CATALOG_URL": catalog_process,
            "AWE_COMPUTE_STORAGE_URL": storage_process,
            "AWE_COMPUTE_SERVICE_TOKEN": ADMIN_TOKEN,
            "AWE_COMPUTE_KAFKA_BOOTSTRAP_SERVERS": broker.bootstrap_servers,
            "AWE_COMPUTE_LEASE_SECONDS": "60", "AWE_COMPUTE_REAP_SECONDS": "0.5",
            "AWE_COMPUTE_SESSION_TIMEOUT_MS": "3000", "AWE_COMPUTE_LOG_LEVEL": "WARNING"}


@pytest.fixture(scope="module")
def compute(compute_env: dict[str, str]) -> Iterator[ComputeClient]:
    """The compute API as a process, with no worker yet: submitted jobs stay put."""
    proc, url = start_service("compute-cli", "awe_compute.main:create_app", compute_env,
                              Path(tempfile.mkdtemp(prefix="awe-cli-compute-")))
    client = ComputeClient(url, ADMIN_TOKEN)
    try:
        yield client
    finally:
        client.close()
        proc.stop()


def until(compute: ComputeClient, job_id: str, done: Callable[[JobOut], bool], what: str,
          seconds: float = 180) -> JobOut:
    """The job once it is in the state ``done`` describes (workers change states
    asynchronously); the deadline only guards against a hang."""
    deadline = time.monotonic() + seconds
    while True:
        job = compute.job(job_id)
        if done(job):
            return job
        if time.monotonic() > deadline:
            raise AssertionError(f"job {job_id} not {what} in {seconds} s: {job}")
        time.sleep(0.3)


def submit(compute: ComputeClient, cls: str, chip: str, filter: str | None = None) -> list[JobOut]:
    got = compute.submit(TargetIn(cls=cls, date=NIGHT, chip=chip, filter=filter))
    assert got.jobs, got.plan
    return got.jobs


async def test_jobs_listed_by_prefix_cancelled_and_retried(
        compute: ComputeClient, compute_env: dict[str, str]) -> None:
    jobs = {j.cls: j for j in submit(compute, "ColdPixelMap", "ccd50", "841")}
    url = compute.url
    listed = json.loads(ok(awe_cli("jobs", "--format", "json", compute=url)))
    assert {j.id for j in jobs.values()} <= {j["id"] for j in listed}  # full ids
    assert {"id", "cls", "status", "product", "deps", "created"} <= set(listed[0])
    rows = rows_of_csv(ok(awe_cli("jobs", "--status", "waiting", "--format", "csv",
                                  compute=url)))
    assert rows and {r["status"] for r in rows} == {"waiting"}
    assert json.loads(rows[0]["deps"])  # a list, JSON in its cell
    table = ok(awe_cli("jobs", compute=url))
    assert jobs["DomeFlatFrame"].id in table  # shown in full, so it can be typed back

    # a unique start of an id works wherever an id is taken; a shared start is refused
    flat, cold = jobs["DomeFlatFrame"], jobs["ColdPixelMap"]
    assert "[" not in ok(awe_cli("jobs", "log", flat.id[:8], compute=url))
    ok(awe_cli("jobs", "--log", flat.id[:8], compute=url))
    twins = [f"abcdef{n}0-0000-4000-8000-000000000000" for n in (1, 2)]
    conn = await asyncpg.connect(compute_env["AWE_COMPUTE_DATABASE_URL"])
    try:
        for twin in twins:  # two finished jobs whose ids start alike
            await conn.execute(
                "INSERT INTO jobs (id, key, cls, chip, night, product, status, submitted_by) "
                "VALUES ($1, $2, 'BiasFrame', 'ccd50', $3, $1, 'done', 'admin')",
                uuid.UUID(twin), f"cli-test|{twin}", NIGHT)
    finally:
        await conn.close()
    failed(awe_cli("jobs", "log", "abcdef", compute=url), "InvalidRequest",
           "starts more than one job id")
    ok(awe_cli("jobs", "log", "abcdef1", compute=url))
    failed(awe_cli("jobs", "cancel", str(uuid.uuid4()), compute=url), "NotFound", "no job")
    failed(awe_cli("jobs", "cancel", "nonsense", compute=url), "NotFound", "no job")

    # cancelled: it and what waits for it; a finished job cannot be
    (got,) = json.loads(ok(awe_cli("jobs", "cancel", flat.id[:10], "--format", "json",
                                   compute=url)))
    assert got["id"] == flat.id and got["status"] == "cancelled"
    assert got["error"] == "cancelled by admin"
    after = compute.job(cold.id)
    assert after.status == "cancelled" and after.error == f"an input was cancelled: job {flat.id}"
    failed(awe_cli("jobs", "cancel", flat.id, compute=url), "Conflict", "is cancelled")
    failed(awe_cli("jobs", "cancel", twins[0], compute=url), "Conflict", "is done")
    failed(awe_cli("jobs", "retry", twins[0], compute=url), "Conflict", "is done")

    # retried: back to waiting for its inputs, with what was cancelled because of it
    (got,) = json.loads(ok(awe_cli("jobs", "retry", flat.id[:10], "--format", "json",
                                   compute=url)))
    assert got["status"] == "waiting" and got["error"] is None
    assert compute.job(cold.id).status == "waiting"
    failed(awe_cli("jobs", "retry", flat.id, compute=url), "Conflict", "is waiting")

    # cancelling the jobs that wait for nothing cancels them all; a job whose input was
    # cancelled is retried through that input
    for job in jobs.values():
        if not job.deps:
            compute.cancel(job.id)
    assert {compute.job(j.id).status for j in jobs.values()} == {"cancelled"}
    failed(awe_cli("jobs", "retry", cold.id, compute=url), "Conflict", "retry that one first")


def test_a_running_job_cancelled_refuses_its_workers_result(
        compute: ComputeClient, compute_env: dict[str, str], tmp_path: Path) -> None:
    """A worker is held mid-job (by a storage that does not answer) while its job is
    cancelled; when it finishes, its result is refused and the job stays cancelled, and
    nothing that waited for it runs. Retried, the job and what waits for it are made."""
    storage = PROCESSES["storage"]
    assert storage.pid is not None
    worker = ServiceProcess("cli-worker", [sys.executable, "-m", "awe_compute.worker"],
                            compute_env, tmp_path / "worker.log")
    url = compute.url
    os.kill(storage.pid, signal.SIGSTOP)
    try:
        jobs = submit(compute, "HotPixelMap", "ccd51")
        worker.start()
        try:
            running = next(until(compute, j.id, lambda j: j.status == "running", "claimed")
                           for j in jobs if not j.deps)
        except AssertionError as exc:
            raise AssertionError(f"{exc}\n{worker.log_tail()}") from None
        (got,) = json.loads(ok(awe_cli("jobs", "cancel", running.id[:8], "--format", "json",
                                       compute=url)))
        assert got["status"] == "cancelled"
    finally:
        os.kill(storage.pid, signal.SIGCONT)
    try:
        waited = [j for j in jobs if running.id in j.deps]
        assert waited and all(compute.job(j.id).status == "cancelled" for j in waited)
        deadline = time.monotonic() + 180
        while "refused: the job was cancelled" not in compute.log(running.id):
            assert time.monotonic() < deadline, worker.log_tail()
            time.sleep(0.3)
        assert compute.job(running.id).status == "cancelled"
        assert all(compute.job(j.id).attempts == 0 for j in waited)  # never run

        ok(awe_cli("jobs", "retry", running.id, compute=url))
        for job in jobs:
            made = until(compute, job.id, lambda j: j.status in ("done", "failed"),
                         "finished")
            assert made.status == "done", (made.cls, made.error, compute.log(job.id))
        # the refused try had registered the product: the retry used it, under its oid
        assert "registered by an earlier try" in compute.log(running.id)
    finally:
        worker.stop()


def test_verify_lists_its_mismatches_for_programs(compute_env: dict[str, str],
                                                  catalog_process: str,
                                                  storage_process: str) -> None:
    """With json or csv, stdout holds the listing alone (progress and summary on stderr)."""
    where = ("(RawFrame.date_obs >= '2008-08-08T00:00:00') & "
             "(RawFrame.date_obs < '2008-08-10T00:00:00')")
    urls = {"catalog": catalog_process, "storage": storage_process}
    r = awe_cli("verify", "--class", "RawFrame", "--where", where, "--format", "json", **urls)
    assert json.loads(ok(r)) == []
    checked = re.search(r"(\d+) RawFrame objects", r.stderr)
    assert checked and int(checked.group(1)) > 0 and "all good" in r.stderr, r.stderr
    r = awe_cli("verify", "--class", "RawFrame", "--where", where, "--limit", "2", "--format",
                "csv", **urls)
    assert ok(r).splitlines() == ["oid,type,filename,problem,expected,actual"]
