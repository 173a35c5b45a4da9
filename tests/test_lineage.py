"""The lineage service, fed by real catalog events through the broker and the changelog."""

from __future__ import annotations

import asyncio
import functools
import json
import os
import sys
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest
from asgi_lifespan import LifespanManager
from conftest import ADMIN_TOKEN, CLI_ENV, service_env
from prov.model import ProvDocument
from pydantic import SecretStr
from seed import batch, day

from awe_catalog.config import CatalogSettings
from awe_lineage.config import LineageSettings
from awe_lineage.main import create_app
from awecore.events import ChangePage
from awecore.stack import Broker, PostgresServer, ServiceProcess

pytestmark = pytest.mark.integration


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
def lineage_settings(postgres: PostgresServer, broker: Broker, catalog_process: str) -> \
        LineageSettings:
    admin = httpx.Client(base_url=catalog_process,
                         headers={"Authorization": f"Bearer {ADMIN_TOKEN}"})
    admin.post("/users", json={"name": "lineage-svc", "is_service": True})
    token = admin.post("/tokens", json={"user": "lineage-svc"}).json()["token"]
    return LineageSettings(
        site="test", database_url=SecretStr(postgres.create_database("awe_lineage_test")),
        catalog_url=catalog_process, service_token=SecretStr(token),
        # the changelog is read over HTTP at start and on a gap only: events come by Kafka
        kafka_bootstrap_servers=broker.bootstrap_servers, catch_up_seconds=3600,
        session_timeout_ms=3000, log_level="WARNING")


async def lineage_client(settings: LineageSettings) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(settings)
    async with LifespanManager(
                app, startup_timeout=120, shutdown_timeout=120) as manager, httpx.AsyncClient(
            transport=httpx.ASGITransport(app=manager.app),  # type: ignore[arg-type]
            base_url="http://lineage",
            headers={"Authorization": f"Bearer {ADMIN_TOKEN}"}) as client:
        client.follower = app.state.context.follower  # type: ignore[attr-defined]
        yield client


@pytest.fixture(scope="module")
async def lineage(lineage_settings: LineageSettings, relay: None) -> AsyncIterator[
        httpx.AsyncClient]:
    async for client in lineage_client(lineage_settings):
        yield client


async def caught_up(lineage: httpx.AsyncClient, admin: httpx.AsyncClient,
                    seconds: float = 30) -> int:
    target = (await admin.get("/changes", params={"limit": 1})).json()["last_sequence"]
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        health = (await lineage.get("/health")).json()
        if health["applied_sequence"] >= target:
            return target
        await asyncio.sleep(0.2)
    raise AssertionError(f"lineage did not reach {target}: {health}")


class Chain:
    """Raw frames -> calibrations -> a reduced frame -> a source list, one chip."""

    def __init__(self, oids: dict[str, object]) -> None:
        self.__dict__.update(oids)


async def make_chain(admin: httpx.AsyncClient) -> Chain:
    window = {"timestamp_start": day(-1), "timestamp_end": day(1)}
    (chip,) = await batch(admin, [{"type": "Chip", "attributes": {"name": "lineage-chip"}}])
    (filt,) = await batch(admin, [{"type": "Filter", "attributes": {"name": "lineage-841"}}])
    raw_bias = await batch(admin, [{"type": "RawBiasFrame", "refs": {"chip": chip},
                                    "attributes": {"date_obs": day(0)}} for _ in range(3)])
    raw_flat = await batch(admin, [{"type": "RawDomeFlatFrame", "refs": {"chip": chip,
                                                                         "filter": filt},
                                    "attributes": {"date_obs": day(0)}} for _ in range(2)])
    (raw_sci,) = await batch(admin, [{"type": "RawScienceFrame", "refs": {"chip": chip,
                                                                          "filter": filt},
                                      "attributes": {"date_obs": day(0.2)}}])
    (bias,) = await batch(admin, [{"type": "BiasFrame", **window, "software_version": "1.0",
                                   "refs": {"chip": chip, "raw_bias_frames": raw_bias}}])
    (dome,) = await batch(admin, [{"type": "DomeFlatFrame", **window,
                                   "refs": {"chip": chip, "filter": filt, "bias": bias,
                                            "raw_dome_flat_frames": raw_flat}}])
    (flat,) = await batch(admin, [{"type": "MasterFlatFrame", **window,
                                   "refs": {"chip": chip, "filter": filt, "dome": dome}}])
    (reduced,) = await batch(admin, [{"type": "ReducedScienceFrame", "software_version": "1.0",
                                      "refs": {"chip": chip, "filter": filt, "raw": raw_sci,
                                               "bias": bias, "flat": flat}}])
    (other,) = await batch(admin, [{"type": "ReducedScienceFrame", "software_version": "1.0",
                                    "refs": {"chip": chip, "filter": filt, "raw": raw_sci,
                                             "flat": flat}}])
    after_reduced = (await admin.get(f"/objects/{reduced}")).json()["creation_date"]
    await asyncio.sleep(0.05)
    (sources,) = await batch(admin, [{"type": "SourceList", "software_version": "1.0",
                                      "refs": {"frame": reduced}}])
    return Chain({"chip": chip, "filter": filt, "raw_bias": raw_bias, "raw_flat": raw_flat,
                  "raw_sci": raw_sci, "bias": bias, "dome": dome, "flat": flat,
                  "reduced": reduced, "other": other, "sources": sources,
                  "after_reduced": after_reduced})


