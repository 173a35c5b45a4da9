"""One policy, everywhere (issue 15): storage, compute, lineage, federation and the
catalogue's smaller answers decide who may see what by ``awecore.visibility``, and what a
caller may not see is "not found", never confirmed.

Two users in different projects, alice and bob; alice keeps a private object (privileges 1)
and shares another (3) that references it.
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import hashlib
import os
import shutil
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import asyncpg
import httpx
import pytest
from asgi_lifespan import LifespanManager
from conftest import ADMIN_TOKEN, Users, service_env
from pydantic import SecretStr
from seed import batch, day

from awe_catalog.config import CatalogSettings
from awe_compute.config import ComputeSettings
from awe_compute.main import create_app as compute_app
from awe_federation.config import FederationSettings
from awe_federation.main import create_app as federation_app
from awe_lineage.config import LineageSettings
from awe_lineage.main import create_app as lineage_app
from awe_storage.config import StorageSettings
from awe_storage.main import create_app as storage_app
from awecore.ingest import read_exposure
from awecore.sim import PRESETS, NightPlan, simulate_night
from awecore.stack import Broker, PostgresServer, ServiceProcess
from awecore.visibility import HIDDEN_OID

pytestmark = pytest.mark.integration


def token(client: httpx.AsyncClient) -> str:
    return str(client.headers["Authorization"]).split(" ", 1)[1]


def name(client: httpx.AsyncClient) -> str:
    return str(client.headers["X-Test-User"])


async def over(app: object, base: str, tokens: dict[str, str]) -> dict[str, httpx.AsyncClient]:
    return {who: httpx.AsyncClient(transport=httpx.ASGITransport(app=app),  # type: ignore[arg-type]
                                   base_url=base, timeout=60,
                                   headers={"Authorization": f"Bearer {t}"})
            for who, t in tokens.items()}


@dataclasses.dataclass
class Pair:
    alice: httpx.AsyncClient
    bob: httpx.AsyncClient
    tag: str


@pytest.fixture
async def pair(users: Users) -> Pair:
    tag = os.urandom(3).hex()
    return Pair(await users.make("alice", project=f"survey-a-{tag}"),
                await users.make("bob", project=f"survey-b-{tag}"), tag)


# -- storage -----------------------------------------------------------------------------

@pytest.fixture(scope="module")
def storage_token(catalog_process: str) -> str:
    admin = httpx.Client(base_url=catalog_process,
                         headers={"Authorization": f"Bearer {ADMIN_TOKEN}"})
    admin.post("/users", json={"name": "priv-storage-svc", "is_service": True})
    return str(admin.post("/tokens", json={"user": "priv-storage-svc"}).json()["token"])


@pytest.fixture
async def storage(catalog_process: str, storage_token: str) -> AsyncIterator[object]:
    root = Path(tempfile.mkdtemp(prefix="awe-priv-storage-"))
    settings = StorageSettings(site="test", backend="local", root=root,
                               catalog_url=catalog_process,
                               service_token=SecretStr(storage_token),
                               log_level="WARNING")
    app = storage_app(settings)
    try:
        async with LifespanManager(app, startup_timeout=120, shutdown_timeout=120) as m:
            yield m.app
    finally:
        shutil.rmtree(root, ignore_errors=True)


async def test_storage_authorises_a_file_by_its_object(pair: Pair, storage: object) -> None:
    c = await over(storage, "http://storage", {"alice": token(pair.alice),
                                                "bob": token(pair.bob), "admin": ADMIN_TOKEN})
    alice, bob = c["alice"], c["bob"]
    folder = f"users/{name(pair.alice)}"
    files = {k: f"{folder}/{k}.fits" for k in ("private", "shared", "making")}
    for k, n in files.items():
        assert (await alice.put(f"/files/{n}", content=k.encode() * 100)).status_code == 201
    await batch(pair.alice, [
        {"type": "BiasFrame", "privileges": 1, "filename": files["private"]},
        {"type": "BiasFrame", "privileges": 3, "filename": files["shared"]}])
    # bob: alice's private file does not exist for him, whatever he asks
    private = files["private"]
    for r in [await bob.get(f"/files/{private}"),
              await bob.get(f"/files/{private}", headers={"Range": "bytes=0-9"}),
              await bob.head(f"/files/{private}"),
              await bob.post(f"/verify/{private}"),
              await bob.delete(f"/files/{private}"),
              await bob.get(f"/files/{files['making']}")]:
        assert r.status_code == 404, (r.request.method, r.text)
    missing = await bob.get(f"/files/{folder}/nothing.fits")
    assert (await bob.get(f"/files/{private}")).json()["detail"] == \
        missing.json()["detail"].replace("nothing.fits", "private.fits")
    # the shared one he reads; alice reads all three (the unregistered one: she wrote it)
    r = await bob.get(f"/files/{files['shared']}", headers={"Range": "bytes=0-5"})
    assert r.status_code == 206 and r.content == b"shared"
    for k, n in files.items():
        r = await alice.get(f"/files/{n}")
        assert r.status_code == 200 and r.content == k.encode() * 100
    assert (await alice.post(f"/verify/{private}")).json()["ok"] is True
    # listings show only what the caller may read
    listed = (await bob.get("/files", params={"prefix": folder + "/"})).json()
    assert [f["name"] for f in listed["files"]] == [files["shared"]]
    listed = (await alice.get("/files", params={"prefix": folder + "/"})).json()
    assert sorted(f["name"] for f in listed["files"]) == sorted(files.values())
    listed = (await c["admin"].get("/files", params={"prefix": folder + "/"})).json()
    assert len(listed["files"]) == 3
    for client in c.values():
        await client.aclose()


async def test_raw_names_cannot_be_squatted(pair: Pair, storage: object,
                                            tmp_path: Path) -> None:
    c = await over(storage, "http://storage", {"bob": token(pair.bob), "admin": ADMIN_TOKEN})
    bob, admin = c["bob"], c["admin"]
    camera = dataclasses.replace(PRESETS["tiny"], chips_x=1, chips_y=1, nx=32, ny=32)
    night = dt.date(1980, 1, 1) + dt.timedelta(days=int(pair.tag, 16) % 10_000)
    simulate_night(tmp_path, camera, seed=3, date=night,
                   plan=NightPlan(n_bias=1, n_dome=0, n_twilight=0, science_fields=0,
                                  exposures_per_field=1, standard=False))
    raw = sorted(await asyncio.to_thread(lambda: list(tmp_path.rglob("*.fits"))))[0]
    data = await asyncio.to_thread(raw.read_bytes)
    chip_name = read_exposure(data, raw.name).parts[0].name
    assert chip_name.startswith("raw/")
    # a user can neither PUT under raw/ nor ingest
    r = await bob.put(f"/files/{chip_name}", content=b"squatter's bytes")
    assert r.status_code == 403 and "raw" in r.json()["detail"]
    assert (await admin.head(f"/files/{chip_name}")).status_code == 404
    r = await bob.post("/ingest", params={"filename": raw.name}, content=data)
    assert r.status_code == 403 and r.json()["error"] == "forbidden"
    assert (await admin.head(f"/files/{chip_name}")).status_code == 404
    # bytes already under the raw name (squatted before the rule): ingest refuses them
    assert (await admin.put(f"/files/{chip_name}", content=b"old squat")).status_code == 201
    r = await admin.post("/ingest", params={"filename": raw.name}, content=data)
    assert r.status_code == 409, r.text
    assert hashlib.sha256(b"old squat").hexdigest() in r.json()["detail"]
    spec = {"cls": "DataObject", "where": {"node": "compare", "op": "eq",
                                           "path": ["filename"], "value": chip_name}}
    async with httpx.AsyncClient(transport=pair.alice._transport,
                                 base_url="http://catalog",
                                 headers={"Authorization": f"Bearer {ADMIN_TOKEN}"}) as cat:
        assert (await cat.post("/query/count", json=spec)).json()["count"] == 0
    for client in c.values():
        await client.aclose()


# -- compute -----------------------------------------------------------------------------

@pytest.fixture(scope="module")
async def compute(postgres: PostgresServer, broker: Broker, catalog_process: str,
                  storage_process: str) -> AsyncIterator[tuple[object, str]]:
    url = postgres.create_database("awe_compute_privileges")
    settings = ComputeSettings(
        site="test", database_url=SecretStr(url), catalog_url=catalog_process,
        storage_url=storage_process, service_token=SecretStr(ADMIN_TOKEN),
        kafka_bootstrap_servers=broker.bootstrap_servers, log_level="WARNING")
    app = compute_app(settings)
    async with LifespanManager(app, startup_timeout=120, shutdown_timeout=120) as m:
        yield m.app, url


async def job_of(database: str, owner: str, status: str) -> str:
    """A job submitted by ``owner`` as the service's table keeps one (no worker runs here:
    it stays as it is until the test acts on it)."""
    job_id = str(uuid.uuid4())
    conn = await asyncpg.connect(database)
    try:
        await conn.execute(
            "INSERT INTO jobs (id, key, cls, chip, night, product, status, submitted_by, log, "
            "error) VALUES ($1, $2, 'BiasFrame', 'ccd1', '2009-09-09', $3, $4, $5, "
            "'alice was here', $6)", uuid.UUID(job_id), f"k-{job_id}", uuid.uuid4(), status,
            owner, "boom" if status == "failed" else None)
    finally:
        await conn.close()
    return job_id


async def test_jobs_belong_to_who_submitted_them(pair: Pair,
                                                 compute: tuple[object, str]) -> None:
    app, database = compute
    c = await over(app, "http://compute", {"alice": token(pair.alice), "bob": token(pair.bob),
                                           "admin": ADMIN_TOKEN})
    alice, bob, admin = c["alice"], c["bob"], c["admin"]
    waiting = await job_of(database, name(pair.alice), "ready")
    failed = await job_of(database, name(pair.alice), "failed")
    mine = await job_of(database, name(pair.bob), "ready")
    for job in (waiting, failed):
        for r in [await bob.get(f"/jobs/{job}"), await bob.get(f"/jobs/{job[:13]}"),
                  await bob.get(f"/jobs/{job}/log"),
                  await bob.post(f"/jobs/{job}/cancel"), await bob.post(f"/jobs/{job}/retry"),
                  await bob.post("/jobs/lookup", json={"ids": [job]})]:
            assert r.status_code == 404, (r.request.url, r.text)
            assert "alice was here" not in r.text
    listed = {j["id"] for j in (await bob.get("/jobs", params={"limit": 1000})).json()["jobs"]}
    assert mine in listed and waiting not in listed and failed not in listed
    assert (await bob.get(f"/jobs/{mine}")).status_code == 200
    # nothing changed for alice's jobs; she and an admin see and act on them
    r = await alice.get(f"/jobs/{waiting}")
    assert r.status_code == 200 and r.json()["status"] == "ready"
    # users are name@site across sites: the listing shows the submitter whole
    assert r.json()["submitter"] == f"{name(pair.alice)}@test"
    assert (await alice.get(f"/jobs/{waiting}/log")).text.startswith("alice was here")
    listed = {j["id"] for j in (await alice.get("/jobs")).json()["jobs"]}
    assert {waiting, failed} <= listed and mine not in listed
    r = await alice.post(f"/jobs/{waiting}/cancel")
    assert r.status_code == 200 and r.json()["status"] == "cancelled"
    r = await admin.post(f"/jobs/{failed}/retry")
    assert r.status_code == 200 and r.json()["status"] in ("ready", "running", "done")
    listed = {j["id"] for j in (await admin.get("/jobs", params={"limit": 1000})).json()["jobs"]}
    assert {waiting, failed, mine} <= listed
    for client in c.values():
        await client.aclose()


# -- lineage -----------------------------------------------------------------------------

@pytest.fixture(scope="module")
def relay(catalog_settings: CatalogSettings,
          tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    proc = ServiceProcess("relay", [sys.executable, "-m", "awe_catalog.relay"],
                          service_env(catalog_settings),
                          tmp_path_factory.mktemp("relay") / "relay.log")
    proc.start()
    try:
        yield
    finally:
        proc.stop()


@pytest.fixture(scope="module")
def lineage_token(catalog_process: str) -> str:
    admin = httpx.Client(base_url=catalog_process,
                         headers={"Authorization": f"Bearer {ADMIN_TOKEN}"})
    admin.post("/users", json={"name": "priv-lineage-svc", "is_service": True})
    return str(admin.post("/tokens", json={"user": "priv-lineage-svc"}).json()["token"])


@pytest.fixture(scope="module")
async def lineage(postgres: PostgresServer, broker: Broker, catalog_process: str,
                  relay: None, lineage_token: str) -> AsyncIterator[object]:
    svc = lineage_token
    settings = LineageSettings(
        site="test", database_url=SecretStr(postgres.create_database("awe_lineage_priv")),
        catalog_url=catalog_process, service_token=SecretStr(svc),
        kafka_bootstrap_servers=broker.bootstrap_servers, catch_up_seconds=3600,
        session_timeout_ms=3000, log_level="WARNING")
    app = lineage_app(settings)
    async with LifespanManager(app, startup_timeout=120, shutdown_timeout=120) as m:
        yield m.app


async def caught_up(lineage: httpx.AsyncClient, catalog: httpx.AsyncClient) -> None:
    target = (await catalog.get("/changes", params={"limit": 1})).json()["last_sequence"]
    deadline = time.monotonic() + 60
    while (await lineage.get("/health")).json()["applied_sequence"] < target:
        assert time.monotonic() < deadline, "lineage did not catch up"
        await asyncio.sleep(0.2)


async def test_lineage_answers_only_over_what_the_caller_sees(
        pair: Pair, admin: httpx.AsyncClient, lineage: object) -> None:
    (chip,) = await batch(pair.alice, [{"type": "Chip", "privileges": 3,
                                        "attributes": {"name": f"priv-{pair.tag}"}}])
    (raw,) = await batch(pair.alice, [{"type": "RawBiasFrame", "privileges": 1,
                                       "refs": {"chip": chip},
                                       "attributes": {"date_obs": day(0)}}])
    (bias,) = await batch(pair.alice, [{
        "type": "BiasFrame", "privileges": 3, "timestamp_start": day(-1),
        "timestamp_end": day(1), "refs": {"chip": chip, "raw_bias_frames": [raw]}}])
    c = await over(lineage, "http://lineage", {"alice": token(pair.alice),
                                                "bob": token(pair.bob)})
    await caught_up(c["alice"], admin)
    alice, bob = c["alice"], c["bob"]
    for src, dst in ((bias, raw), (raw, bias)):
        r = await bob.get("/lineage/path", params={"src": src, "dst": dst})
        assert r.status_code == 404 and raw not in r.json()["detail"].replace(
            f"between {src} and {dst}", ""), r.text
        assert (await alice.get("/lineage/path", params={"src": src, "dst": dst})
                ).status_code == 200
    ghost = str(uuid.uuid4())
    r = await bob.get("/lineage/path", params={"src": bias, "dst": ghost})
    assert r.status_code == 404  # the same answer as for an object that does not exist
    # staleness of the shared bias: the private raw frame is neither named nor walked
    stale = await bob.get(f"/lineage/{bias}/staleness")
    assert stale.status_code == 200 and raw not in stale.text and "RawBiasFrame" not in stale.text
    hidden = [e for e in stale.json()["edges"] if e["name"] == "raw_bias_frames"]
    assert [(e["input"], e["input_type"]) for e in hidden] == [(HIDDEN_OID, "hidden")]
    mine = (await alice.get(f"/lineage/{bias}/staleness")).json()
    assert raw in {e["input"] for e in mine["edges"]}
    for client in c.values():
        await client.aclose()


# -- the catalogue's smaller leaks ----------------------------------------------------------

async def test_catalogue_digest_conflicts_and_references(pair: Pair) -> None:
    alice, bob = pair.alice, pair.bob
    before = (await bob.get("/digest", params={"min_privileges": 1})).json()["objects"]
    (inst,) = await batch(alice, [{"type": "Instrument", "privileges": 1,
                                   "attributes": {"name": f"hidden-{pair.tag}"}}])
    (chip,) = await batch(alice, [{"type": "Chip", "privileges": 3,
                                   "attributes": {"name": f"shown-{pair.tag}"},
                                   "refs": {"instrument": inst}}])
    after = (await bob.get("/digest", params={"min_privileges": 1})).json()["objects"]
    assert after == before + 1  # the shared chip; not alice's private instrument
    mine = (await alice.get("/digest", params={"min_privileges": 1})).json()["objects"]
    assert mine >= after + 1
    # a 409 on alice's private oid reads as for any oid that is taken, naming nothing
    (own,) = await batch(bob, [{"type": "Filter", "privileges": 1}])
    hers = await bob.post("/objects", json={"type": "Filter", "oid": inst})
    his = await bob.post("/objects", json={"type": "Filter", "oid": own})
    assert hers.status_code == his.status_code == 409
    assert hers.json()["detail"] == his.json()["detail"]
    assert inst not in hers.text and "Instrument" not in hers.text
    # the shared chip's reference to the private instrument is hidden from bob
    got = (await bob.get(f"/objects/{chip}")).json()
    assert got["refs"]["instrument"] == HIDDEN_OID
    many = (await bob.post("/objects/get", json={"oids": [chip]})).json()["objects"]
    assert many[0]["refs"]["instrument"] == HIDDEN_OID
    spec = {"cls": "Chip", "where": {"node": "compare", "op": "eq", "path": ["name"],
                                     "value": f"shown-{pair.tag}"}}
    page = (await bob.post("/query", json={"query": spec})).json()
    assert [o["refs"]["instrument"] for o in page["objects"]] == [HIDDEN_OID]
    assert (await alice.get(f"/objects/{chip}")).json()["refs"]["instrument"] == inst


# -- federation --------------------------------------------------------------------------

async def test_catch_up_is_for_admins(pair: Pair, postgres: PostgresServer,
                                      catalog_process: str) -> None:
    settings = FederationSettings(
        site="test", database_url=SecretStr(postgres.create_database(
            f"awe_fed_priv_{pair.tag}")), catalog_url=catalog_process,
        service_token=SecretStr(ADMIN_TOKEN), peers=[], log_level="WARNING")
    app = federation_app(settings)
    async with LifespanManager(app, startup_timeout=120, shutdown_timeout=120) as m:
        c = await over(m.app, "http://federation", {"bob": token(pair.bob),
                                                    "admin": ADMIN_TOKEN})
        r = await c["bob"].post("/federation/catch-up")
        assert r.status_code == 403 and r.headers["content-type"] == \
            "application/problem+json" and r.json()["error"] == "forbidden"
        r = await c["admin"].post("/federation/catch-up")
        assert r.status_code == 200 and r.json() == {}
        for client in c.values():
            await client.aclose()
