"""Three sites on one machine, each with its PostgreSQL, broker, catalog, relay, federation.

Full mesh: every site follows the other two, so two-site scenarios and loops are both here.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import os
import shutil
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
from asgi_lifespan import LifespanManager
from conftest import ADMIN_TOKEN, start_service
from pydantic import SecretStr

from awe_catalog.config import CatalogSettings
from awe_catalog.storage.objects import CHANGES_LOCK
from awe_federation.config import FederationSettings, PeerSite
from awe_federation.main import create_app
from awecore.events import OBJECT_CURATED, CatalogEvent, ObjectCurated
from awecore.model import CurationUpdate
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
        # start-up and shutdown (pool, migrations, followers) slow down under load: the
        # timeouts only guard against a hang (asgi-lifespan's default is 5 s)
        self.fed = LifespanManager(create_app(self.settings(sites, follows)),
                                   startup_timeout=120, shutdown_timeout=120)
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


@asynccontextmanager
async def federated(names: Sequence[str], prefix: str) -> AsyncIterator[dict[str, Site]]:
    """Sites of their own, each following all the others (a full mesh), stopped after."""
    root = Path(tempfile.mkdtemp(prefix=prefix))
    os.chmod(root, 0o711)
    made: dict[str, Site] = {}
    try:
        for name in names:
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


@pytest.fixture(scope="module")
async def sites() -> AsyncIterator[dict[str, Site]]:
    async with federated(NAMES, "awe-sites-") as made:
        yield made


async def digests(sites: dict[str, Site]) -> dict[str, tuple[int, str]]:
    out = {}
    for name, s in sites.items():
        async with s.http() as c:
            d = (await c.get("/digest")).json()
            out[name] = (d["objects"], d["digest"])
    return out


async def converged(sites: dict[str, Site], seconds: float = 120) -> tuple[int, str]:
    """Once every site has the same shared catalogue (the deadline only guards a hang)."""
    deadline = time.monotonic() + seconds
    while True:
        got = await digests(sites)
        if len(set(got.values())) == 1:
            return next(iter(got.values()))
        if time.monotonic() > deadline:
            raise AssertionError(f"sites did not converge: {got}")
        await asyncio.sleep(0.3)


async def peer_status(site: Site, peer: str) -> dict[str, Any]:
    assert site.fed_client is not None
    r = await site.fed_client.get("/federation/status")
    assert r.status_code == 200, r.text
    return dict(next(p for p in r.json()["peers"] if p["site"] == peer))


async def followed(site: Site, peer: str, done: Callable[[dict[str, Any]], bool], what: str,
                   seconds: float = 120) -> dict[str, Any]:
    """``site``'s status of following ``peer``, once ``done(status)`` holds."""
    deadline = time.monotonic() + seconds
    while True:
        got = await peer_status(site, peer)
        if done(got):
            return got
        if time.monotonic() > deadline:
            raise AssertionError(f"{site.name} following {peer}: not {what}: {got}")
        await asyncio.sleep(0.3)


async def sequences(sites: dict[str, Site]) -> dict[str, int]:
    """Each site's last changelog sequence."""
    out = {}
    for name, s in sites.items():
        async with s.http() as client:
            out[name] = int((await client.get("/changes", params={"limit": 1})).json()
                            ["last_sequence"])
    return out


async def quiet(sites: dict[str, Site], seconds: float = 120) -> dict[str, int]:
    """Each site's last sequence, once nothing is in flight: every follower has applied its
    peer's changelog up to the sequences read before, and no site recorded anything since.
    Whatever a change brings about is recorded before its follower's cursor passes it, so
    at that fixed point nothing more can follow (a bouncing echo never reaches it)."""
    deadline = time.monotonic() + seconds
    while True:
        before = await sequences(sites)
        behind = {}
        for s in sites.values():
            assert s.fed_client is not None
            for p in (await s.fed_client.get("/federation/status")).json()["peers"]:
                if p["applied_sequence"] < before[p["site"]]:
                    behind[f"{s.name}<-{p['site']}"] = p["applied_sequence"]
        if not behind and await sequences(sites) == before:
            return before
        if time.monotonic() > deadline:
            raise AssertionError(f"never quiet: sequences {before}, cursors behind {behind}")
        await asyncio.sleep(0.3)


