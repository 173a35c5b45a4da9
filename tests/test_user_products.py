"""Users' own products: a class and its recipe from a package that is not awecore (the example
``awe_skyback``), registered with the catalogue through the API, planned and made through the
compute service by its workers, stored, checked against the simulator's truth, with lineage
down to the raw frame; and the rules of class registration (versions, clashes, who may)."""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import io
import json
import os
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
from asgi_lifespan import LifespanManager
from astropy.io import fits
from conftest import ADMIN_TOKEN, CLI_ENV, start_service
from pydantic import SecretStr

import awecore as awe
from awe_compute.config import ComputeSettings
from awe_compute.main import create_app
from awe_federation.config import FederationSettings, PeerSite
from awe_federation.main import create_app as create_federation_app
from awe_lineage.config import LineageSettings
from awe_lineage.main import create_app as create_lineage_app
from awecore.client import StorageClient
from awecore.ingest import Ingester, expand
from awecore.query import Compare, QuerySpec
from awecore.sim import PRESETS, NightPlan, simulate_night
from awecore.stack import Broker, PostgresServer, ServiceProcess

skyback = pytest.importorskip("awe_skyback", reason="make install puts examples/awe-skyback "
                              "into .venv")
pytestmark = pytest.mark.integration
NIGHT = dt.date(2007, 8, 8)
CHIP, FILTER = "ccd50", "841"
CAMERA = dataclasses.replace(PRESETS["tiny"], chips_x=2, chips_y=1, nx=64, ny=96)
HEADERS = {"Authorization": f"Bearer {ADMIN_TOKEN}"}


