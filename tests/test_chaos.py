"""Faults without loss or duplicates (issue 15): one part of the stack at a time is killed
mid-plan (SIGKILL; PostgreSQL with an immediate shutdown) and started again; the plan is
then made to completion (failed jobs retried through the API), and each time every target
exists once, no product is made twice for the same inputs and parameters, and the
changelog, the catalog changes topic and lineage agree.

The module runs its OWN PostgreSQL and broker (killing them disturbs no other test), with
the catalog, its relay, storage, lineage, the compute API and two workers as processes.
Each round tunes a parameter to a fresh value, so each round makes new products.

The broker keeps its topics, offsets and consumer groups in an S3 bucket on a moto server
of its own (a process that no round kills, so the PostgreSQL round does not touch it): a
killed broker comes back with its log, offsets and groups as Apache Kafka does. A memory
broker comes back empty, which no deployment sees: the changes published before are gone
from the topic (it then starts at the restart), and tansu sometimes refused every later
produce to the re-created jobs topic ("AlreadyExists" in its log).
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import json
import os
import shutil
import signal
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import httpx
import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from conftest import ADMIN_TOKEN, start_service
from test_faults import until
from test_http_contract import service_token

import awecore as awe
from awecore.client import StorageClient
from awecore.events import CatalogEvent, catalog_changes_topic, topic
from awecore.ingest import Ingester, expand
from awecore.records import ObjectOut
from awecore.server.kafka import topic_partitions
from awecore.sim import PRESETS, NightPlan, simulate_night
from awecore.stack import Broker, PostgresServer, ServiceProcess, free_port, pid_alive

pytestmark = pytest.mark.integration
#: the deadlines below only guard against a hang: generous, for a loaded CI machine
SITE = "chaos"
NIGHT = dt.date(2009, 10, 10)  # its own night and its own catalog
CAMERA = dataclasses.replace(PRESETS["tiny"], chips_x=2, chips_y=1, nx=64, ny=96)
CHIPS = ("ccd50", "ccd51")
FILTER = "842"
#: the victims, in order
VICTIMS = ("catalog", "relay", "storage", "worker", "lineage", "federation", "broker",
           "postgres")
#: the jobs topic's partitions (the compute API and the workers are told so)
JOB_PARTITIONS = 8
#: the products are made for every federated site (4), so the mirror site receives them
SHARED: Literal[4] = 4
Job = dict[str, Any]
#: how a job's error names the fault (a part out of reach): such a failure is retried; any
#: other failure is a finding
FAULT_SIGNS = ("ServiceUnavailable", "cannot reach", "onnection", "503")


@dataclass
class Chaos:
    pg: PostgresServer
    broker: Broker
    procs: dict[str, ServiceProcess]
    urls: dict[str, str]
    workers: list[ServiceProcess]
    rounds: list[str] = field(default_factory=list)

    def http(self, service: str) -> httpx.AsyncClient:
        return httpx.AsyncClient(base_url=self.urls[service], timeout=30,
                                 headers={"Authorization": f"Bearer {ADMIN_TOKEN}"})


@pytest.fixture(scope="module")
def chaos(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Chaos]:
    # PostgreSQL runs as 'nobody' under root: its folder must be reachable by others
    folder = Path(tempfile.mkdtemp(prefix="awe-chaos-pg-"))
    folder.chmod(0o755)
    logs = tmp_path_factory.mktemp("chaos-logs")
    # durable: with synchronous_commit off (the other tests' speed setting) an immediate
    # shutdown loses the last commits: jobs the compute API had acknowledged were gone
    pg = PostgresServer(folder / "data", durable=True)
    # the broker's durable storage: a bucket on an S3 server of its own
    s3_port = free_port()
    s3 = ServiceProcess("moto", [sys.executable, "-m", "moto.server", "-H", "127.0.0.1",
                                 "-p", str(s3_port)], dict(os.environ), logs / "moto.log",
                        health_url=f"http://127.0.0.1:{s3_port}/moto-api/")
    storage, storage_env = Broker.s3_storage(f"http://127.0.0.1:{s3_port}", "chaos-broker")
    broker = Broker(logfile=logs / "broker.log", storage=storage, storage_env=storage_env)
    procs: dict[str, ServiceProcess] = {}
    workers: list[ServiceProcess] = []
    files = Path(tempfile.mkdtemp(prefix="awe-chaos-files-"))
    try:
        pg.start()
        s3.start()
        httpx.put(f"http://127.0.0.1:{s3_port}/chaos-broker").raise_for_status()
        broker.start()
        base = {**os.environ, "AWE_SITE": SITE, "AWE_LOG_LEVEL": "INFO"}
        catalog_env = {**base, "AWE_CATALOG_DATABASE_URL": pg.create_database("awe_catalog"),
                       "AWE_CATALOG_KAFKA_BOOTSTRAP_SERVERS": broker.bootstrap_servers,
                       "AWE_CATALOG_ADMIN_TOKEN": ADMIN_TOKEN,
                       "AWE_CATALOG_RELAY_POLL_SECONDS": "0.2",
                       "AWE_CATALOG_RELAY_LAG_LIMIT": "0", "AWE_CATALOG_LOG_LEVEL": "INFO"}
        procs["catalog"], catalog = start_service("catalog", "awe_catalog.main:create_app",
                                                  catalog_env, logs)
        procs["relay"] = ServiceProcess("relay", [sys.executable, "-m", "awe_catalog.relay"],
                                        catalog_env, logs / "relay.log")
        procs["relay"].start()
        procs["storage"], storage = start_service("storage", "awe_storage.main:create_app", {
            **base, "AWE_STORAGE_ROOT": str(files), "AWE_STORAGE_CATALOG_URL": catalog,
            "AWE_STORAGE_SERVICE_TOKEN": service_token(catalog, "chaos-storage")}, logs)
        procs["lineage"], lineage = start_service("lineage", "awe_lineage.main:create_app", {
            **base, "AWE_LINEAGE_DATABASE_URL": pg.create_database("awe_lineage"),
            "AWE_LINEAGE_CATALOG_URL": catalog,
            "AWE_LINEAGE_KAFKA_BOOTSTRAP_SERVERS": broker.bootstrap_servers,
            "AWE_LINEAGE_CATCH_UP_SECONDS": "1",
            "AWE_LINEAGE_SERVICE_TOKEN": service_token(catalog, "chaos-lineage")}, logs)
        # a second site whose federation follows this one (its catalog in the same server)
        mirror_env = {**catalog_env, "AWE_SITE": "mirror",
                      "AWE_CATALOG_DATABASE_URL": pg.create_database("awe_catalog_mirror")}
        procs["mirror"], mirror = start_service("mirror", "awe_catalog.main:create_app",
                                                mirror_env, logs)
        peer = {"site": SITE, "catalog_url": catalog, "token": ADMIN_TOKEN,
                "kafka_bootstrap_servers": broker.bootstrap_servers}
        procs["federation"], federation = start_service(
            "federation", "awe_federation.main:create_app", {
                **base, "AWE_SITE": "mirror",
                "AWE_FEDERATION_DATABASE_URL": pg.create_database("awe_federation_mirror"),
                "AWE_FEDERATION_CATALOG_URL": mirror, "AWE_FEDERATION_SERVICE_TOKEN": ADMIN_TOKEN,
                "AWE_FEDERATION_PEERS": json.dumps([peer]),
                "AWE_FEDERATION_CATCH_UP_SECONDS": "1",
                "AWE_FEDERATION_SESSION_TIMEOUT_MS": "3000"}, logs)
        compute_env = {
            **base, "AWE_COMPUTE_DATABASE_URL": pg.create_database("awe_compute"),
            "AWE_COMPUTE_CATALOG_URL": catalog, "AWE_COMPUTE_STORAGE_URL": storage,
            "AWE_COMPUTE_SERVICE_TOKEN": ADMIN_TOKEN,
            "AWE_COMPUTE_KAFKA_BOOTSTRAP_SERVERS": broker.bootstrap_servers,
            "AWE_COMPUTE_LEASE_SECONDS": "3", "AWE_COMPUTE_REAP_SECONDS": "0.5",
            "AWE_COMPUTE_SESSION_TIMEOUT_MS": "3000",
            "AWE_COMPUTE_JOB_PARTITIONS": str(JOB_PARTITIONS)}
        procs["compute"], compute = start_service("compute", "awe_compute.main:create_app",
                                                  compute_env, logs)
        workers = [ServiceProcess(f"worker{i}", [sys.executable, "-m", "awe_compute.worker"],
                                  compute_env, logs / f"worker{i}.log") for i in range(2)]
        for w in workers:
            w.start()
        night = tmp_path_factory.mktemp("chaos-night")
        simulate_night(night, CAMERA, seed=10, date=NIGHT,
                       plan=NightPlan(n_bias=3, n_dome=2, n_twilight=2, science_fields=1,
                                      exposures_per_field=1, standard=False))
        with awe.CatalogClient(catalog, ADMIN_TOKEN) as client:
            report = Ingester(client, StorageClient(storage, ADMIN_TOKEN).put,
                              privileges=SHARED).ingest(
                expand([night]))
        assert not report.failed, report.failed
        yield Chaos(pg, broker, procs, {"catalog": catalog, "storage": storage,
                                        "lineage": lineage, "compute": compute,
                                        "mirror": mirror, "federation": federation}, workers)
    finally:
        for w in workers:
            w.stop()
        for proc in reversed(list(procs.values())):
            proc.stop()
        broker.stop()
        s3.stop()
        pg.stop()
        shutil.rmtree(folder, ignore_errors=True)
        shutil.rmtree(files, ignore_errors=True)


# -- the faults ----------------------------------------------------------------------------
async def _pg_immediate(pg: PostgresServer) -> None:
    """``pg_ctl stop -m immediate``: SIGQUIT to the postmaster (no checkpoint, every
    backend dropped), then started again on the same port."""
    pid = pg.pid
    assert pid is not None
    os.kill(pid, signal.SIGQUIT)
    await until("PostgreSQL stopped", lambda: _true(not pid_alive(pid)), 60)
    await asyncio.to_thread(pg.start)


async def _true(value: bool) -> bool:
    return value


async def strike(c: Chaos, victim: str, jobs: list[Job]) -> str:
    """Kill the victim and start it again; returns what was done, for the messages."""
    if victim == "postgres":
        await _pg_immediate(c.pg)
        return "PostgreSQL stopped -m immediate and started"
    if victim == "broker":
        pid = c.broker.pid
        c.broker.kill()
        # down long enough to be seen: the compute API's readiness names it
        async with c.http("compute") as compute:
            async def seen_down() -> str | None:
                r = await compute.get("/readyz")
                return r.json()["checks"]["broker"] if r.status_code == 503 else None
            down = await until("the compute API seeing the broker down", seen_down, 60)
        await asyncio.to_thread(c.broker.start)
        return f"broker pid {pid} SIGKILLed ({down!r}) and started, its storage kept"
    if victim == "worker":
        # the worker holding a running job, if one does
        holding = {str(j["worker"]).rsplit(":", 1)[-1] for j in jobs
                   if j["status"] == "running" and j["worker"]}
        proc = next((w for w in c.workers if str(w.pid) in holding), c.workers[0])
        pid = proc.pid
        proc.kill()
        await asyncio.to_thread(proc.start)
        return f"worker pid {pid} SIGKILLed (held a running job: {str(pid) in holding})"
    proc = c.procs[victim]
    pid = proc.pid
    proc.kill()
    await asyncio.to_thread(proc.start, 120)
    return f"{victim} pid {pid} SIGKILLed and started"


# -- reading the state ---------------------------------------------------------------------
async def lookup(compute: httpx.AsyncClient, ids: list[str]) -> list[Job] | None:
    """The jobs, or None while the compute API cannot answer (its database restarting)."""
    try:
        r = await compute.post("/jobs/lookup", json={"ids": ids})
    except httpx.TransportError:
        return None
    return list(r.json()) if r.status_code == 200 else None


async def changelog(catalog: httpx.AsyncClient) -> tuple[list[CatalogEvent], int]:
    events: list[CatalogEvent] = []
    after: int | None = 0
    last = 0
    while after is not None:
        r = await catalog.get("/changes", params={"after": after, "limit": 5000})
        assert r.status_code == 200, r.text
        page = r.json()
        events += [CatalogEvent.model_validate(e) for e in page["events"]]
        after, last = page["next_after"], page["last_sequence"]
    return events, last


async def topic_events(bootstrap: str) -> dict[str, int]:
    """Every event on the changes topic from its beginning: event id -> sequence."""
    name = catalog_changes_topic(SITE)
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False,
                                auto_offset_reset="earliest")
    await consumer.start()
    try:
        parts = consumer.partitions_for_topic(name) or set()
        if not parts:
            parts = set(await consumer._client.cluster.partitions_for_topic(name) or {0})
        tps = [TopicPartition(name, p) for p in parts]
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        seen: dict[str, int] = {}
        while True:
            batch = await consumer.getmany(*tps, timeout_ms=1500)
            if not batch:
                return seen
            for records in batch.values():
                for rec in records:
                    headers = {k: v.decode() for k, v in rec.headers or ()}
                    seen[headers["ce_id"]] = int(headers["ce_sequence"])
    finally:
        await consumer.stop()


async def jobs_topic(bootstrap: str) -> dict[str, int]:
    """The jobs topic's partitions, as the broker tells them."""
    name = topic(SITE, "compute.jobs")
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        return await topic_partitions(admin, [name])
    finally:
        await admin.close()


