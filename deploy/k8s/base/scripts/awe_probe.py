"""Liveness and readiness of the AWE processes that serve no HTTP, judged by their work:

    python /opt/awe/scripts/awe_probe.py relay live|ready
    python /opt/awe/scripts/awe_probe.py worker live|ready

relay (``python -m awe_catalog.relay``)
    Compares the changelog's newest sequence with the relay's cursor (``outbox_cursor``
    'kafka', which the relay advances once the broker has a batch). Not live when changes
    wait and the cursor has not moved for ``AWE_PROBE_STALL_SECONDS`` while the database and
    the broker both answer: the relay is stuck, and a restart is the cure. When the database
    or the broker does not answer a restart would not help, so it stays live and is not
    ready. Ready: database and broker answer, and it is not stalled.

worker (``python -m awe_compute.worker``)
    Working means: this pod is a member of the consumer group ``awe-compute-<site>`` (the
    broker lists members with their address, this pod's IP) or it holds a running job in the
    jobs table (worker ``<hostname>:<pid>``; a long job can keep it from polling, and so out
    of the group). Not live when it has not been working for ``AWE_PROBE_STALL_SECONDS``
    while database and broker answer. Ready: database and broker answer, and it is working.

Between runs a probe remembers since when it has seen no progress, in ``/tmp`` (an emptyDir),
tied to the start of the container's main process, so that a restarted process gets its
grace period again. Exit status 0 = yes, 1 = no; the reason is printed, and kubectl describe
pod shows it.

The processes also write a heartbeat (``/tmp/awe-heartbeat.json``, and the gauge
``awe_heartbeat_timestamp_seconds`` on their metrics port); these probes judge the work itself
(a loop that goes round but never publishes is still stuck).
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import json
import os
import socket
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = ["RelayFacts", "WorkerFacts", "judge_relay", "judge_worker", "main"]

STATE_DIR = Path(os.environ.get("AWE_PROBE_STATE_DIR", "/tmp"))
TIMEOUT = 8.0  # per check; the probes' timeoutSeconds leave room for two

State = dict[str, Any]


# -- judging (pure) ------------------------------------------------------------------------
@dataclass(frozen=True)
class RelayFacts:
    database: bool  # the catalog's database answered
    broker: bool  # the broker answered
    newest: int = 0  # the changelog's newest sequence
    cursor: int = 0  # the highest sequence the relay has published


def judge_relay(facts: RelayFacts, state: State, now: float, stall: float,
                mode: str) -> tuple[bool, str, State]:
    """(healthy, why, the state to keep) for the relay; mode is 'live' or 'ready'."""
    if not facts.database:
        return mode == "live", "the catalog's database does not answer", state
    waiting = facts.newest - facts.cursor
    if waiting <= 0 or state.get("cursor") != facts.cursor:
        state = {"cursor": facts.cursor, "since": now}
    still = now - float(state["since"]) if waiting > 0 else 0.0
    if still >= stall:
        if not facts.broker:
            return (mode == "live", f"{waiting} changes wait, but the broker does not "
                    "answer (a restart would not help)", state)
        return (False, f"stalled: {waiting} changes wait and the cursor has stayed at "
                f"{facts.cursor} for {still:.0f}s with the broker up", state)
    if mode == "ready" and not facts.broker:
        return False, "the broker does not answer", state
    return True, f"ok: published up to {facts.cursor}, {max(waiting, 0)} waiting", state


@dataclass(frozen=True)
class WorkerFacts:
    database: bool  # the compute database answered
    broker: bool  # the broker answered
    member: bool = False  # this pod is in the consumer group
    running: int = 0  # jobs this pod's worker is running


def judge_worker(facts: WorkerFacts, state: State, now: float, stall: float,
                 mode: str) -> tuple[bool, str, State]:
    """(healthy, why, the state to keep) for a worker; mode is 'live' or 'ready'."""
    if facts.member or facts.running:
        how = "in the consumer group" if facts.member else f"running {facts.running} job(s)"
        return True, f"ok: {how}", {"idle_since": None}
    since = state.get("idle_since") or now
    state = {"idle_since": since}
    if not (facts.database and facts.broker):
        down = "database" if not facts.database else "broker"
        return (mode == "live", f"the {down} does not answer (a restart would not help)",
                state)
    idle = now - float(since)
    if mode == "ready":
        return False, f"not in the consumer group and no job running ({idle:.0f}s)", state
    if idle >= stall:
        return (False, f"out of the consumer group with no job running for {idle:.0f}s "
                "while database and broker answer", state)
    return True, f"not in the consumer group for {idle:.0f}s (allowed {stall:.0f}s)", state


# -- state between runs --------------------------------------------------------------------
def _process_epoch() -> str:
    """When the container's main process started (clock ticks since boot), '' if unknown."""
    try:
        return Path("/proc/1/stat").read_text().rsplit(")", 1)[1].split()[19]
    except (OSError, IndexError):
        return ""


def load_state(kind: str, epoch: str) -> State:
    try:
        kept = json.loads((STATE_DIR / f"awe-probe-{kind}.json").read_text())
    except (OSError, ValueError):
        return {}
    if not isinstance(kept, dict) or kept.get("epoch") != epoch:
        return {}  # another process (a restarted container): start afresh
    return dict(kept.get("state") or {})