@pytest.fixture(scope="module")
def night(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder: Path = tmp_path_factory.mktemp("skyback-night")
    simulate_night(folder, CAMERA, seed=23, date=NIGHT,
                   plan=NightPlan(n_bias=3, n_dome=2, n_twilight=2, science_fields=1,
                                  exposures_per_field=1, standard=False))
    return folder


@pytest.fixture(scope="module")
def settings(postgres: PostgresServer, broker: Broker, catalog_process: str,
             storage_process: str, night: Path) -> ComputeSettings:
    with awe.CatalogClient(catalog_process, ADMIN_TOKEN) as catalog:
        report = Ingester(catalog, StorageClient(storage_process, ADMIN_TOKEN).put).ingest(
            expand([night]))
    assert not report.failed
    return ComputeSettings(
        site="test", database_url=SecretStr(postgres.create_database("awe_compute_products")),
        catalog_url=catalog_process, storage_url=storage_process,
        service_token=SecretStr(ADMIN_TOKEN), kafka_bootstrap_servers=broker.bootstrap_servers,
        lease_seconds=10, reap_seconds=0.5, session_timeout_ms=3000, log_level="WARNING")


@pytest.fixture(scope="module")
async def compute(settings: ComputeSettings, tmp_path_factory: pytest.TempPathFactory
                  ) -> AsyncIterator[httpx.AsyncClient]:
    """The compute API in this process and one worker process: both load the product
    modules (the example package, by its entry point) at start-up."""
    env = {**os.environ, "AWE_SITE": settings.site,
           "AWE_COMPUTE_DATABASE_URL": settings.database_url.get_secret_value(),
           "AWE_COMPUTE_CATALOG_URL": settings.catalog_url,
           "AWE_COMPUTE_STORAGE_URL": settings.storage_url,
           "AWE_COMPUTE_SERVICE_TOKEN": ADMIN_TOKEN,
           "AWE_COMPUTE_KAFKA_BOOTSTRAP_SERVERS": str(settings.kafka_bootstrap_servers),
           "AWE_COMPUTE_LEASE_SECONDS": "10", "AWE_COMPUTE_SESSION_TIMEOUT_MS": "3000"}
    worker = ServiceProcess("worker", [sys.executable, "-m", "awe_compute.worker"], env,
                            tmp_path_factory.mktemp("skyback-worker") / "worker.log")
    worker.start()
    app = create_app(settings)
    try:
        async with LifespanManager(app, startup_timeout=120,
                                   shutdown_timeout=120) as manager, httpx.AsyncClient(
                transport=httpx.ASGITransport(app=manager.app),  # type: ignore[arg-type]
                base_url="http://compute", headers=HEADERS, timeout=120) as client:
            yield client
    finally:
        worker.stop()


@pytest.fixture(scope="module")
async def catalog(catalog_process: str) -> AsyncIterator[httpx.AsyncClient]:
    """The catalog process, once the plugin's class is registered with it (the compute
    service and its worker do it at start-up too, in the background: registering is
    idempotent)."""
    with awe.CatalogClient(catalog_process, ADMIN_TOKEN) as session:
        (info,) = awe.targets.register_classes(session, [skyback.SkyBackgroundMap])
    assert info.spec.name == "SkyBackgroundMap" and info.outcome in ("registered", "unchanged")
    async with httpx.AsyncClient(base_url=catalog_process, headers=HEADERS,
                                 timeout=60) as client:
        yield client


def cli(catalog_process: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**CLI_ENV, "AWE_CATALOG_URL": catalog_process, "AWE_TOKEN": ADMIN_TOKEN}
    return subprocess.run([sys.executable, "-m", "awecore.cli", *args], env=env,
                          capture_output=True, text=True, timeout=120, check=False)


async def jobs_done(compute: httpx.AsyncClient, ids: list[str], seconds: float = 300) -> None:
    """Wait until every job has ended (the workers change their states asynchronously),
    then require that each is done. The deadline only guards against a hang."""
    deadline = time.monotonic() + seconds
    while True:
        jobs = (await compute.post("/jobs/lookup", json={"ids": ids})).json()
        if all(j["status"] in ("done", "failed", "cancelled") for j in jobs):
            break
        assert time.monotonic() < deadline, [(j["cls"], j["status"]) for j in jobs]
        await asyncio.sleep(0.3)
    assert {j["status"] for j in jobs} == {"done"}, [(j["cls"], j["error"]) for j in jobs
                                                     if j["status"] != "done"]


def expected_sky(night: Path, raw: dict[str, Any]) -> tuple[float, float]:
    """The sky level and noise a reduced frame of the chip shows (ADU, flat-fielded), from
    the simulator's truth: the sky's electrons per pixel through the filter's zeropoint,
    over the gain, on a flat normalised to its median as the master flat is."""
    truth = json.loads((night / "truth.json").read_text())
    chip = truth["chips"][CHIP]
    filt = truth["filters"][FILTER]
    exptime = float(raw["attributes"]["exptime"])
    sky_e = 10 ** (-0.4 * (filt["sky_mag"] - filt["zeropoint"])) \
        * truth["pixel_scale"] ** 2 * exptime
    with fits.open(night / "truth_flats.fits") as flats:
        flat_median = float(np.median(flats[CHIP].data))
    level = sky_e / chip["gain"] / flat_median
    noise = np.sqrt(sky_e + (chip["read_noise"] * chip["gain"]) ** 2) / chip["gain"]
    return level, float(noise)


def raw_instrument(graph: dict[str, Any], raw: dict[str, Any]) -> str:
    """The name of the raw frame's instrument, as the lineage graph's Instrument node has
    it in the raw frame's own data ID."""
    (node,) = [n for n in graph["nodes"] if n["oid"] == raw["oid"]]
    return str(node["data_id"]["instrument"])


async def raw_frame(catalog: httpx.AsyncClient) -> dict[str, Any]:
    q = (awe.RawScienceFrame.chip.name == CHIP) & (awe.RawScienceFrame.filter.name == FILTER) \
        & (awe.RawScienceFrame.date_obs > dt.datetime(2007, 8, 8, 12, tzinfo=dt.UTC)) \
        & (awe.RawScienceFrame.date_obs < dt.datetime(2007, 8, 9, 12, tzinfo=dt.UTC))
    r = await catalog.post("/query", json={"query": q.spec().model_dump(mode="json"),
                                           "offset": 0, "limit": 10})
    assert r.status_code == 200, r.text
    (raw,) = r.json()["objects"]
    return dict(raw)


async def test_the_plugin_class_is_registered_through_the_api(catalog_process: str,
                                                              catalog: httpx.AsyncClient,
                                                              compute: httpx.AsyncClient
                                                              ) -> None:
    # registered already (the fixture, and compute at start-up); the CLI again: idempotent
    r = await asyncio.to_thread(cli, catalog_process, "classes", "register", "--format", "json")
    assert r.returncode == 0, r.stderr
    (row,) = [row for row in json.loads(r.stdout) if row["class"] == "SkyBackgroundMap"]
    assert row["version"] == 1 and row["outcome"] == "unchanged"
    info = (await catalog.get("/classes/SkyBackgroundMap")).json()
    assert info["builtin"] is False and info["versions"] == [1]
    assert info["spec"]["bases"] == ["DataObject", "ProcessTarget"]
    assert info["spec"]["fields"]["reduced"] == {
        "kind": "ref", "doc": "the reduced frame measured", "type": None, "unit": None,
        "target": "ReducedScienceFrame", "many": False, "struct": None, "fields": None}
    listing = (await catalog.get("/classes")).json()
    assert "DataObject" in listing["SkyBackgroundMap"]["bases"]
    assert listing["SkyBackgroundMap"]["fields"]["background"]["unit"] == "adu"
    shown = await asyncio.to_thread(cli, catalog_process, "classes", "show", "SkyBackgroundMap",
                                    "--format", "json")
    assert shown.returncode == 0 and "ReducedScienceFrame" in shown.stdout
    listed = await asyncio.to_thread(cli, catalog_process, "classes", "list", "--format", "json")
    assert listed.returncode == 0, listed.stderr
    assert {"class": "SkyBackgroundMap", "abstract": False, "bases": ["DataObject"],
            "fields": len(listing["SkyBackgroundMap"]["fields"])} in json.loads(listed.stdout)


async def test_planned_and_made_by_the_workers_with_full_lineage(
        catalog: httpx.AsyncClient, compute: httpx.AsyncClient, storage_process: str,
        night: Path, postgres: PostgresServer, broker: Broker, catalog_process: str) -> None:
    raw = await raw_frame(catalog)
    body = {"cls": "SkyBackgroundMap", "date": NIGHT.isoformat(), "chip": CHIP,
            "filter": FILTER, "raw": raw["oid"]}
    dry = (await compute.post("/jobs", json={**body, "dry_run": True})).json()
    assert dry["jobs"] == [] and dry["plan"][-1].startswith("make SkyBackgroundMap"), dry
    assert any(line.startswith("make ReducedScienceFrame") for line in dry["plan"])
    r = await compute.post("/jobs", json=body)
    assert r.status_code == 201, r.text
    submitted = r.json()
    assert [j["cls"] for j in submitted["jobs"]][-1] == "SkyBackgroundMap"
    await jobs_done(compute, [j["id"] for j in submitted["jobs"]])

    got = await catalog.get(f"/objects/{submitted['target']}")
    sky = got.json()
    assert sky["type"] == "SkyBackgroundMap" and sky["filename"] and sky["checksum"]
    assert sky["process_params"] == {"box": 16, "nsigma": 3.0,
                                     "plugin_version": skyback.__version__}
    assert sky["software_version"]
    # the stored map's pixels against the simulator's truth
    data = await asyncio.to_thread(lambda: StorageClient(storage_process, ADMIN_TOKEN).get(
        sky["filename"], sha256=sky["checksum"]))
    with fits.open(io.BytesIO(data)) as hdul:
        pixels = np.asarray(hdul[0].data, dtype=np.float64)
        assert hdul[0].header["AWETYPE"] == "SkyBackgroundMap"
    assert pixels.shape == (-(-CAMERA.ny // 16), -(-CAMERA.nx // 16))
    level, noise = expected_sky(night, raw)
    assert np.all(np.isfinite(pixels))
    assert abs(np.median(pixels) / level - 1) < 0.02, (np.median(pixels), level)
    assert np.abs(pixels / level - 1).max() < 0.05, (pixels, level)  # a flat sky, every box
    attributes = sky["attributes"]
    assert attributes["background"] == pytest.approx(float(np.median(pixels)), rel=1e-6)
    assert abs(attributes["rms"] / noise - 1) < 0.25, (attributes["rms"], noise)
    assert (attributes["map_nx"], attributes["map_ny"], attributes["box"]) == (
        pixels.shape[1], pixels.shape[0], 16)

    # up to date: the same request makes nothing; other parameters make only the map
    again = (await compute.post("/jobs", json=body)).json()
    assert again["jobs"] == [] and again["target"] == sky["oid"]
    tuned = (await compute.post("/jobs", json={**body, "params": {"box": 32},
                                                "dry_run": True})).json()
    made = [line for line in tuned["plan"] if line.startswith("make")]
    assert len(made) == 1 and made[0].startswith("make SkyBackgroundMap"), tuned["plan"]
    # the awe command loads the product modules too: it plans the class (here: in use)
    shown = await asyncio.to_thread(cli, catalog_process, "get", "SkyBackgroundMap", "--date",
                                    NIGHT.isoformat(), "--chip", CHIP, "--filter", FILTER,
                                    "--raw", raw["oid"], "--dry-run")
    assert shown.returncode == 0, shown.stderr
    assert f"use  SkyBackgroundMap {CHIP}/{FILTER}" in shown.stdout and sky["oid"] in shown.stdout
    with awe.CatalogClient(catalog_process, ADMIN_TOKEN) as session:
        obj = session.get(sky["oid"])
        assert isinstance(obj, skyback.SkyBackgroundMap)
        assert obj.reduced.raw.record.oid == raw["oid"]  # type: ignore[attr-defined]
        assert bool(awe.targets.uptodate(obj, session)), awe.targets.uptodate(obj, session)

    # a prompt that never imported the plugin opens the object: the client learns the class
    # from the catalogue's schema (its recipe would still need the package)
    script = ("import awecore as awe\n"
              f"c = awe.connect({catalog_process!r}, {ADMIN_TOKEN!r})\n"
              f"o = c.get({sky['oid']!r})\n"
              "import sys\n"
              "assert 'awe_skyback' not in sys.modules\n"
              "print(type(o).__name__, o.background, o.reduced.record.oid)\n")
    env = {k: v for k, v in CLI_ENV.items() if k != "AWE_PRODUCT_MODULES"}
    opened = await asyncio.to_thread(subprocess.run, [sys.executable, "-c", script], env=env,
                                     capture_output=True, text=True, timeout=120)
    assert opened.returncode == 0, opened.stderr
    name, background, reduced = opened.stdout.split()
    assert name == "SkyBackgroundMap" and reduced == sky["refs"]["reduced"]
    assert float(background) == pytest.approx(attributes["background"])

    # lineage: the lineage service (catching up over HTTP at start) traces it to the raw
    # frame and every calibration beneath the reduced frame
    async for lineage in _lineage(postgres, broker, catalog_process, catalog):
        graph = (await lineage.get(f"/lineage/{sky['oid']}/upstream")).json()
        assert "nodes" in graph, graph
    types = {n["oid"]: n["type"] for n in graph["nodes"]}
    assert raw["oid"] in types
    # each node says what it is for: its class's dimensions, by name
    data_ids = {n["type"]: n["data_id"] for n in graph["nodes"]}
    assert data_ids["ReducedScienceFrame"] == {
        "instrument": raw_instrument(graph, raw), "chip": CHIP, "filter": FILTER,
        "night": NIGHT.isoformat(), "raw": raw["oid"]}, data_ids["ReducedScienceFrame"]
    assert data_ids["BiasFrame"]["chip"] == CHIP and "filter" not in data_ids["BiasFrame"]
    assert {"ReducedScienceFrame", "BiasFrame", "MasterFlatFrame", "HotPixelMap",
            "ColdPixelMap", "RawBiasFrame", "RawDomeFlatFrame"} <= set(types.values())
    assert {"src": sky["oid"], "name": "reduced", "dst": sky["refs"]["reduced"]} \
        in graph["edges"]


async def _lineage(postgres: PostgresServer, broker: Broker, catalog_process: str,
                   catalog: httpx.AsyncClient) -> AsyncIterator[httpx.AsyncClient]:
    """The lineage service in this process, once it has caught up with the changelog."""
    settings = LineageSettings(
        site="test", database_url=SecretStr(postgres.create_database("awe_lineage_products")),
        catalog_url=catalog_process, service_token=SecretStr(ADMIN_TOKEN),
        kafka_bootstrap_servers=broker.bootstrap_servers, catch_up_seconds=3600,
        session_timeout_ms=3000, log_level="WARNING")
    target = (await catalog.get("/changes", params={"limit": 1})).json()["last_sequence"]
    app = create_lineage_app(settings)
    async with LifespanManager(app, startup_timeout=120,
                               shutdown_timeout=120) as manager, httpx.AsyncClient(
            transport=httpx.ASGITransport(app=manager.app),  # type: ignore[arg-type]
            base_url="http://lineage", headers=HEADERS) as client:
        deadline = time.monotonic() + 120
        while (await client.get("/health")).json().get("applied_sequence", 0) < target:
            assert time.monotonic() < deadline, "lineage did not catch up"
            await asyncio.sleep(0.2)
        yield client


async def test_a_clashing_schema_is_refused_with_the_reason(catalog: httpx.AsyncClient,
                                                            compute: httpx.AsyncClient) -> None:
    schema = awe.schema_of(skyback.SkyBackgroundMap).model_dump(mode="json")
    assert (await catalog.post("/classes", json=schema)).status_code == 200  # the same: ok
    clash = {**schema, "fields": {**schema["fields"], "background": {
        "kind": "scalar", "type": "int", "unit": "adu"}}}
    r = await catalog.post("/classes", json=clash)
    assert r.status_code == 409, r.text
    detail = r.json()["detail"]
    assert "SkyBackgroundMap version 1 is registered already with another schema" in detail
    assert "field background: int [adu] here, float [adu] there" in detail
    assert "register the change as version 2" in detail
    builtin = {**schema, "name": "BiasFrame"}
    r = await catalog.post("/classes", json=builtin)
    assert r.status_code == 409 and "BiasFrame is a class of awecore itself" in r.json()["detail"]
    r = await catalog.post("/classes", json={**schema, "version": 0})
    assert r.status_code == 400 and r.json()["error"] == "invalid_request"
    # the registered class is still the one made by the plugin
    info = (await catalog.get("/classes/SkyBackgroundMap")).json()
    assert info["versions"] == [1] and info["spec"]["fields"]["background"]["type"] == "float"


async def test_unknown_fields_are_refused_as_for_builtin_classes(
        catalog: httpx.AsyncClient, compute: httpx.AsyncClient) -> None:
    bad = {"type": "SkyBackgroundMap", "attributes": {"background": 1.0, "foo": 2},
           "refs": {"bogus": str(uuid.UUID(int=5))}}
    r = await catalog.post("/objects", json=bad)
    assert r.status_code == 400 and r.json()["error"] == "invalid_object", r.text
    messages = [e["message"] for e in r.json()["errors"]]
    assert "SkyBackgroundMap has no attribute 'foo'" in messages
    assert any("has no reference 'bogus'" in m for m in messages)
    r = await catalog.post("/objects", json={"type": "SkyBackgroundMap",
                                             "attributes": {"background": "high"}})
    assert r.status_code == 400 and "attributes.background" in r.text
    # awecore's own classes say the same
    r = await catalog.post("/objects", json={"type": "BiasFrame", "attributes": {"foo": 2}})
    assert r.status_code == 400 and "BiasFrame has no attribute 'foo'" in r.text


async def test_versions_add_optional_fields_and_reach_every_catalog_process(
        catalog: httpx.AsyncClient, admin: httpx.AsyncClient, users: Any) -> None:
    """A class registered through one catalog process (the uvicorn one) reaches another on
    the same database (the one in this process) without a restart; versions only grow, and
    may only add fields."""
    name = f"SkyTest{uuid.uuid4().hex[:6].upper()}"
    v1 = {"name": name, "bases": ["DataObject"], "version": 1, "doc": "a test class",
          "fields": {"level": {"kind": "scalar", "type": "float", "unit": "adu"},
                     "chip": {"kind": "ref", "target": "Chip"}}}
    r = await catalog.post("/classes", json=v1)
    assert r.status_code == 201 and r.json()["outcome"] == "registered", r.text
    assert (await catalog.post("/classes", json=v1)).json()["outcome"] == "unchanged"
    # the other catalog process learns it from the notification: wait for that state
    deadline = time.monotonic() + 60
    while name not in (await admin.get("/classes")).json():
        assert time.monotonic() < deadline, "the other catalog process never learnt it"
        await asyncio.sleep(0.1)
    created = await admin.post("/objects", json={"type": name, "attributes": {"level": 3.5}})
    assert created.status_code == 201, created.text

    v2 = {**v1, "version": 2, "fields": {**v1["fields"], "note": {
        "kind": "scalar", "type": "str", "doc": "added in version 2"}}}
    r = await catalog.post("/classes", json=v2)
    assert r.status_code == 201 and r.json()["outcome"] == "new version", r.text
    assert r.json()["versions"] == [1, 2]
    made = await catalog.post("/objects", json={"type": name,
                                                "attributes": {"level": 4.0, "note": "v2"}})
    assert made.status_code == 201, made.text
    # queryable by the new field, and objects of version 1 are still there
    q = QuerySpec(cls=name, where=Compare(op="eq", path=("note",), value="v2")).model_dump(
        mode="json")
    found = (await catalog.post("/query", json={"query": q, "offset": 0, "limit": 5})).json()
    assert [o["oid"] for o in found["objects"]] == [made.json()["oid"]]
    every = (await catalog.post("/query", json={"query": {"cls": name}, "offset": 0,
                                                "limit": 5})).json()
    assert len(every["objects"]) == 2

    # version 1 again, as it was: fine (a worker with older code); otherwise refused
    assert (await catalog.post("/classes", json=v1)).json()["outcome"] == "superseded"
    r = await catalog.post("/classes", json={**v1, "fields": {}})
    assert r.status_code == 409 and "version 1 is registered already" in r.json()["detail"]
    retyped = {**v2, "version": 3, "fields": {**v2["fields"], "level": {
        "kind": "scalar", "type": "int"}}}
    r = await catalog.post("/classes", json=retyped)
    assert r.status_code == 409, r.text
    assert "may only add fields to version 2" in r.json()["detail"]
    assert "field level: int now, float [adu] before" in r.json()["detail"]
    removed = {**v2, "version": 3, "fields": {"level": v1["fields"]["level"]}}
    r = await catalog.post("/classes", json=removed)
    assert r.status_code == 409 and "field chip: only before" in r.json()["detail"]
    v5 = {**v2, "version": 5}
    assert (await catalog.post("/classes", json=v5)).status_code == 201
    r = await catalog.post("/classes", json={**v2, "version": 4})
    assert r.status_code == 409 and "version 4 is older" in r.json()["detail"]
    # a new version only by its first registrant (or an admin, a service); a new class by
    # anyone
    alice = await users.make("alice")
    r = await alice.post("/classes", json={**v5, "version": 6})
    assert r.status_code == 403 and "registered by admin" in r.json()["detail"]
    own = {**v1, "name": name + "Own"}
    assert (await alice.post("/classes", json=own)).status_code == 201
    r = await alice.post("/classes", json={**own, "fields": {**own["fields"],
                                           "chip": {"kind": "ref", "target": "NoSuchClass"}},
                                           "version": 2})
    assert r.status_code == 409, r.text  # a changed field: the version rule speaks first
    bad = {**v1, "name": name + "Bad", "fields": {"filename": {"kind": "scalar",
                                                                 "type": "str"}},
           "bases": ["DBObject"]}
    r = await alice.post("/classes", json=bad)
    assert r.status_code == 400 and "derive from DataObject" in r.json()["detail"]
    assert (await catalog.get(f"/classes/{name}Bad")).status_code == 404


async def test_a_peer_site_learns_a_users_class_with_its_objects(
        catalog: httpx.AsyncClient, catalog_process: str, postgres: PostgresServer,
        broker: Broker, tmp_path_factory: pytest.TempPathFactory) -> None:
    """Site b (its own database and catalog) follows this site. An object of a user's class
    shared with every site reaches b: b's federation registers the class there first, from
    this site's schema, and the classes it builds on before it."""
    name = f"PeerTest{uuid.uuid4().hex[:6].upper()}"
    derived = {"name": name, "bases": ["SkyBackgroundMap"], "version": 1,
               "fields": {"note": {"kind": "scalar", "type": "str"}}}
    assert (await catalog.post("/classes", json=derived)).status_code == 201
    made = await catalog.post("/objects", json={
        "type": name, "privileges": 4, "attributes": {"background": 7.0, "note": "to b"}})
    assert made.status_code == 201, made.text
    oid = made.json()["oid"]

    env = {**os.environ, "AWE_SITE": "b",
           "AWE_CATALOG_DATABASE_URL": postgres.create_database("awe_catalog_site_b"),
           "AWE_CATALOG_KAFKA_BOOTSTRAP_SERVERS": broker.bootstrap_servers,
           "AWE_CATALOG_ADMIN_TOKEN": ADMIN_TOKEN, "AWE_CATALOG_LOG_LEVEL": "WARNING"}
    proc, site_b = start_service("catalog-b", "awe_catalog.main:create_app", env,
                                 tmp_path_factory.mktemp("site-b"))
    settings = FederationSettings(
        site="b", database_url=SecretStr(postgres.create_database("awe_federation_site_b")),
        catalog_url=site_b, service_token=SecretStr(ADMIN_TOKEN),
        peers=[PeerSite(site="test", catalog_url=catalog_process, token=SecretStr(ADMIN_TOKEN))],
        catch_up_seconds=1.0, session_timeout_ms=3000, log_level="WARNING")
    try:
        async with httpx.AsyncClient(base_url=site_b, headers=HEADERS, timeout=60) as b:
            assert (await b.get(f"/classes/{name}")).status_code == 404  # not there yet
            async with LifespanManager(create_federation_app(settings), startup_timeout=120,
                                       shutdown_timeout=120):
                deadline = time.monotonic() + 120
                while (got := await b.get(f"/objects/{oid}")).status_code != 200:
                    assert time.monotonic() < deadline, got.text
                    await asyncio.sleep(0.3)
            assert got.json()["attributes"] == {"background": 7.0, "note": "to b"}
            info = (await b.get(f"/classes/{name}")).json()
            assert info["versions"] == [1] and info["spec"]["bases"] == ["SkyBackgroundMap"]
            base = (await b.get("/classes/SkyBackgroundMap")).json()
            assert base["spec"] == awe.schema_of(skyback.SkyBackgroundMap).model_dump(
                mode="json")
            q = QuerySpec(cls="SkyBackgroundMap", where=Compare(op="eq", path=("oid",),
                                                                value=oid))
            found = (await b.post("/query", json={"query": q.model_dump(mode="json"),
                                                  "offset": 0, "limit": 5})).json()
            assert [o["type"] for o in found["objects"]] == [name]  # a subclass, found
    finally:
        proc.stop()
