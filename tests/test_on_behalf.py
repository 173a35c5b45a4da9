"""Products made on the submitter's behalf (issue 15): a product the compute service makes
for bob belongs to bob, in the project and at the privilege level he asks for (default 1,
his MyDB); the workers make it with a credential bob delegated (a token of scope ``make``,
which may read, store and register, and nothing else), never as an all-powerful account;
a private product of bob's never serves alice's plan, a shared calibration of his does once
approved (best calibrations are governed).

Real catalog and storage processes, the compute API in process and one worker process."""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import os
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from asgi_lifespan import LifespanManager
from conftest import ADMIN_TOKEN, Users
from pydantic import SecretStr
from test_compute import worker_env

import awecore as awe
from awe_compute.config import ComputeSettings
from awe_compute.main import create_app
from awecore.client import StorageClient
from awecore.ingest import Ingester, expand
from awecore.sim import PRESETS, NightPlan, simulate_night
from awecore.stack import Broker, PostgresServer, ServiceProcess

pytestmark = pytest.mark.integration
NIGHT = dt.date(2006, 6, 16)
CAMERA = dataclasses.replace(PRESETS["tiny"], chips_x=2, chips_y=1, nx=48,
                             ny=64)


@pytest.fixture(scope="module")
def settings(postgres: PostgresServer, broker: Broker, catalog_process: str,
             storage_process: str, tmp_path_factory: pytest.TempPathFactory) -> ComputeSettings:
    folder: Path = tmp_path_factory.mktemp("behalf-night")
    simulate_night(folder, CAMERA, seed=616, date=NIGHT,
                   plan=NightPlan(n_bias=3, n_dome=2, n_twilight=2, science_fields=1,
                                  exposures_per_field=1, standard=False))
    with awe.CatalogClient(catalog_process, ADMIN_TOKEN) as catalog:
        report = Ingester(catalog, StorageClient(storage_process, ADMIN_TOKEN).put).ingest(
            expand([folder]))
    assert not report.failed
    return ComputeSettings(
        site="test", database_url=SecretStr(postgres.create_database("awe_compute_behalf")),
        catalog_url=catalog_process, storage_url=storage_process,
        service_token=SecretStr(ADMIN_TOKEN), kafka_bootstrap_servers=broker.bootstrap_servers,
        lease_seconds=3, reap_seconds=0.5, session_timeout_ms=3000, log_level="WARNING")


@pytest.fixture(scope="module")
async def compute(settings: ComputeSettings,
                  tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[object]:
    """The compute app (its ASGI app) with one worker process beside it."""
    env = worker_env(settings)
    worker = ServiceProcess("behalf-worker", [sys.executable, "-m", "awe_compute.worker"], env,
                            tmp_path_factory.mktemp("behalf-worker") / "worker.log")
    worker.start()
    app = create_app(settings)
    try:
        async with LifespanManager(app, startup_timeout=120, shutdown_timeout=120) as manager:
            yield manager.app
    finally:
        worker.stop()


def as_user(app: object, token: str) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app),  # type: ignore[arg-type]
                             base_url="http://compute", timeout=120,
                             headers={"Authorization": f"Bearer {token}"})


def token_of(client: httpx.AsyncClient) -> str:
    return str(client.headers["Authorization"]).split(" ", 1)[1]


async def made(compute: httpx.AsyncClient, body: dict[str, Any]) -> dict[str, Any]:
    """Submit, then wait until every job has ended (a state, not a time; the deadline only
    guards against a hang); returns the submission, its jobs all done."""
    r = await compute.post("/jobs", json=body)
    assert r.status_code == 201, r.text
    submitted: dict[str, Any] = r.json()
    ids = [j["id"] for j in submitted["jobs"]]
    deadline = time.monotonic() + 300
    while ids:
        jobs = (await compute.post("/jobs/lookup", json={"ids": ids})).json()
        if all(j["status"] in ("done", "failed", "cancelled") for j in jobs):
            assert {j["status"] for j in jobs} == {"done"}, [
                (j["cls"], j["error"]) for j in jobs]
            break
        assert time.monotonic() < deadline, [(j["cls"], j["status"]) for j in jobs]
        await asyncio.sleep(0.3)
    return submitted


def target(chip: str, **extra: Any) -> dict[str, Any]:
    return {"cls": "ReadNoise", "date": NIGHT.isoformat(), "chip": chip, **extra}