async def make(site: Site, objects: list[dict[str, Any]]) -> list[str]:
    async with site.http() as c:
        r = await c.post("/objects/batch", json={"objects": objects})
        assert r.status_code == 201, r.text
        return list(r.json()["oids"])


async def test_shared_objects_replicate_private_ones_stay(sites: dict[str, Site]) -> None:
    a, b = sites["a"], sites["b"]
    (shared,) = await make(a, [{"type": "Instrument", "privileges": 4,
                                "attributes": {"name": "OMEGACAM"}}])
    (private,) = await make(a, [{"type": "Instrument", "privileges": 1,
                                 "attributes": {"name": "secret"}}])
    (site_only,) = await make(a, [{"type": "Instrument", "privileges": 3,  # a's users only
                                   "attributes": {"name": "local"}}])
    chips = await make(a, [{"type": "Chip", "privileges": 4, "attributes": {"name": f"c{i}"},
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
        assert (await cb.get(f"/objects/{site_only}")).status_code == 404
        assert (await ca.get(f"/objects/{site_only}")).status_code == 200
    # b has the objects; its cursor on a's changelog moves on after they are applied
    peer_a = await followed(b, "a", lambda p: p["lag_changes"] == 0, "caught up")
    assert peer_a["last_error"] is None
    metrics = (await b.fed_client.get("/metrics")).text  # type: ignore[union-attr]
    assert f'awe_federation_applied_sequence{{peer="a"}} {float(peer_a["applied_sequence"])}' \
        in metrics


async def test_concurrent_curation_converges(sites: dict[str, Site]) -> None:
    a, b, c = sites["a"], sites["b"], sites["c"]
    oids = await make(a, [{"type": "BiasFrame", "privileges": 4} for _ in range(5)])
    await converged(sites)
    async with a.http() as ca, b.http() as cb, c.http() as cc:
        patched = await asyncio.gather(*(client.patch(f"/objects/{oid}", json=change)
                                         for oid in oids
                                         for client, change in (
                                             (ca, {"is_valid": 0}),
                                             (cb, {"is_valid": 2, "comments": "B"}),
                                             (cc, {"privileges": 5}))))
        # every curation took (a site's replication once deadlocked with a local one)
        assert [r.status_code for r in patched] == [200] * len(patched), \
            [r.text for r in patched if r.status_code != 200]
    await converged(sites)
    states = []
    for s in (a, b, c):  # fresh connections: pooled ones may have idled past keep-alive
        async with s.http() as client:
            got = (await client.post("/objects/get", json={"oids": oids})).json()["objects"]
        states.append([(o["is_valid"], o["comments"], o["privileges"])
                       for o in sorted(got, key=lambda o: o["oid"])])
    assert states[0] == states[1] == states[2]
    assert {s[2] for s in states[0]} == {5}  # privileges only rise
    assert {s[1] for s in states[0]} == {"B"}  # a field only B set


async def test_no_echo_in_the_mesh(sites: dict[str, Site]) -> None:
    """Each change is recorded once at every site, however many paths it arrives by."""
    start = await quiet(sites)
    oids = await make(sites["b"], [{"type": "Filter", "privileges": 4} for _ in range(10)])
    await converged(sites)  # c has them: it can curate one
    async with sites["c"].http() as cc:
        r = await cc.patch(f"/objects/{oids[0]}", json={"comments": "from c"})
        assert r.status_code == 200, r.text
    await converged(sites)
    end = await quiet(sites)  # nothing in flight, nothing bouncing between the sites
    assert {n: end[n] - start[n] for n in sites} == {n: 11 for n in sites}


async def test_stopped_site_catches_up(sites: dict[str, Site]) -> None:
    a, b = sites["a"], sites["b"]
    await b.stop_federation()
    oids = await make(a, [{"type": "Filter", "privileges": 4, "attributes": {"name": f"f{i}"}}
                          for i in range(1000)])
    async with b.http() as cb:
        assert (await cb.get(f"/objects/{oids[-1]}")).status_code == 404
    await b.start_federation(sites)
    await converged(sites, 300)
    async with b.http() as cb:
        got = (await cb.post("/objects/get", json={"oids": oids})).json()
        assert len(got["objects"]) == 1000


async def test_peer_broker_lost_everything(sites: dict[str, Site]) -> None:
    a, b = sites["a"], sites["b"]
    await asyncio.to_thread(a.broker.restart_empty)
    oids = await make(a, [{"type": "Filter", "privileges": 4} for _ in range(20)])
    await converged(sites, 300)
    async with b.http() as cb:
        got = (await cb.post("/objects/get", json={"oids": oids})).json()
        assert len(got["objects"]) == 20


async def test_waiting_for_references(sites: dict[str, Site]) -> None:
    """A change that arrives before the object it references waits, then applies."""
    a, b = sites["a"], sites["b"]
    (inst,) = await make(a, [{"type": "Instrument", "privileges": 1}])  # not shared yet
    (chip,) = await make(a, [{"type": "Chip", "privileges": 4, "refs": {"instrument": inst}}])
    await followed(b, "a", lambda p: p["waiting"] >= 1, "waiting")  # b has had the chip
    async with b.http() as cb:
        assert (await cb.get(f"/objects/{chip}")).status_code == 404  # waits at b
    async with a.http() as ca:
        r = await ca.patch(f"/objects/{inst}", json={"privileges": 4})
        assert r.status_code == 200, r.text
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
            (oid,) = await make(a, [{"type": "ReducedScienceFrame", "privileges": 4,
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
    (from_a,) = await make(sites["a"], [{"type": "Filter", "privileges": 4,
                                         "attributes": {"name": "spoke-a"}}])
    (from_c,) = await make(sites["c"], [{"type": "Filter", "privileges": 4,
                                         "attributes": {"name": "spoke-c"}}])
    await converged(sites)
    async with sites["c"].http() as cc, sites["a"].http() as ca:
        assert (await cc.get(f"/objects/{from_a}")).json()["site"] == "a"
        assert (await ca.get(f"/objects/{from_c}")).json()["site"] == "c"


async def history(site: Site, oid: str) -> list[dict[str, Any]]:
    async with site.http() as client:
        r = await client.get(f"/objects/{oid}/history")
        assert r.status_code == 200, r.text
        return list(r.json())


async def test_curation_history_replicates(sites: dict[str, Site]) -> None:
    """A window moved at a by its calibration scientist: every site keeps the same history
    row, naming the user and the site where it was made (not the federation's account),
    with the reason and the old and new values. An object curated while private brings
    its history along when it becomes shared. (Run after the hub test, c gets it all
    through the hub b.)"""
    a = sites["a"]
    name = f"alice-{os.urandom(3).hex()}"
    async with a.http() as ca:
        assert (await ca.post("/users", json={"name": name})).status_code == 201
        token = (await ca.post("/tokens", json={"user": name})).json()["token"]
    alice = httpx.AsyncClient(base_url=a.catalog, timeout=60,
                              headers={"Authorization": f"Bearer {token}"})
    async with alice:
        r = await alice.post("/objects/batch", json={"objects": [
            {"type": "BiasFrame", "privileges": p, "timestamp_start": "2003-02-14T00:00:00Z",
             "timestamp_end": "2003-02-15T00:00:00Z"} for p in (4, 1)]})
        assert r.status_code == 201, r.text
        shared, private = r.json()["oids"]
        await converged(sites)
        r = await alice.patch(f"/objects/{shared}", json={
            "timestamp_end": "2003-02-17T00:00:00Z", "reason": "covers the science night"})
        assert r.status_code == 200, r.text
        for change in ({"is_valid": 0, "reason": "amplifier glow"},
                       {"privileges": 4, "reason": "for everyone now"}):
            r = await alice.patch(f"/objects/{private}", json=change)
            assert r.status_code == 200, r.text
    await converged(sites)
    (row,) = await history(a, shared)
    assert (row["by"], row["site"], row["reason"]) == (name, "a", "covers the science night")
    assert row["changes"] == {"timestamp_end": {"old": "2003-02-15T00:00:00Z",
                                                "new": "2003-02-17T00:00:00Z"}}
    made_private = await history(a, private)
    assert [(h["reason"], h["changes"]) for h in made_private] == [
        ("amplifier glow", {"is_valid": {"old": 1, "new": 0}}),
        ("for everyone now", {"privileges": {"old": 1, "new": 4}})]
    for other in (sites["b"], sites["c"]):
        assert await history(other, shared) == [row], other.name
        assert await history(other, private) == made_private, other.name
        async with other.http() as client:
            got = (await client.get(f"/objects/{shared}")).json()
            assert got["timestamp_end"] == "2003-02-17T00:00:00Z"


# -- the merge, interleaved by hand on the session's catalog (no followers involved) -------

def curated(oid: str, site: str, hlc: int, **changes: Any) -> dict[str, Any]:
    """A curation made at another site, as its follower hands it to POST /replicate."""
    return CatalogEvent(
        id=f"{site}-{oid}-{hlc}", source=f"/awe/{site}/catalog", type=OBJECT_CURATED,
        time=dt.datetime.now(dt.UTC), subject=oid, sequence=1,
        data=ObjectCurated(oid=oid, changes=CurationUpdate(**changes), hlc=hlc, site=site),
    ).model_dump(mode="json")


async def replicate(admin: httpx.AsyncClient, *events: dict[str, Any]) -> dict[str, Any]:
    r = await admin.post("/replicate", json={"events": list(events)})
    assert r.status_code == 200, r.text
    return dict(r.json())


async def state(admin: httpx.AsyncClient, oid: str) -> dict[str, Any]:
    r = await admin.get(f"/objects/{oid}")
    assert r.status_code == 200, r.text
    return dict(r.json())


async def test_privileges_merge_by_maximum_whatever_the_clocks(admin: httpx.AsyncClient) -> None:
    """A raise to 4 here, and a curation at b that says 3 with a later clock: the other
    fields go last-writer-wins, privileges to the maximum, in either order of arrival."""
    r = await admin.post("/objects/batch", json={"objects": [
        {"type": "BiasFrame", "privileges": 3} for _ in range(2)]})
    assert r.status_code == 201, r.text
    first, second = r.json()["oids"]

    # the raise here first, then b's later curation arrives
    r = await admin.patch(f"/objects/{first}", json={"privileges": 4})
    assert r.status_code == 200, r.text
    raised = r.json()["curation_hlc"]
    later = curated(first, "b", raised + 1, privileges=3, comments="B", is_valid=2)
    assert len((await replicate(admin, later))["applied"]) == 1  # comments, is_valid win
    got = await state(admin, first)
    assert (got["privileges"], got["comments"], got["is_valid"]) == (4, "B", 2)
    # an older curation loses every field it shares with a newer one, but a raise is a raise
    older = curated(first, "c", raised - 1, privileges=5, comments="old")
    assert len((await replicate(admin, older))["applied"]) == 1
    got = await state(admin, first)
    assert (got["privileges"], got["comments"], got["is_valid"]) == (5, "B", 2)
    assert (await replicate(admin, later, older))["skipped"] == [later["id"], older["id"]]

    # b's curation first, then the raise here: the same merge
    before = (await state(admin, second))["curation_hlc"]
    await replicate(admin, curated(second, "b", before + 1, privileges=3, comments="B"))
    r = await admin.patch(f"/objects/{second}", json={"privileges": 4})
    assert r.status_code == 200, r.text
    got = await state(admin, second)
    assert (got["privileges"], got["comments"]) == (4, "B")


async def changelog_waiters(conn: asyncpg.Connection, n: int, seconds: float = 60) -> None:
    """Until n transactions wait for the catalog's changelog lock (held by ``conn``)."""
    deadline = time.monotonic() + seconds
    while True:
        waiting = await conn.fetchval(
            "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted "
            "AND database = (SELECT oid FROM pg_database WHERE datname = current_database()) "
            "AND ((classid::bigint << 32) | objid::bigint) = $1", CHANGES_LOCK)
        if waiting >= n:
            return
        assert time.monotonic() < deadline, f"{waiting} waiting for the changelog lock, not {n}"
        await asyncio.sleep(0.05)


async def test_replication_and_local_curation_never_deadlock(
        admin: httpx.AsyncClient, catalog_settings: CatalogSettings) -> None:
    """The interleaving of a loaded site: a replicated batch curates y then x while x is
    curated here (the raise to 4 of the concurrent-curation test). Both wait for the
    changelog lock; the batch gets it first. Each must then succeed: neither may hold what
    the other waits for (the batch once held the changelog lock and waited for x's row,
    which the local curation held while it waited for the changelog lock: PostgreSQL broke
    the deadlock by failing one of them, and a failed PATCH loses the raise)."""
    r = await admin.post("/objects/batch", json={"objects": [
        {"type": "BiasFrame", "privileges": 3} for _ in range(2)]})
    assert r.status_code == 201, r.text
    y, x = r.json()["oids"]
    hlc = (await state(admin, x))["curation_hlc"]
    conn = await asyncpg.connect(catalog_settings.database_url.get_secret_value())
    try:
        async with conn.transaction():
            await conn.execute("SELECT pg_advisory_xact_lock($1)", CHANGES_LOCK)
            batch = asyncio.create_task(admin.post("/replicate", json={"events": [
                curated(y, "b", hlc + 1, comments="B"),
                curated(x, "b", hlc + 1, privileges=3, comments="B")]}))
            await changelog_waiters(conn, 1)
            local = asyncio.create_task(admin.patch(f"/objects/{x}", json={"privileges": 4}))
            await changelog_waiters(conn, 2)
        replicated, patched = await asyncio.gather(batch, local)  # the lock is free now
    finally:
        await conn.close()
    assert replicated.status_code == 200, replicated.text
    assert patched.status_code == 200, patched.text
    assert len(replicated.json()["applied"]) == 2
    got = await state(admin, x)
    assert (got["privileges"], got["comments"]) == (4, "B")
    assert (await state(admin, y))["comments"] == "B"


async def test_replicated_curation_keeps_the_origin_history_row(admin: httpx.AsyncClient) -> None:
    """A curation from b is recorded here as b recorded it (its user, time, reason, old
    values), once however often it arrives, and even when it wins no field here."""
    r = await admin.post("/objects/batch", json={"objects": [
        {"type": "BiasFrame", "privileges": 3, "timestamp_start": "2003-02-14T00:00:00Z",
         "timestamp_end": "2003-02-15T00:00:00Z"}]})
    assert r.status_code == 201, r.text
    (oid,) = r.json()["oids"]
    r = await admin.patch(f"/objects/{oid}", json={"is_valid": 0, "reason": "here, later"})
    assert r.status_code == 200, r.text
    hlc = r.json()["curation_hlc"]
    at = dt.datetime(2024, 5, 1, 12, 0, 0, 123456, tzinfo=dt.UTC)  # made before ours
    event = CatalogEvent(
        id=f"b-{oid}", source="/awe/b/catalog", type=OBJECT_CURATED, time=at, subject=oid,
        sequence=1, data=ObjectCurated(
            oid=oid, changes=CurationUpdate(is_valid=2, timestamp_end=dt.datetime(
                2003, 2, 16, tzinfo=dt.UTC)),
            hlc=hlc - 1, site="b", by="bob", at=at, reason="extend for the next night",
            old={"is_valid": 1, "timestamp_end": "2003-02-15T00:00:00Z"}),
    ).model_dump(mode="json")
    assert "reason" not in event["data"]["changes"]  # beside the changes, not among them
    got = await replicate(admin, event)
    assert got["applied"] == [event["id"]]  # the window wins; is_valid lost to ours
    await replicate(admin, event)  # again: nothing new
    now = await state(admin, oid)
    assert (now["is_valid"], now["timestamp_end"]) == (0, "2003-02-16T00:00:00Z")
    r = await admin.get(f"/objects/{oid}/history")
    assert r.status_code == 200, r.text
    rows = r.json()
    assert [(h["by"], h["site"], h["reason"]) for h in rows] == [  # oldest first
        ("bob", "b", "extend for the next night"), ("admin", "test", "here, later")]
    assert dt.datetime.fromisoformat(rows[0]["at"]) == at
    assert rows[0]["changes"] == {
        "is_valid": {"old": 1, "new": 2},
        "timestamp_end": {"old": "2003-02-15T00:00:00Z", "new": "2003-02-16T00:00:00Z"}}
    # what this site records in its changelog names b's user too, for the sites after it
    r = await admin.get("/changes", params={"after": 0, "limit": 1})
    last = r.json()["last_sequence"]
    page = (await admin.get("/changes", params={"after": last - 1})).json()
    (passed_on,) = [e for e in page["events"] if e["subject"] == oid]
    assert passed_on["data"]["by"] == "bob" and passed_on["data"]["site"] == "b"
    assert set(passed_on["data"]["changes"]) == {"timestamp_end"}
