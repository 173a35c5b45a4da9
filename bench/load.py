"""Load test (issue 15): many users at once, querying and registering; error rate and latency.

The whole local stack runs (``awe up``) with its state in a temporary folder. The admin
makes ``--clients`` users (each with a token of their own; five users to a shared project)
and a small site to work on: 32 chips, a year of approved master biases per chip, a few
thousand reduced frames, and a public source list (a cone search has rows to find). Then
every client, concurrently (asyncio, an ``httpx.AsyncClient`` each), does ``--ops``
operations (a fixed number, not a fixed time) drawn from a mix:

- ``query``: a DSL query (``POST /query``), following ``next_offset`` for a second page;
- ``get``: ``GET /objects/{oid}`` of a random registered object: its own, a project
  member's or another user's, and the status is checked against the visibility rule
  (another user's private object must answer 404);
- ``best``: ``GET /calibrations/BiasFrame/best`` for a chip and a moment of the year;
- ``cone``: ``GET /sources/cone`` on the source table;
- ``register`` / ``batch``: ``POST /objects`` and ``POST /objects/batch`` (2-20) of frames at
  privileges 1-3;
- ``curate``: ``PATCH /objects/{oid}`` (is_valid, comments) of its own objects, and now and
  then of another user's (403 if visible, 404 if not: both checked);
- ``put`` / ``fetch``: ``PUT /files/users/<name>/...`` of 1-64 KiB and ``GET`` back (sha256
  compared), and now and then another user's file (404: nobody but the writer reads a
  file no object owns).

Every request's status and latency are recorded. An error is a 5xx, a transport error or
any status the rule did not expect. Printed: requests, errors by status, the error rate,
p50/p99 per operation and overall, throughput; beside them the baseline from the same run:
the same mix by ONE client, one request after another (the latency the service gives when
nobody else is asking). Then integrity: every object a client registered exists exactly
once with its creator, its last curation stands, and every file reads back with the sha256
that was put. Exit status 1 if any request erred or any check failed.

Clients and services share the machine: on 2 cores the clients' own event loop takes part
of the CPU, so the latencies under load are an upper bound.

    .venv/bin/python bench/load.py [--clients 50] [--ops 40] [--baseline-ops 200]
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import hashlib
import random
import shutil
import sys
import tempfile
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from _common import line, local_stack, percentile

CHIPS = 32
DAYS = 365
FRAMES = 3000
SOURCES = 20_000
PER_PROJECT = 5  # users to a shared project
KEEPALIVE = 2.0  # seconds a client keeps an idle connection (the services keep it 5)
YEAR = dt.datetime(2003, 1, 1, tzinfo=dt.UTC)
MIX = {"query": 18, "get": 18, "best": 10, "cone": 10, "register": 10, "batch": 5,
       "curate": 12, "put": 9, "fetch": 8}


@dataclass
class Sample:
    op: str
    status: int  # 0: a transport error
    ms: float
    expected: bool


@dataclass
class Registered:
    """An object a load client registered, and what its curation must be at the end."""

    oid: str
    tag: str
    creator: str
    project: str
    privileges: int
    is_valid: int = 1
    comments: str | None = None


@dataclass
class World:
    """What everyone shares: the site's seed and everything the clients made so far."""

    chips: list[str]  # chip names
    chip_oids: dict[str, str]
    filters: dict[str, str]
    objects: list[Registered] = field(default_factory=list)
    files: dict[str, tuple[str, str]] = field(default_factory=dict)  # name -> (writer, sha)
    samples: list[Sample] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


@dataclass
class User:
    name: str
    token: str
    project: str  # the shared project (its default one)


def may_see(user: User, obj: Registered) -> bool:
    """The visibility rule as the load test states it (awecore.visibility is the real one)."""
    return (obj.creator == user.name or obj.privileges >= 3
            or (obj.privileges == 2 and obj.project == user.project))