async def query(catalog: httpx.AsyncClient, cls: str, chip: str) -> list[dict[str, Any]]:
    r = await catalog.post("/query", json={"query": {"cls": cls, "where": {
        "node": "compare", "op": "eq", "path": ["chip", "name"], "value": chip}},
        "limit": 1000})
    assert r.status_code == 200, r.text
    return list(r.json()["objects"])


def product_key(obj: ObjectOut) -> str:
    return json.dumps([obj.type, obj.refs, obj.process_params], sort_keys=True)


async def followed_to(chaos: Chaos, proc: str, what: str, last: int,
                      applied: Callable[[], Awaitable[int | None]]) -> None:
    """Wait until a follower (lineage, federation) has applied the changelog up to
    ``last``; a timeout's message carries the follower's log."""
    async def caught_up() -> int | None:
        try:
            got = await applied()
        except httpx.TransportError:
            return None
        return got if got is not None and got >= last else None
    try:
        await until(what, caught_up, 300)
    except AssertionError as exc:
        raise AssertionError(f"{exc}: {chaos.procs[proc].log_tail(15)}") from None


# -- the rounds ----------------------------------------------------------------------------
@pytest.mark.parametrize("victim", VICTIMS)
async def test_a_fault_mid_plan_loses_and_duplicates_nothing(chaos: Chaos, victim: str) -> None:
    """A plan of two chips' flats with a freshly tuned bias (so the whole chain is made
    anew); the victim is killed once a job runs and started again; the plan is made to
    completion, retrying what failed because of the fault."""
    started = time.monotonic()
    n = len(chaos.rounds) + 1
    chaos.rounds.append(victim)
    params = {"BiasFrame": {"sigma": round(3.0 + n / 100, 2)}}
    targets = [{"cls": "MasterFlatFrame", "date": NIGHT.isoformat(), "chip": chip,
                "filter": FILTER} for chip in CHIPS]
    async with chaos.http("compute") as compute, chaos.http("catalog") as catalog, \
            chaos.http("lineage") as lineage, chaos.http("federation") as federation, \
            chaos.http("mirror") as mirror:
        r = await compute.post("/jobs/plan", json={"targets": targets, "params": params,
                                                   "privileges": SHARED})
        assert r.status_code == 201, f"{victim}: {r.text}"
        submitted = r.json()
        ids = [j["id"] for j in submitted["jobs"]]
        assert len(ids) >= 4, f"{victim}: a plan with little to make: {submitted['plan']}"

        async def one_started() -> list[Job] | None:
            jobs = await lookup(compute, ids)
            return jobs if jobs and any(j["status"] in ("running", "done")
                                        for j in jobs) else None
        jobs = await until(f"{victim}: a job running", one_started, 300)
        done_before = sum(j["status"] == "done" for j in jobs)
        what = await strike(chaos, victim, jobs)
        struck = time.monotonic()
        resumed: list[float] = []  # seconds from the restart to the next job made

        retried: list[str] = []

        async def all_done() -> list[Job] | None:
            jobs = await lookup(compute, ids)
            if jobs is None:
                return None
            if not resumed and sum(j["status"] == "done" for j in jobs) > done_before:
                resumed.append(time.monotonic() - struck)
            for j in jobs:
                # a fault's failure is retried; an input's failure follows its input's retry
                error = j["error"] or ""
                if j["status"] != "failed" or error.startswith("an input failed"):
                    continue
                assert any(sign in error for sign in FAULT_SIGNS), (
                    f"{victim}: {j['cls']} failed, not for want of a part: {error} ({what})")
                r = await compute.post(f"/jobs/{j['id']}/retry")
                if r.status_code == 200:
                    retried.append(f"{j['cls']}: {error}")
            assert not [j for j in jobs if j["status"] == "cancelled"], f"{victim}: {jobs}"
            return jobs if all(j["status"] == "done" for j in jobs) else None
        try:
            jobs = await until(f"{victim}: every job done", all_done, 600)
        except AssertionError as exc:
            states = await lookup(compute, ids) or []
            raise AssertionError(f"{exc} ({what}); " + "; ".join(
                f"{j['cls']} {j['chip']} {j['status']} {j['error']}" for j in states)) from None

        # each target exists once, made with the round's parameters
        r = await catalog.post("/objects/get", json={"oids": [j["product"] for j in jobs]})
        assert r.status_code == 200, r.text
        products = {o["oid"]: o for o in r.json()["objects"]}
        assert set(products) == {j["product"] for j in jobs}, f"{victim}: products missing"
        with awe.CatalogClient(chaos.urls["catalog"], ADMIN_TOKEN) as client:
            made = client.get_many([t for t in submitted["targets"] if t])
            assert [m.chip.name for m in made] == list(CHIPS), victim  # type: ignore[attr-defined]
        for chip in CHIPS:
            bias = await query(catalog, "BiasFrame", chip)
            tuned = [o for o in bias if o["process_params"] == params["BiasFrame"]]
            assert len(tuned) == 1, (f"{victim}: {len(tuned)} BiasFrame on {chip} with "
                                     f"{params} ({what})")
        for j in jobs:  # each product: one object of its class with its inputs and params
            same = [o for o in await query(catalog, j["cls"], j["chip"])
                    if o["refs"] == products[j["product"]]["refs"]
                    and o["process_params"] == products[j["product"]]["process_params"]]
            assert [o["oid"] for o in same] == [j["product"]], (
                f"{victim}: {j['cls']} on {j['chip']}: {len(same)} objects ({what})")

        # the changelog: one 'created' per object, and no product made twice
        events, last = await changelog(catalog)
        created = [e for e in events if e.data.kind == "created"]
        per_oid = Counter(e.subject for e in created)
        twice = {oid: k for oid, k in per_oid.items() if k > 1}
        assert not twice, f"{victim}: objects created more than once: {twice} ({what})"
        keys = Counter(product_key(e.data.object) for e in created  # type: ignore[union-attr]
                       if e.data.object.process_params is not None)  # type: ignore[union-attr]
        again = [k for k, count in keys.items() if count > 1]
        assert not again, f"{victim}: products made twice: {again} ({what})"
        oids = {e.data.object.oid for e in created}  # type: ignore[union-attr]
        for j in jobs:
            assert j["product"] in oids, f"{victim}: job {j['cls']} done, product not created"

        # lineage followed every change, and knows each product's inputs
        async def lineage_applied() -> int:
            r = await lineage.get("/health")
            return int(r.json().get("applied_sequence", 0)) if r.status_code == 200 else 0
        await followed_to(chaos, "lineage", f"{victim}: lineage caught up to {last} ({what})",
                          last, lineage_applied)
        for j in jobs:
            if j["cls"] == "MasterFlatFrame":
                up = await lineage.get(f"/lineage/{j['product']}/upstream")
                assert up.status_code == 200, f"{victim}: {up.text}"
                assert set(j["deps"]) and all(
                    next(x["product"] for x in jobs if x["id"] == d) in up.text
                    for d in j["deps"]), f"{victim}: lineage lacks an input: {up.text[:500]}"

        # federation brought every product to the mirror site, each created there once
        async def federation_applied() -> int | None:
            r = await federation.get("/federation/status")
            if r.status_code != 200:
                return None
            return int(next(p for p in r.json()["peers"] if p["site"] == SITE)["applied_sequence"])
        await followed_to(chaos, "federation",
                          f"{victim}: federation followed to {last} ({what})", last,
                          federation_applied)
        there, _ = await changelog(mirror)
        copies = Counter(e.subject for e in there if e.data.kind == "created")
        assert {j["product"]: copies[j["product"]] for j in jobs} == {
            j["product"]: 1 for j in jobs}, f"{victim}: the mirror's copies ({what})"
        twice = {oid: k for oid, k in copies.items() if k > 1}
        assert not twice, f"{victim}: created more than once at the mirror: {twice} ({what})"

        # the topic holds every created event (ids deduplicated), from the first change on
        async def published() -> dict[str, int] | None:
            seen = await topic_events(chaos.broker.bootstrap_servers)
            return seen if seen and max(seen.values()) >= last else None
        try:
            on_topic = await until(f"{victim}: the relay published up to {last}",
                                   published, 300)
        except AssertionError as exc:
            relay = chaos.procs["relay"]
            raise AssertionError(f"{exc} ({what}); the relay is running: "
                                 f"{relay.is_running()}: {relay.log_tail(15)}") from None
        first = min(on_topic.values())
        topic_note = f"topic {first}..{max(on_topic.values())}, changelog {last}"
        assert first <= 1, (
            f"{victim}: the topic starts at {first}: earlier changes were never published")
        expected = {e.id: e.sequence for e in events if e.sequence >= first}
        missing = sorted(s for i, s in expected.items() if i not in on_topic)
        assert not missing, f"{victim}: changes not on the topic: {missing[:20]} ({what})"
        foreign = {i: s for i, s in on_topic.items() if expected.get(i) != s}
        assert not foreign, f"{victim}: topic events not in the changelog: {foreign}"

        # the jobs topic kept its configured partitions
        name = topic(SITE, "compute.jobs")
        assert await jobs_topic(chaos.broker.bootstrap_servers) == {name: JOB_PARTITIONS}, (
            f"{victim}: the jobs topic's partitions ({what})")
    print(f"\n{victim}: {what}; {len(jobs)} jobs ({done_before} done before the fault), "
          f"retried {retried or 'none'}; {topic_note}; next job made "
          f"{resumed[0] if resumed else float('nan'):.1f} s after the restart; "
          f"{time.monotonic() - started:.1f} s")
