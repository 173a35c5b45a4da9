"""Three sites on one machine, each with its PostgreSQL, broker, catalog, relay, federation.

Full mesh: every site follows the other two, so two-site scenarios and loops are both here.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import sys
import tempfile
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from asgi_lifespan import LifespanManager
from conftest import ADMIN_TOKEN, start_service
from pydantic import SecretStr

from awe_federation.config import FederationSettings, PeerSite
from awe_federation.main import create_app
from awecore.stack import Broker, PostgresServer, ServiceProcess

pytestmark = pytest.mark.integration
NAMES = ("a", "b", "c")


class Site:
    def __init__(self, name: str, root: Path) -> None:
        self.name = name
        self.root = root
        self.pg = PostgresServer(root / "pg")
        self.broker = Broker(logfile=root / "broker.log")
        self.procs: list[ServiceProcess] = []
        self.catalog = ""
        self.federation_db = ""
        self.fed: LifespanManager | None = None
        self.fed_client: httpx.AsyncClient | None = None

    def start(self) -> None:
        self.pg.start()
        self.broker.start()
        env = {**os.environ, "AWE_SITE": self.name,
               "AWE_CATALOG_DATABASE_URL": self.pg.create_database("awe_catalog"),
               "AWE_CATALOG_KAFKA_BOOTSTRAP_SERVERS": self.broker.bootstrap_servers,
               "AWE_CATALOG_ADMIN_TOKEN": ADMIN_TOKEN, "AWE_CATALOG_RELAY_POLL_SECONDS": "0.2",
               "AWE_CATALOG_LOG_LEVEL": "WARNING"}
        proc, self.catalog = start_service(f"catalog-{self.name}",
                                           "awe_catalog.main:create_app", env, self.root)
        relay = ServiceProcess(f"relay-{self.name}", [sys.executable, "-m", "awe_catalog.relay"],
                               env, self.root / "relay.log")
        relay.start()
        self.procs += [proc, relay]
        self.federation_db = self.pg.create_database("awe_federation")

    def settings(self, sites: dict[str, Site], follows: tuple[str, ...] | None = None,
                 **extra: Any) -> FederationSettings:
        peers = [PeerSite(site=s.name, catalog_url=s.catalog, token=SecretStr(ADMIN_TOKEN),
                          kafka_bootstrap_servers=s.broker.bootstrap_servers)
                 for s in sites.values()
                 if s is not self and (follows is None or s.name in follows)]
        values: dict[str, Any] = {
            "site": self.name, "database_url": SecretStr(self.federation_db),
            "catalog_url": self.catalog, "service_token": SecretStr(ADMIN_TOKEN),
            "peers": peers, "catch_up_seconds": 1.0, "session_timeout_ms": 3000,
            "log_level": "WARNING", **extra}
        return FederationSettings(**values)

    async def start_federation(self, sites: dict[str, Site],
                               follows: tuple[str, ...] | None = None) -> None:
        self.fed = LifespanManager(create_app(self.settings(sites, follows)))
        manager = await self.fed.__aenter__()
        self.fed_client = httpx.AsyncClient(
            transport=httpx.ASGITransport(app=manager.app),  # type: ignore[arg-type]
            base_url="http://federation", headers={"Authorization": f"Bearer {ADMIN_TOKEN}"})

    async def stop_federation(self) -> None:
        if self.fed_client is not None:
            await self.fed_client.aclose()
        if self.fed is not None:
            await self.fed.__aexit__(None, None, None)
        self.fed = self.fed_client = None

    def http(self) -> httpx.AsyncClient:
        return httpx.AsyncClient(base_url=self.catalog, timeout=60,
                                 headers={"Authorization": f"Bearer {ADMIN_TOKEN}"})

    def stop(self) -> None:
        for p in reversed(self.procs):
            p.stop()
        self.broker.stop()
        self.pg.stop()


@pytest.fixture(scope="module")
async def sites() -> AsyncIterator[dict[str, Site]]:
    root = Path(tempfile.mkdtemp(prefix="awe-sites-"))
    os.chmod(root, 0o711)
    made: dict[str, Site] = {}
    try:
        for name in NAMES:
            (root / name).mkdir(mode=0o711)
            made[name] = Site(name, root / name)
            await asyncio.to_thread(made[name].start)
        for s in made.values():
            await s.start_federation(made)
        yield made
    finally:
        for s in made.values():
            await s.stop_federation()
            s.stop()
        shutil.rmtree(root, ignore_errors=True)


async def digests(sites: dict[str, Site]) -> dict[str, tuple[int, str]]:
    out = {}
    for name, s in sites.items():
        async with s.http() as c:
            d = (await c.get("/digest")).json()
            out[name] = (d["objects"], d["digest"])
    return out


async def converged(sites: dict[str, Site], seconds: float = 60) -> tuple[int, str]:
    deadline = time.monotonic() + seconds
    while True:
        got = await digests(sites)
        if len(set(got.values())) == 1:
            return next(iter(got.values()))
        if time.monotonic() > deadline:
            raise AssertionError(f"sites did not converge: {got}")
        await asyncio.sleep(0.3)


async def make(site: Site, objects: list[dict[str, Any]]) -> list[str]:
    async with site.http() as c:
        r = await c.post("/objects/batch", json={"objects": objects})
        assert r.status_code == 201, r.text
        return list(r.json()["oids"])


async def test_shared_objects_replicate_private_ones_stay(sites: dict[str, Site]) -> None:
    a, b = sites["a"], sites["b"]
    (shared,) = await make(a, [{"type": "Instrument", "privileges": 3,
                                "attributes": {"name": "OMEGACAM"}}])
    (private,) = await make(a, [{"type": "Instrument", "privileges": 1,
                                 "attributes": {"name": "secret"}}])
    chips = await make(a, [{"type": "Chip", "privileges": 3, "attributes": {"name": f"c{i}"},
                            "refs": {"instrument": shared}} for i in range(3)])
    await converged(sites)
    async with a.http() as ca, b.http() as cb:
        at_a = (await ca.get(f"/objects/{shared}")).json()
        at_b = (await cb.get(f"/objects/{shared}")).json()
        assert at_b == at_a  # same oid, site, creator, clock: nothing re-numbered
        assert at_b["site"] == "a"
        got = (await cb.post("/objects/get", json={"oids": chips})).json()
        assert sorted(o["oid"] for o in got["objects"]) == sorted(chips)
        assert (await cb.get(f"/objects/{private}")).status_code == 404
    status = (await b.fed_client.get("/federation/status")).json()  # type: ignore[union-attr]
    peer_a = next(p for p in status["peers"] if p["site"] == "a")
    assert peer_a["lag_changes"] == 0 and peer_a["last_error"] is None
    metrics = (await b.fed_client.get("/metrics")).text  # type: ignore[union-attr]
    assert f'awe_federation_applied_sequence{{peer="a"}} {float(peer_a["applied_sequence"])}' \
        in metrics


async def test_concurrent_curation_converges(sites: dict[str, Site]) -> None:
    a, b, c = sites["a"], sites["b"], sites["c"]
    oids = await make(a, [{"type": "BiasFrame", "privileges": 3} for _ in range(5)])
    await converged(sites)
    async with a.http() as ca, b.http() as cb, c.http() as cc:
        await asyncio.gather(*(client.patch(f"/objects/{oid}", json=change)
                               for oid in oids
                               for client, change in ((ca, {"is_valid": 0}),
                                                      (cb, {"is_valid": 2, "comments": "B"}),
                                                      (cc, {"privileges": 4}))))
        await converged(sites)
        states = [[(o["is_valid"], o["comments"], o["privileges"])
                   for o in sorted((await client.post("/objects/get", json={"oids": oids}))
                                   .json()["objects"], key=lambda o: o["oid"])]
                  for client in (ca, cb, cc)]
    assert states[0] == states[1] == states[2]
    assert {s[2] for s in states[0]} == {4}  # privileges only rise
    assert {s[1] for s in states[0]} == {"B"}  # a field only B set


async def test_no_echo_in_the_mesh(sites: dict[str, Site]) -> None:
    oids = await make(sites["b"], [{"type": "Filter", "privileges": 3} for _ in range(10)])
    async with sites["c"].http() as cc:
        await cc.patch(f"/objects/{oids[0]}", json={"comments": "from c"})
    await converged(sites)
    await asyncio.sleep(2.5)  # two catch-up rounds more

    async def sequences() -> list[int]:
        out = []
        for s in sites.values():
            async with s.http() as client:
                out.append((await client.get("/changes", params={"limit": 1})).json()
                           ["last_sequence"])
        return out

    before = await sequences()
    await asyncio.sleep(2.5)
    assert await sequences() == before  # quiet: nothing bounces between the sites


async def test_stopped_site_catches_up(sites: dict[str, Site]) -> None:
    a, b = sites["a"], sites["b"]
    await b.stop_federation()
    oids = await make(a, [{"type": "Filter", "privileges": 3, "attributes": {"name": f"f{i}"}}
                          for i in range(1000)])
    async with b.http() as cb:
        assert (await cb.get(f"/objects/{oids[-1]}")).status_code == 404
    await b.start_federation(sites)
    await converged(sites, 120)
    async with b.http() as cb:
        got = (await cb.post("/objects/get", json={"oids": oids})).json()
        assert len(got["objects"]) == 1000


async def test_peer_broker_lost_everything(sites: dict[str, Site]) -> None:
    a, b = sites["a"], sites["b"]
    await asyncio.to_thread(a.broker.restart_empty)
    oids = await make(a, [{"type": "Filter", "privileges": 3} for _ in range(20)])
    await converged(sites, 120)
    async with b.http() as cb:
        got = (await cb.post("/objects/get", json={"oids": oids})).json()
        assert len(got["objects"]) == 20


async def test_waiting_for_references(sites: dict[str, Site]) -> None:
    """A change that arrives before the object it references waits, then applies."""
    a, b = sites["a"], sites["b"]
    (inst,) = await make(a, [{"type": "Instrument", "privileges": 1}])  # not shared yet
    (chip,) = await make(a, [{"type": "Chip", "privileges": 3, "refs": {"instrument": inst}}])
    await asyncio.sleep(2.5)
    async with b.http() as cb:
        assert (await cb.get(f"/objects/{chip}")).status_code == 404  # waits at b
    status = (await b.fed_client.get("/federation/status")).json()  # type: ignore[union-attr]
    assert next(p for p in status["peers"] if p["site"] == "a")["waiting"] >= 1
    async with a.http() as ca:
        await ca.patch(f"/objects/{inst}", json={"privileges": 3})
    await converged(sites)
    async with b.http() as cb:
        assert (await cb.get(f"/objects/{chip}")).json()["refs"] == {"instrument": inst}


async def test_file_made_at_a_is_read_at_b(sites: dict[str, Site],
                                           tmp_path_factory: pytest.TempPathFactory) -> None:
    a, b = sites["a"], sites["b"]
    procs = []
    try:
        envs = {}
        for s in (a, b):
            envs[s.name] = {**os.environ, "AWE_SITE": s.name,
                            "AWE_STORAGE_ROOT": str(tmp_path_factory.mktemp(f"files-{s.name}")),
                            "AWE_STORAGE_CATALOG_URL": s.catalog,
                            "AWE_STORAGE_SERVICE_TOKEN": ADMIN_TOKEN}
        proc_a, url_a = start_service("storage-a", "awe_storage.main:create_app", envs["a"],
                                      tmp_path_factory.mktemp("sa"))
        procs.append(proc_a)
        envs["b"]["AWE_STORAGE_PEERS"] = (
            f'[{{"site": "a", "url": "{url_a}", "token": "{ADMIN_TOKEN}"}}]')
        proc_b, url_b = start_service("storage-b", "awe_storage.main:create_app", envs["b"],
                                      tmp_path_factory.mktemp("sb"))
        procs.append(proc_b)
        auth = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
        async with httpx.AsyncClient(headers=auth) as http:
            r = await http.put(f"{url_a}/files/red/a/frame.fits", content=b"pixels of site a")
            assert r.status_code == 201
            (oid,) = await make(a, [{"type": "ReducedScienceFrame", "privileges": 3,
                                     "filename": "red/a/frame.fits"}])
            await converged(sites)
            async with b.http() as cb:
                name = (await cb.get(f"/objects/{oid}")).json()["filename"]
            r = await http.get(f"{url_b}/files/{name}")
            assert r.status_code == 200 and r.content == b"pixels of site a"
    finally:
        for p in procs:
            p.stop()


async def test_hub_and_spoke(sites: dict[str, Site]) -> None:
    """a and c follow only the hub b; b follows both: a's objects reach c through b."""
    for s in sites.values():
        await s.stop_federation()
    topology = {"a": ("b",), "b": ("a", "c"), "c": ("b",)}
    for name, follows in topology.items():
        await sites[name].start_federation(sites, follows)
    (from_a,) = await make(sites["a"], [{"type": "Filter", "privileges": 3,
                                         "attributes": {"name": "spoke-a"}}])
    (from_c,) = await make(sites["c"], [{"type": "Filter", "privileges": 3,
                                         "attributes": {"name": "spoke-c"}}])
    await converged(sites)
    async with sites["c"].http() as cc, sites["a"].http() as ca:
        assert (await cc.get(f"/objects/{from_a}")).json()["site"] == "a"
        assert (await ca.get(f"/objects/{from_c}")).json()["site"] == "c"