async def test_graph_upstream_downstream_impact_path(admin: httpx.AsyncClient,
                                                     lineage: httpx.AsyncClient) -> None:
    c = await make_chain(admin)
    await caught_up(lineage, admin)
    up = (await lineage.get(f"/lineage/{c.sources}/upstream")).json()
    raw = {n["oid"] for n in up["nodes"] if n["type"].startswith("Raw")}
    assert raw == {*c.raw_bias, *c.raw_flat, c.raw_sci}  # every raw file it used
    assert {"src": c.sources, "name": "frame", "dst": c.reduced} in up["edges"]
    shallow = (await lineage.get(f"/lineage/{c.sources}/upstream",
                                 params={"depth": 1})).json()
    assert {n["oid"] for n in shallow["nodes"]} == {c.sources, c.reduced}
    impact = (await lineage.get(f"/lineage/{c.bias}/impact")).json()
    # "other" did not use the bias itself, but its flat was made with it
    assert {k: sorted(v) for k, v in impact["by_class"].items()} == {
        "DomeFlatFrame": [c.dome], "MasterFlatFrame": [c.flat],
        "ReducedScienceFrame": sorted([c.reduced, c.other]), "SourceList": [c.sources]}
    assert impact["total"] == 5
    unrelated = (await lineage.get(f"/lineage/{c.raw_flat[0]}/impact")).json()
    assert c.sources in unrelated["by_class"]["SourceList"]
    assert "BiasFrame" not in unrelated["by_class"]
    path = (await lineage.get("/lineage/path", params={"src": c.sources,
                                                       "dst": c.raw_bias[0]})).json()
    assert path["nodes"] == [c.sources, c.reduced, c.bias, c.raw_bias[0]]
    assert path["names"] == ["frame", "bias", "raw_bias_frames"]
    # lineage as it was: before the source list existed, the bias touched no source list
    then = (await lineage.get(f"/lineage/{c.bias}/downstream",
                              params={"at": c.after_reduced})).json()
    assert c.sources not in {n["oid"] for n in then["nodes"]}
    assert c.reduced in {n["oid"] for n in then["nodes"]}


async def test_lineage_at_a_time(admin: httpx.AsyncClient, lineage: httpx.AsyncClient) -> None:
    """?at=: before the object existed, 404 saying so; after, the graph with validity, is_valid
    and privileges as they were then, not as curation has made them since."""
    c = await make_chain(admin)
    made = (await admin.get(f"/objects/{c.sources}")).json()["creation_date"]
    bias_then = (await admin.get(f"/objects/{c.bias}")).json()
    await admin.patch(f"/objects/{c.bias}", json={"is_valid": 0, "timestamp_end": day(2)})
    await admin.patch(f"/objects/{c.bias}", json={"privileges": bias_then["privileges"] + 1})
    await caught_up(lineage, admin)
    for before in (c.after_reduced,  # the reduced frame existed, the source list not yet
                   "2000-01-01T00:00:00",  # no zone: UTC
                   "0001-01-01T00:00:00+14:00"):  # before year 1 in UTC
        r = await lineage.get(f"/lineage/{c.sources}/upstream", params={"at": before})
        assert r.status_code == 404, r.text
        assert r.headers["content-type"].startswith("application/problem+json")
        assert r.json()["error"] == "not_found"
        assert f"SourceList {c.sources} did not exist at" in r.json()["detail"]
        assert made[:19] in r.json()["detail"]
    then = (await lineage.get(f"/lineage/{c.sources}/upstream", params={"at": made})).json()
    assert then["at"] is not None
    bias = next(n for n in then["nodes"] if n["oid"] == c.bias)
    assert bias["is_valid"] == 1 and bias["privileges"] == bias_then["privileges"]
    assert bias["timestamp_end"][:19] == day(1)[:19]
    assert c.raw_sci in {n["oid"] for n in then["nodes"]}  # its inputs, as before
    now = (await lineage.get(f"/lineage/{c.sources}/upstream")).json()
    bias = next(n for n in now["nodes"] if n["oid"] == c.bias)
    assert bias["is_valid"] == 0 and bias["privileges"] == bias_then["privileges"] + 1
    assert bias["timestamp_end"][:19] == day(2)[:19] and now["at"] is None
    # downstream as it was when the reduced frame was made: no source list yet
    down = (await lineage.get(f"/lineage/{c.reduced}/downstream",
                              params={"at": c.after_reduced})).json()
    assert [n["oid"] for n in down["nodes"]] == [c.reduced]
    r = await lineage.get(f"/lineage/{c.sources}/upstream", params={"at": "yesterday"})
    assert r.status_code == 400 and r.json()["error"]
    # a time to come is now (and its UTC, past year 9999, is no error)
    later = (await lineage.get(f"/lineage/{c.sources}/upstream",
                               params={"at": "9999-12-31T23:59:59-14:00"})).json()
    assert {n["oid"]: n["is_valid"] for n in later["nodes"]} == {
        n["oid"]: n["is_valid"] for n in now["nodes"]}


