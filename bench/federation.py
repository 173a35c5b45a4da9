"""Federation benchmarks on two local stacks (sites a and b; b follows a):

- replication lag p50/p95 while site a takes a steady 500 changes/s, measured from each
  object's creation at a to its arrival in b's changelog (one machine, one clock);
- catch-up rate after a partition (b's federation stopped while a takes N changes);
beside the raw catalog write rate at site a, in the same run.

    .venv/bin/python bench/federation.py [--rate 500] [--seconds 20] [--partition 20000]
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import shutil
import signal
import statistics
import tempfile
import time
from pathlib import Path

import httpx

from awecore.events import ChangePage
from awecore.stack import Stack, StackSettings


def objects(n: int, tag: str) -> dict[str, list[dict[str, object]]]:
    return {"objects": [{"type": "Filter", "privileges": 3, "attributes": {"name": f"{tag}{i}"}}
                        for i in range(n)]}


def wait_caught_up(fed: str, token: str, seconds: float = 600) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        status = httpx.get(f"{fed}/federation/status", timeout=30,
                           headers={"Authorization": f"Bearer {token}"}).json()
        if all(p["lag_changes"] == 0 and p["waiting"] == 0 for p in status["peers"]):
            return
        time.sleep(0.1)
    raise TimeoutError("site b did not catch up")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rate", type=int, default=500)
    parser.add_argument("--seconds", type=int, default=20)
    parser.add_argument("--partition", type=int, default=20_000)
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="awe-bench-federation-"))
    root.chmod(0o711)
    stacks: list[Stack] = []
    try:
        site_a = Stack(StackSettings(state_dir=root / "a", site="a"))
        stacks.append(site_a)
        env_a = site_a.up()
        os.environ["AWE_FEDERATION_PEERS"] = json.dumps([{
            "site": "a", "catalog_url": env_a["AWE_CATALOG_URL"], "token": env_a["AWE_TOKEN"],
            "kafka_bootstrap_servers": env_a["AWE_KAFKA_BOOTSTRAP_SERVERS"]}])
        os.environ["AWE_FEDERATION_CATCH_UP_SECONDS"] = "1"
        site_b = Stack(StackSettings(state_dir=root / "b", site="b"))
        stacks.append(site_b)
        env_b = site_b.up()
        a = httpx.Client(base_url=env_a["AWE_CATALOG_URL"], timeout=600,
                         headers={"Authorization": f"Bearer {env_a['AWE_TOKEN']}"})
        b = httpx.Client(base_url=env_b["AWE_CATALOG_URL"], timeout=600,
                         headers={"Authorization": f"Bearer {env_b['AWE_TOKEN']}"})
        print(f"federation benchmark: sites a and b on 127.0.0.1, b follows a "
              f"({args.rate} changes/s for {args.seconds} s; partition of {args.partition:,})")

        # the raw write rate of site a's catalog
        n = 20_000
        t = time.perf_counter()
        for _ in range(0, n, 5000):
            a.post("/objects/batch", json=objects(5000, "raw")).raise_for_status()
        write_rate = n / (time.perf_counter() - t)
        wait_caught_up(env_b["AWE_FEDERATION_URL"], env_b["AWE_TOKEN"])
        start_seq = b.get("/changes", params={"limit": 1}).json()["last_sequence"]

        # steady load: batches of rate/10 every 100 ms
        per_tick = max(1, args.rate // 10)
        next_tick = time.perf_counter()
        for k in range(args.seconds * 10):
            a.post("/objects/batch", json=objects(per_tick, f"s{k}-")).raise_for_status()
            next_tick += 0.1
            time.sleep(max(0.0, next_tick - time.perf_counter()))
        wait_caught_up(env_b["AWE_FEDERATION_URL"], env_b["AWE_TOKEN"])
        lags = []
        after = start_seq
        while True:
            page = ChangePage.model_validate(b.get("/changes", params={
                "after": after, "limit": 5000}).json())
            for e in page.events:
                if e.data.kind == "created":
                    lags.append((e.time - e.data.object.creation_date).total_seconds() * 1000)
            if page.next_after is None:
                break
            after = page.next_after
        q = statistics.quantiles(lags, n=100)
        print(f"replication lag at {args.rate}/s ({len(lags):,} objects): p50 {q[49]:8.1f} ms"
              f"   p95 {q[94]:8.1f} ms")

        # a partition: b's federation down while a takes changes, then back
        state = json.loads((root / "b" / "stack.json").read_text())
        os.kill(state["pids"]["federation"], signal.SIGKILL)
        time.sleep(0.5)
        for i in range(0, args.partition, 5000):
            a.post("/objects/batch", json=objects(min(5000, args.partition - i), f"p{i}-")
                   ).raise_for_status()
        t = time.perf_counter()
        site_b.up()  # restarts what is not running: the federation service
        wait_caught_up(env_b["AWE_FEDERATION_URL"], env_b["AWE_TOKEN"])
        catch_up_rate = args.partition / (time.perf_counter() - t)
        print(f"catch-up after a partition ({args.partition:,} changes): "
              f"{catch_up_rate:10,.0f} changes/s   raw catalog write rate {write_rate:10,.0f} "
              f"objects/s   ratio {catch_up_rate / write_rate:5.2f} (higher is better)")
        da, db = a.get("/digest").json(), b.get("/digest").json()
        print(f"digests {'match' if da['digest'] == db['digest'] else 'DIFFER'}: "
              f"{da['objects']:,} shared objects at a, {db['objects']:,} at b "
              f"(at {dt.datetime.now(dt.UTC):%H:%M:%S})")
    finally:
        for s in reversed(stacks):
            s.down()
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