class Client:
    """One user doing its operations; every request goes through ``call``."""

    def __init__(self, user: User, env: dict[str, str], world: World, seed: int,
                 record: list[Sample]) -> None:
        self.user = user
        self.world = world
        self.rng = random.Random(seed)
        self.record = record
        headers = {"Authorization": f"Bearer {user.token}"}
        # an idle connection is dropped by the client before the server closes it (uvicorn:
        # 5 s): at httpx's default of 5 s too, a request sent on a connection the server is
        # closing that instant fails (ReadError), a race of the two clocks, not the service
        limits = httpx.Limits(keepalive_expiry=KEEPALIVE)
        self.catalog = httpx.AsyncClient(base_url=env["AWE_CATALOG_URL"], headers=headers,
                                         timeout=120, limits=limits)
        self.storage = httpx.AsyncClient(base_url=env["AWE_STORAGE_URL"], headers=headers,
                                         timeout=120, limits=limits)
        self.mine: list[Registered] = []
        self.files: list[str] = []
        self.n = 0

    async def close(self) -> None:
        await self.catalog.aclose()
        await self.storage.aclose()

    async def call(self, op: str, http: httpx.AsyncClient, method: str, url: str,
                   expect: set[int], **kw: Any) -> httpx.Response | None:
        t = time.perf_counter()
        try:
            r = await http.request(method, url, **kw)
            _ = r.content
        except httpx.HTTPError as exc:
            self.record.append(Sample(op, 0, (time.perf_counter() - t) * 1000, False))
            self.world.errors.append(f"{op} {method} {url}: {type(exc).__name__}: {exc}")
            return None
        ok = r.status_code in expect
        self.record.append(Sample(op, r.status_code, (time.perf_counter() - t) * 1000, ok))
        if not ok:
            self.world.errors.append(f"{op} {method} {url} as {self.user.name}: "
                                     f"{r.status_code} (expected {sorted(expect)}) "
                                     f"{r.text[:200]}")
            return None
        return r

    def frame(self) -> dict[str, Any]:
        self.n += 1
        priv = self.rng.choice((1, 1, 2, 3))
        return {"type": "ReducedScienceFrame", "privileges": priv,
                **({"project": self.user.project} if priv == 2 else {}),
                "attributes": {"exptime": 300.0, "object": f"LOAD_{self.user.name}_{self.n}",
                               "imstat": {"mean": 1000.0, "stdev": self.rng.uniform(20, 40)}},
                "refs": {"chip": self.world.chip_oids[self.rng.choice(self.world.chips)],
                         "filter": self.world.filters[self.rng.choice("gr")]}}

    def keep(self, body: dict[str, Any], oid: str) -> None:
        obj = Registered(oid, body["attributes"]["object"], self.user.name,
                         body.get("project", self.user.project), body["privileges"])
        self.mine.append(obj)
        self.world.objects.append(obj)

    async def op_query(self) -> None:
        chip = self.rng.choice(self.world.chips)
        spec = {"cls": "ReducedScienceFrame", "where": {"node": "and", "items": [
            {"node": "compare", "op": "eq", "path": ["chip", "name"], "value": chip},
            {"node": "compare", "op": "eq", "path": ["filter", "name"],
             "value": self.rng.choice("gr")}]}}
        offset: int | None = 0
        for _ in range(2):  # a page and the next
            r = await self.call("query", self.catalog, "POST", "/query", {200},
                                json={"query": spec, "offset": offset, "limit": 20})
            if r is None:
                return
            offset = r.json()["next_offset"]
            if offset is None:
                return

    async def op_get(self) -> None:
        pool = self.world.objects
        if not pool:
            return await self.op_query()
        obj = self.rng.choice(self.mine) if self.mine and self.rng.random() < 0.3 \
            else self.rng.choice(pool)
        await self.call("get", self.catalog, "GET", f"/objects/{obj.oid}",
                        {200} if may_see(self.user, obj) else {404})

    async def op_best(self) -> None:
        when = YEAR + dt.timedelta(days=self.rng.uniform(2, DAYS - 2))
        r = await self.call("best", self.catalog, "GET", "/calibrations/BiasFrame/best", {200},
                            params={"chip": self.rng.choice(self.world.chips),
                                    "time": when.isoformat()})
        if r is not None and r.json()["type"] != "BiasFrame":
            self.world.errors.append(f"best answered a {r.json()['type']}")

    async def op_cone(self) -> None:
        await self.call("cone", self.catalog, "GET", "/sources/cone", {200},
                        params={"ra": self.rng.uniform(150.5, 151.5),
                                "dec": self.rng.uniform(1.5, 2.5), "radius": 0.1})

    async def op_register(self) -> None:
        body = self.frame()
        r = await self.call("register", self.catalog, "POST", "/objects", {201}, json=body)
        if r is not None:
            self.keep(body, r.json()["oid"])

    async def op_batch(self) -> None:
        bodies = [self.frame() for _ in range(self.rng.randint(2, 20))]
        r = await self.call("batch", self.catalog, "POST", "/objects/batch", {201},
                            json={"objects": bodies})
        if r is not None:
            for body, oid in zip(bodies, r.json()["oids"], strict=True):
                self.keep(body, oid)

    async def op_curate(self) -> None:
        others = [o for o in self.world.objects[-500:] if o.creator != self.user.name]
        if others and self.rng.random() < 0.15:  # someone else's: refused
            obj = self.rng.choice(others)
            await self.call("curate", self.catalog, "PATCH", f"/objects/{obj.oid}",
                            {403} if may_see(self.user, obj) else {404},
                            json={"comments": "not mine"})
            return
        if not self.mine:
            return await self.op_register()
        obj = self.rng.choice(self.mine)
        valid = self.rng.choice((0, 1))
        comments = f"{self.user.name} {self.rng.getrandbits(32):08x}"
        r = await self.call("curate", self.catalog, "PATCH", f"/objects/{obj.oid}", {200},
                            json={"is_valid": valid, "comments": comments})
        if r is not None:
            obj.is_valid, obj.comments = valid, comments

    async def op_put(self) -> None:
        data = self.rng.randbytes(self.rng.randint(1024, 64 * 1024))
        name = f"users/{self.user.name}/load-{len(self.files)}-{self.rng.getrandbits(40):x}.bin"
        r = await self.call("put", self.storage, "PUT", f"/files/{name}", {201}, content=data)
        if r is not None:
            self.files.append(name)
            self.world.files[name] = (self.user.name, hashlib.sha256(data).hexdigest())

    async def op_fetch(self) -> None:
        others = [n for n, (w, _) in self.world.files.items() if w != self.user.name]
        if others and self.rng.random() < 0.2:  # a file only its writer may read
            await self.call("fetch", self.storage, "GET", f"/files/{self.rng.choice(others)}",
                            {404})
            return
        if not self.files:
            return await self.op_put()
        name = self.rng.choice(self.files)
        r = await self.call("fetch", self.storage, "GET", f"/files/{name}", {200})
        if r is not None and hashlib.sha256(r.content).hexdigest() != self.world.files[name][1]:
            self.world.errors.append(f"{name} read back other bytes")

    async def run(self, ops: int) -> None:
        names, weights = list(MIX), list(MIX.values())
        for _ in range(ops):
            await getattr(self, f"op_{self.rng.choices(names, weights)[0]}")()