async def test_staleness_says_why(admin: httpx.AsyncClient, lineage: httpx.AsyncClient) -> None:
    c = await make_chain(admin)
    await caught_up(lineage, admin)
    fresh = (await lineage.get(f"/lineage/{c.reduced}/staleness")).json()
    assert fresh["stale"] is False
    await admin.patch(f"/objects/{c.bias}", json={"is_valid": 0})
    await caught_up(lineage, admin)
    stale = (await lineage.get(f"/lineage/{c.sources}/staleness")).json()
    assert stale["stale"] is True
    (frame,) = stale["edges"]
    assert frame["name"] == "frame" and "is itself stale" in frame["reasons"][0]
    assert any("was invalidated" in r for e in frame["upstream"] for r in e["reasons"])
    # a newer valid bias for the same chip and time makes the other frames stale too
    (newer,) = await batch(admin, [{"type": "BiasFrame", "timestamp_start": day(-1),
                                    "timestamp_end": day(1), "software_version": "2.0",
                                    "refs": {"chip": c.chip, "raw_bias_frames": c.raw_bias}}])
    await caught_up(lineage, admin)
    dome = (await lineage.get(f"/lineage/{c.dome}/staleness")).json()
    bias_edge = next(e for e in dome["edges"] if e["name"] == "bias")
    assert any(newer in r for r in bias_edge["reasons"])
    old_bias = (await lineage.get(f"/lineage/{c.bias}/staleness")).json()
    assert any("now made by 2.0" in r for r in old_bias["reasons"])


async def test_prov_and_openlineage(admin: httpx.AsyncClient, lineage: httpx.AsyncClient) -> None:
    c = await make_chain(admin)
    await caught_up(lineage, admin)
    body = (await lineage.get(f"/lineage/{c.sources}/prov")).json()
    doc = ProvDocument.deserialize(content=json.dumps(body), format="json")
    again = ProvDocument.deserialize(content=doc.serialize(format="json"), format="json")
    assert again == doc
    entities = {str(r.identifier) for r in doc.get_records() if r.is_element()
                and r.get_type().localpart == "Entity"}
    assert f"awe:{c.sources}" in entities and f"awe:{c.raw_sci}" in entities
    events = (await lineage.get(f"/lineage/{c.sources}/openlineage")).json()
    run = next(e for e in events if e["run"]["runId"] == c.sources)
    assert run["job"]["name"] == "make-SourceList"
    assert [i["name"] for i in run["inputs"]] == [c.reduced]


async def test_duplicates_and_replays_change_nothing(admin: httpx.AsyncClient,
                                                     lineage: httpx.AsyncClient,
                                                     lineage_settings: LineageSettings) -> None:
    c = await make_chain(admin)
    upto = await caught_up(lineage, admin)
    before = (await lineage.get(f"/lineage/{c.bias}/downstream")).json()
    health = (await lineage.get("/health")).json()
    page = ChangePage.model_validate((await admin.get(
        "/changes", params={"after": upto - 20, "limit": 20})).json())
    follower = lineage.follower  # type: ignore[attr-defined]
    for event in page.events + page.events:  # replayed twice
        await follower.apply(event)
    after = (await lineage.get(f"/lineage/{c.bias}/downstream")).json()
    assert after == before
    health2 = (await lineage.get("/health")).json()
    assert health2["applied_sequence"] == health["applied_sequence"]
    assert health2["duplicates_ignored"] >= health["duplicates_ignored"] + 40


async def test_catches_up_after_being_down(admin: httpx.AsyncClient,
                                           lineage_settings: LineageSettings,
                                           lineage: httpx.AsyncClient) -> None:
    await caught_up(lineage, admin)
    down = lineage_settings.model_copy(update={"follow": False})
    async for stopped in lineage_client(down):
        applied = (await stopped.get("/health")).json()["applied_sequence"]
    # objects made while a lineage service without a broker was away
    no_broker = lineage_settings.model_copy(update={"kafka_bootstrap_servers": None})
    c = await make_chain(admin)
    async for back in lineage_client(no_broker):
        target = await caught_up(back, admin)
        assert target > applied
        up = (await back.get(f"/lineage/{c.sources}/upstream")).json()
        assert c.raw_sci in {n["oid"] for n in up["nodes"]}