async def test_a_product_made_for_bob_is_bobs_alone(compute: object, users: Users,
                                                    admin: httpx.AsyncClient) -> None:
    bob, alice = await users.make("bob"), await users.make("alice")
    name = bob.headers["X-Test-User"]
    async with as_user(compute, token_of(bob)) as jobs:
        submitted = await made(jobs, target("ccd50"))
    assert submitted["jobs"] and all(j["submitted_by"] == name and j["privileges"] == 1
                                     for j in submitted["jobs"])
    assert not any("credential" in j for j in submitted["jobs"])  # never shown
    oid = submitted["target"]
    mine = (await bob.get(f"/objects/{oid}")).json()
    assert (mine["creator"], mine["privileges"]) == (name, 1)  # bob's, in his MyDB
    assert (await alice.get(f"/objects/{oid}")).status_code == 404
    assert (await admin.get(f"/objects/{oid}")).status_code == 200
    # every input made for it is bob's too: no object of the plan belongs to the service
    ups = [j["product"] for j in submitted["jobs"]]
    for up in ups:
        assert (await bob.get(f"/objects/{up}")).json()["creator"] == name
    # the credential bob delegated: a 'make' token of his that expires
    tokens = (await bob.get("/tokens")).json()
    delegated = [t for t in tokens if t["scope"] == "make"]
    assert delegated and all(t["expires"] and t["label"].startswith("compute:")
                             for t in delegated)
    # alice's plan for the same target does not use bob's private product
    async with as_user(compute, token_of(alice)) as jobs:
        r = await jobs.post("/jobs", json={**target("ccd50"), "dry_run": True})
    assert r.status_code == 201, r.text
    assert r.json()["target"] != oid
    assert any(line.startswith("make ReadNoise") for line in r.json()["plan"]), r.json()["plan"]


async def test_a_shared_calibration_serves_the_next_user_once_approved(
        compute: object, users: Users, admin: httpx.AsyncClient) -> None:
    """Shared with the site, bob's calibration is seen by alice but is not her best until
    approved (best calibrations are governed); approved, it serves her plan, not remade."""
    bob, alice = await users.make("bob"), await users.make("alice")
    async with as_user(compute, token_of(bob)) as jobs:
        submitted = await made(jobs, target("ccd51", privileges=3))
    oid = submitted["target"]
    assert (await alice.get(f"/objects/{oid}")).json()["privileges"] == 3
    async with as_user(compute, token_of(alice)) as jobs:
        r = await jobs.post("/jobs", json=target("ccd51", privileges=3, dry_run=True))
    assert r.status_code == 201, r.text
    assert r.json()["target"] != oid  # seen, but not governed: she would make her own
    approved = await admin.patch(f"/objects/{oid}", json={"is_valid": 1, "reason": "checked"})
    assert approved.status_code == 200, approved.text
    async with as_user(compute, token_of(alice)) as jobs:
        r = await jobs.post("/jobs", json=target("ccd51", privileges=3))
    assert r.status_code == 201, r.text
    assert r.json()["jobs"] == [] and r.json()["target"] == oid  # used, not made again


async def test_a_delegated_token_only_makes(compute: object, users: Users) -> None:
    bob = await users.make("bob")
    r = await bob.post("/tokens", json={"label": "by hand", "scope": "make"})
    assert r.status_code == 201, r.text
    make_token = r.json()["token"]
    made_for = await bob.post("/objects", json={"type": "Filter", "attributes": {
        "name": f"behalf-{os.urandom(3).hex()}"}})
    assert made_for.status_code == 201, made_for.text
    oid = made_for.json()["oid"]
    catalog = httpx.AsyncClient(transport=bob._transport, base_url="http://catalog",
                                headers={"Authorization": f"Bearer {make_token}"})
    async with catalog:
        assert (await catalog.get(f"/objects/{oid}")).status_code == 200  # reads
        registered = await catalog.post("/objects", json={"type": "Filter", "attributes": {
            "name": f"behalf-{os.urandom(3).hex()}"}})
        assert registered.status_code == 201, registered.text  # registers
        for method, path, body in (
                ("POST", "/tokens", {"label": "more"}),  # no new tokens
                ("PATCH", f"/objects/{oid}", {"comments": "curated?"})):  # no curation
            refused = await catalog.request(method, path, json=body)
            assert refused.status_code == 403, refused.text
            assert "scope 'make'" in refused.json()["detail"]
    async with as_user(compute, make_token) as jobs:  # no further submissions
        refused = await jobs.post("/jobs", json=target("ccd50"))
    assert refused.status_code == 403, refused.text


async def test_a_project_the_submitter_is_not_in_is_refused(compute: object,
                                                            users: Users) -> None:
    bob = await users.make("bob")
    async with as_user(compute, token_of(bob)) as jobs:
        r = await jobs.post("/jobs", json=target("ccd50", project="not-bobs", privileges=2))
    assert r.status_code == 403, r.text
    assert "not a member of project 'not-bobs'" in r.json()["detail"]