async def setup(env: dict[str, str], clients: int) -> tuple[World, list[User], User]:
    """The site's seed and the users (one more for the baseline), as the admin."""
    async with httpx.AsyncClient(base_url=env["AWE_CATALOG_URL"], timeout=600, headers={
            "Authorization": f"Bearer {env['AWE_TOKEN']}"}) as admin:
        async def post(path: str, body: Any) -> Any:
            r = await admin.post(path, json=body)
            if r.status_code >= 300:
                raise SystemExit(f"setup: {path}: {r.status_code} {r.text[:300]}")
            return r.json()

        names = [f"ccd{i:02d}" for i in range(CHIPS)]
        chips = dict(zip(names, (await post("/objects/batch", {"objects": [
            {"type": "Chip", "privileges": 3, "attributes": {"name": n}} for n in names]}))
            ["oids"], strict=True))
        filters = dict(zip("gr", (await post("/objects/batch", {"objects": [
            {"type": "Filter", "privileges": 3, "attributes": {"name": n}} for n in "gr"]}))
            ["oids"], strict=True))
        biases = [{"type": "BiasFrame", "privileges": 3, "refs": {"chip": c},
                   "timestamp_start": (YEAR + dt.timedelta(days=d - 1)).isoformat(),
                   "timestamp_end": (YEAR + dt.timedelta(days=d + 1)).isoformat()}
                  for c in chips.values() for d in range(DAYS)]
        for i in range(0, len(biases), 5000):
            await post("/objects/batch", {"objects": biases[i:i + 5000]})
        rng = random.Random(15)
        frames = [{"type": "ReducedScienceFrame", "privileges": 3,
                   "attributes": {"exptime": 300.0, "object": f"KIDS_{i}"},
                   "refs": {"chip": chips[names[i % CHIPS]], "filter": filters["gr"[i % 2]]}}
                  for i in range(FRAMES)]
        await post("/objects/batch", {"objects": frames})
        (sourcelist,) = (await post("/objects/batch", {"objects": [
            {"type": "SourceList", "privileges": 3}]}))["oids"]
        await post(f"/sources/{sourcelist}", {
            "ra": [rng.uniform(150, 152) for _ in range(SOURCES)],
            "dec": [rng.uniform(1, 3) for _ in range(SOURCES)],
            "mag": [rng.uniform(16, 24) for _ in range(SOURCES)]})
        users = []
        for k in range(clients + 1):
            name = f"load{k:03d}" if k < clients else "solo"
            project = f"loadproj{k // PER_PROJECT}" if k < clients else "solo-project"
            if k % PER_PROJECT == 0 or k == clients:
                await post("/projects", {"name": project})
            await post("/users", {"name": name, "project": project})
            r = await admin.post(f"/projects/{project}/members", json={"user": name})
            if r.status_code not in (200, 201, 409):
                raise SystemExit(f"setup: member {name}: {r.status_code} {r.text[:300]}")
            token = (await post("/tokens", {"user": name, "label": "load test"}))["token"]
            users.append(User(name, token, project))
    return World(names, chips, filters), users[:-1], users[-1]