async def test_bad_requests(lineage: httpx.AsyncClient, users: object) -> None:
    r = await lineage.get("/lineage/not-an-oid/upstream")
    assert r.status_code == 404 and r.json()["error"] == "not_found"
    r = await lineage.get("/lineage/01a20000-0000-7000-8000-000000000000/impact")
    assert r.status_code == 404
    r = await lineage.get("/lineage/01a20000-0000-7000-8000-000000000000/upstream",
                          params={"depth": -1})
    assert r.status_code == 400
    r = await lineage.get("/health", headers={"Authorization": ""})
    assert r.status_code == 200
    r = await lineage.get("/lineage/x/upstream", headers={"Authorization": "Bearer nope"})
    assert r.status_code == 401




async def test_client_and_cli(admin: httpx.AsyncClient, lineage: httpx.AsyncClient,
                              catalog_process: str, lineage_settings: LineageSettings,
                              monkeypatch: pytest.MonkeyPatch) -> None:
    """obj.upstream()/downstream()/why_stale() and `awe lineage`, over real HTTP."""
    import subprocess

    from conftest import start_service

    import awecore as awe

    c = await make_chain(admin)
    await caught_up(lineage, admin)
    env = {**service_env_for_lineage(lineage_settings), "AWE_LINEAGE_FOLLOW": "false"}
    proc, url = start_service("lineage", "awe_lineage.main:create_app", env,
                              Path(__import__("tempfile").mkdtemp()))
    try:
        monkeypatch.setenv("AWE_CATALOG_URL", catalog_process)
        monkeypatch.setenv("AWE_LINEAGE_URL", url)
        monkeypatch.setenv("AWE_TOKEN", ADMIN_TOKEN)
        session = awe.connect()
        sources = session.get(c.sources)
        up = sources.upstream()
        assert c.raw_sci in {n.oid for n in up.nodes}
        assert {n.oid for n in sources.upstream(depth=1).nodes} == {c.sources, c.reduced}
        bias = session.get(c.bias)
        assert c.sources in {n.oid for n in bias.downstream().nodes}
        assert sources.why_stale().stale is False
        cli_env = {"AWE_CATALOG_URL": catalog_process, "AWE_LINEAGE_URL": url,
                   "AWE_TOKEN": ADMIN_TOKEN, **CLI_ENV, "COLUMNS": "250"}
        run = functools.partial(subprocess.run, capture_output=True, text=True, env=cli_env,
                                timeout=60, check=False)
        r = await asyncio.to_thread(run, [sys.executable, "-m", "awecore.cli", "lineage",
                                          c.sources])
        assert r.returncode == 0, r.stderr
        assert "SourceList" in r.stdout and "raw_bias_frames: RawBiasFrame" in r.stdout
        r = await asyncio.to_thread(run, [sys.executable, "-m", "awecore.cli", "lineage",
                                          c.bias, "--down", "--format", "prov"])
        doc = ProvDocument.deserialize(content=r.stdout, format="json")
        assert any(str(rec.identifier) == f"awe:{c.sources}" for rec in doc.get_records()
                   if rec.is_element())
        # as it was: before the source list was made it did not exist, after it did
        with pytest.raises(awe.NotFound, match=f"SourceList {c.sources} did not exist at"):
            sources.upstream(at="2000-01-01T00:00:00")
        then = sources.upstream(at=sources.creation_date)
        assert then.at == sources.creation_date and c.raw_sci in {n.oid for n in then.nodes}
        r = await asyncio.to_thread(run, [sys.executable, "-m", "awecore.cli", "lineage",
                                          c.sources, "--at", "2000-01-01"])
        assert r.returncode == 1 and "did not exist at 2000-01-01T00:00:00+00:00" in r.stderr
        r = await asyncio.to_thread(run, [sys.executable, "-m", "awecore.cli", "lineage",
                                          c.sources, "--at", then.at.isoformat()])
        assert r.returncode == 0 and "as it was at" in r.stdout and "RawBiasFrame" in r.stdout
        session.close()
    finally:
        proc.stop()


def service_env_for_lineage(settings: LineageSettings) -> dict[str, str]:

    assert settings.service_token is not None
    return {**os.environ, "AWE_SITE": settings.site,
            "AWE_LINEAGE_DATABASE_URL": settings.database_url.get_secret_value(),
            "AWE_LINEAGE_CATALOG_URL": settings.catalog_url,
            "AWE_LINEAGE_SERVICE_TOKEN": settings.service_token.get_secret_value()}