def save_state(kind: str, epoch: str, state: State) -> None:
    path = STATE_DIR / f"awe-probe-{kind}.json"
    tmp = path.with_suffix(f".{os.getpid()}")
    with contextlib.suppress(OSError):  # a probe that cannot remember still answers
        tmp.write_text(json.dumps({"epoch": epoch, "state": state}))
        os.replace(tmp, path)


# -- facts (I/O) ---------------------------------------------------------------------------
async def _broker(servers: str, group: str | None = None,
                  host: str | None = None) -> tuple[bool, bool]:
    """(the broker answers, ``host`` is a member of ``group``)."""
    from aiokafka.admin import AIOKafkaAdminClient

    admin = AIOKafkaAdminClient(bootstrap_servers=servers, client_id="awe-probe",
                                request_timeout_ms=int(TIMEOUT * 1000))
    try:
        await asyncio.wait_for(admin.start(), TIMEOUT)
    except Exception:
        with contextlib.suppress(Exception):
            await admin.close()
        return False, False
    try:
        if group is None or not host:
            return True, False
        try:
            described = await asyncio.wait_for(admin.describe_consumer_groups([group]),
                                               TIMEOUT)
        except Exception:
            return True, False
        hosts = member_hosts(described, group)
        # a broker that reports no addresses (tansu does not) cannot tell: a member then
        return True, _address(host) in hosts or (bool(hosts) and hosts <= {""})
    finally:
        with contextlib.suppress(Exception):
            await admin.close()


def _address(text: str) -> str:
    """An IP address in one spelling (Kafka writes "/10.1.2.3" and IPv6 uncompressed)."""
    text = text.lstrip("/")
    try:
        return str(ipaddress.ip_address(text))
    except ValueError:
        return text


def member_hosts(responses: list[Any], group: str) -> set[str]:
    """The client addresses of the members of ``group`` in DescribeGroups responses."""
    hosts: set[str] = set()
    for response in responses:
        for g in response.to_object()["groups"]:
            if g["group"] == group:
                hosts |= {_address(str(m["client_host"])) for m in g["members"]}
    return hosts


async def _fetch(url: str, query: str, *args: object) -> Any:
    """One value from PostgreSQL; raises if the database does not answer."""
    import asyncpg

    conn = await asyncpg.connect(url, timeout=TIMEOUT)
    try:
        return await asyncio.wait_for(conn.fetchrow(query, *args), TIMEOUT)
    finally:
        await conn.close()


RELAY_QUERY = ("SELECT (SELECT coalesce(max(seq), 0) FROM changes) AS newest, "
               "(SELECT coalesce(max(last_seq), 0) FROM outbox_cursor "
               "WHERE name = 'kafka') AS cursor")
WORKER_QUERY = ("SELECT count(*) FROM jobs WHERE status = 'running' "
                "AND split_part(worker, ':', 1) = $1")


async def relay_facts(env: Mapping[str, str]) -> RelayFacts:
    async def database() -> tuple[int, int] | None:
        try:
            row = await _fetch(env["AWE_CATALOG_DATABASE_URL"], RELAY_QUERY)
        except Exception:
            return None
        return int(row["newest"]), int(row["cursor"])

    seen, (broker, _) = await asyncio.gather(
        database(), _broker(env.get("AWE_CATALOG_KAFKA_BOOTSTRAP_SERVERS", "kafka:9092")))
    if seen is None:
        return RelayFacts(database=False, broker=broker)
    return RelayFacts(database=True, broker=broker, newest=seen[0], cursor=seen[1])


async def worker_facts(env: Mapping[str, str]) -> WorkerFacts:
    site = env.get("AWE_COMPUTE_SITE") or env.get("AWE_SITE") or "local"

    async def database() -> int | None:
        try:
            row = await _fetch(env["AWE_COMPUTE_DATABASE_URL"], WORKER_QUERY,
                               socket.gethostname())
        except Exception:
            return None
        return int(row[0])

    running, (broker, member) = await asyncio.gather(
        database(), _broker(env.get("AWE_COMPUTE_KAFKA_BOOTSTRAP_SERVERS", "kafka:9092"),
                            f"awe-compute-{site}", env.get("AWE_PROBE_POD_IP")))
    return WorkerFacts(database=running is not None, broker=broker, member=member,
                       running=running or 0)


def main(argv: list[str], env: Mapping[str, str] | None = None) -> int:
    env = os.environ if env is None else env
    if len(argv) != 2 or argv[0] not in ("relay", "worker") or argv[1] not in ("live", "ready"):
        print("usage: awe_probe.py relay|worker live|ready", file=sys.stderr)
        return 2
    kind, mode = argv
    stall = float(env.get("AWE_PROBE_STALL_SECONDS") or 300)
    epoch = _process_epoch()
    state = load_state(kind, epoch)
    if kind == "relay":
        ok, why, state = judge_relay(asyncio.run(relay_facts(env)), state, time.time(),
                                     stall, mode)
    else:
        ok, why, state = judge_worker(asyncio.run(worker_facts(env)), state, time.time(),
                                      stall, mode)
    save_state(kind, epoch, state)
    print(f"{kind} {mode}: {why}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