async def drive(env: dict[str, str], world: World, users: list[User], ops: int,
                seed: int) -> tuple[list[Sample], float, list[Client]]:
    record: list[Sample] = []
    clients = [Client(u, env, world, seed + i, record) for i, u in enumerate(users)]
    try:
        start = time.perf_counter()
        await asyncio.gather(*(c.run(ops) for c in clients))
        return record, time.perf_counter() - start, clients
    finally:
        for c in clients:
            await c.close()


async def check(env: dict[str, str], world: World) -> list[str]:
    """Integrity after the load, as the admin: objects once each, with creator and curation;
    files byte for byte."""
    problems: list[str] = []
    headers = {"Authorization": f"Bearer {env['AWE_TOKEN']}"}
    async with httpx.AsyncClient(base_url=env["AWE_CATALOG_URL"], headers=headers,
                                 timeout=600) as catalog:
        seen: Counter[str] = Counter()
        stored: dict[str, dict[str, Any]] = {}
        spec = {"cls": "ReducedScienceFrame", "where": {
            "node": "like", "path": ["object"], "pattern": "LOAD_*"}}
        offset: int | None = 0
        while offset is not None:
            r = await catalog.post("/query", json={"query": spec, "offset": offset,
                                                   "limit": 1000})
            if r.status_code != 200:
                return [f"integrity query: {r.status_code} {r.text[:300]}"]
            page = r.json()
            for o in page["objects"]:
                seen[o["attributes"]["object"]] += 1
                stored[o["oid"]] = o
            offset = page["next_offset"]
        for obj in world.objects:
            got = stored.get(obj.oid)
            if seen[obj.tag] != 1 or got is None:
                problems.append(f"{obj.tag}: {seen[obj.tag]} objects (oid {obj.oid} "
                                f"{'found' if got else 'missing'})")
                continue
            for key, want in (("creator", obj.creator), ("project", obj.project),
                              ("privileges", obj.privileges), ("is_valid", obj.is_valid),
                              ("comments", obj.comments)):
                if got[key] != want:
                    problems.append(f"{obj.tag}: {key} is {got[key]!r}, not {want!r}")
        extra = set(seen) - {o.tag for o in world.objects}
        if extra:
            problems.append(f"{len(extra)} objects registered that no client was told of")
    async with httpx.AsyncClient(base_url=env["AWE_STORAGE_URL"], headers=headers,
                                 timeout=600) as storage:
        for name, (_, sha) in world.files.items():
            r = await storage.get(f"/files/{name}")
            if r.status_code != 200 or hashlib.sha256(r.content).hexdigest() != sha:
                problems.append(f"{name}: {r.status_code}, sha256 differs or file missing")
    return problems


def per_op(samples: list[Sample]) -> dict[str, list[float]]:
    out: dict[str, list[float]] = defaultdict(list)
    for s in samples:
        out[s.op].append(s.ms)
        out["all"].append(s.ms)
    return out


def report(load: list[Sample], took: float, solo: list[Sample], solo_took: float,
           clients: int, ops: int) -> int:
    """The figures; returns the number of erring requests."""
    errors = Counter(s.status for s in load if not s.expected)
    refused = Counter(s.status for s in load if s.expected and s.status >= 400)
    bad = sum(errors.values())
    print(f"\nload: {clients} clients x {ops} operations, {len(load):,} requests in "
          f"{took:.1f} s; baseline: 1 client, {len(solo):,} requests one after another")
    print(f"errors by status: {dict(errors) or 'none'} (0 = transport error); "
          f"expected refusals checked: {dict(refused)}")
    print(f"error rate: {bad / max(1, len(load)):.4%} ({bad} of {len(load):,}; goal 0)")
    line("throughput (requests/s)", len(load) / took, len(solo) / solo_took, "req/s", True)
    # Little's law: with this many requests waiting at once, a request's latency under load is
    # mostly its turn in the queue (in-flight / throughput), not its own work
    print(f"requests in flight on average: {sum(s.ms for s in load) / 1000 / took:.1f} "
          f"(queueing: {sum(s.ms for s in load) / len(load):,.0f} ms mean latency "
          f"= in flight / throughput)")
    ours, base = per_op(load), per_op(solo)
    for op in ["all", *MIX]:
        if op not in ours or op not in base:
            continue
        for p in (50, 99):
            line(f"{op} p{p} ({len(ours[op]):,} under load)", percentile(ours[op], p),
                 percentile(base[op], p), "ms", False)
    return bad + sum(1 for s in solo if not s.expected)


async def main_async(env: dict[str, str], clients: int, ops: int, baseline_ops: int) -> int:
    t = time.perf_counter()
    world, users, solo_user = await setup(env, clients)
    print(f"seeded {CHIPS} chips, {CHIPS * DAYS:,} biases, {FRAMES:,} frames, {SOURCES:,} "
          f"sources and {clients + 1} users in {time.perf_counter() - t:.0f} s")
    # the baseline first, one client alone on a quiet stack; then everyone at once
    solo, solo_took, _ = await drive(env, world, [solo_user], baseline_ops, seed=1000)
    solo_errors = list(world.errors)
    world.errors.clear()
    load, took, _ = await drive(env, world, users, ops, seed=1)
    bad = report(load, took, solo, solo_took, clients, ops)
    for e in (solo_errors + world.errors)[:20]:
        print("  error:", e)
    t = time.perf_counter()
    problems = await check(env, world)
    print(f"integrity: {len(world.objects):,} objects and {len(world.files):,} files checked "
          f"in {time.perf_counter() - t:.1f} s: "
          f"{'all as registered, curated and put' if not problems else 'PROBLEMS'}")
    for p in problems[:20]:
        print("  integrity:", p)
    return 1 if bad or problems or solo_errors or world.errors else 0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--ops", type=int, default=40, help="operations per client")
    parser.add_argument("--baseline-ops", type=int, default=200,
                        help="operations of the one sequential client")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="awe-bench-load-"))
    work.chmod(0o711)  # PostgreSQL runs as nobody under root: it must get through
    code = 2
    try:
        t = time.perf_counter()
        with local_stack(work / "state") as env:
            print(f"stack up in {time.perf_counter() - t:.0f} s")
            code = asyncio.run(main_async(env, args.clients, args.ops, args.baseline_ops))
    finally:
        if code == 0:
            shutil.rmtree(work, ignore_errors=True)
        else:  # the services' logs say what went wrong
            print(f"logs kept in {work / 'state'}", file=sys.stderr)
    sys.exit(code)


if __name__ == "__main__":
    main()
