"""Following one peer: its broker for speed, its HTTP changelog for completeness.

Only what the peer shares with other sites crosses (``awecore.visibility.replicates``).
Curations cross with who made them, where, when and why, so every site keeps the same
curation history; an object that becomes shared brings its history along.
Events are taken in the peer's sequence order; the cursor advances once the local catalog has
the batch (applied, already there, or parked as waiting for objects it references). Waiting
changes are retried after every batch.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

import asyncpg
import structlog

from awecore.client import AsyncCatalogClient
from awecore.errors import AweError, NotFound
from awecore.events import (
    OBJECT_CREATED,
    CatalogEvent,
    ChangePage,
    ObjectCreated,
    ObjectCurated,
    catalog_changes_topic,
)
from awecore.model import ObjectOut
from awecore.server import KafkaSettings, Loops, Metrics, Records, consume, every, pg
from awecore.visibility import replicates

from ..config import PeerSite
from ..storage.cursors import CursorStore

__all__ = ["PeerFollower"]

log = structlog.get_logger("awe.federation")


class PeerFollower:
    def __init__(self, peer: PeerSite, local_site: str, pool: asyncpg.Pool,
                 local: AsyncCatalogClient, batch: int, catch_up_seconds: float,
                 session_timeout_ms: int, metrics: Metrics | None = None) -> None:
        self.peer = peer
        self.local_site = local_site
        self.pool = pool
        self.local = local
        self.remote = AsyncCatalogClient(peer.catalog_url, peer.token.get_secret_value())
        self.batch = batch
        self.catch_up_seconds = catch_up_seconds
        self.kafka = (KafkaSettings(bootstrap_servers=peer.kafka_bootstrap_servers,
                                    client_id=f"awe-federation-{local_site}",
                                    session_timeout_ms=session_timeout_ms)
                      if peer.kafka_bootstrap_servers else None)
        self._lock = asyncio.Lock()
        self.applied = 0
        self.metrics = metrics
        self.name = f"federation:{peer.site}"
        #: class names whose schema this site has from the peer (or that are awecore's)
        self._classes: set[str] = set()
        self._lag = metrics.follower_lag.labels(self.name) if metrics is not None else None

    async def aclose(self) -> None:
        await self.remote.aclose()

    # -- one batch ---------------------------------------------------------------------
    async def _shared(self, events: list[CatalogEvent]) -> list[CatalogEvent]:
        """The events to send: shared objects only; a curation that made an object shared
        brings the object along first."""
        curated = [e.subject for e in events if isinstance(e.data, ObjectCurated)
                   and e.data.site != self.local_site]
        here: set[str] = set()
        if curated:
            got = await self.local.request("POST", "/objects/get",
                                           json={"oids": list(dict.fromkeys(curated))[:1000]})
            here = {o["oid"] for o in got["objects"]}
        out: list[CatalogEvent] = []
        for e in events:
            if isinstance(e.data, ObjectCreated):
                if replicates(e.data.object.privileges) and e.data.object.site != self.local_site:
                    out.append(e)
                continue
            if e.data.site == self.local_site:
                continue
            if e.subject not in here:
                try:
                    now = ObjectOut.model_validate(
                        await self.remote.request("GET", f"/objects/{e.subject}"))
                except NotFound:
                    continue
                if not replicates(now.privileges):
                    continue
                here.add(e.subject)
                # the object comes with its curation history so far: made while it was not
                # shared, it never crossed as curation events
                try:
                    history = await self.remote.history(e.subject)
                except NotFound:  # a peer from before histories were kept
                    history = []
                out.append(CatalogEvent(
                    id=f"snapshot-{e.id}", source=e.source, type=OBJECT_CREATED, time=e.time,
                    subject=e.subject, sequence=e.sequence,
                    data=ObjectCreated(object=now, history=history or None)))
            out.append(e)
        return out

    async def _send(self, events: list[CatalogEvent]) -> dict[str, Any]:
        result: dict[str, Any] = {"applied": [], "skipped": [], "waiting": []}
        for i in range(0, len(events), 1000):
            got = await self.local.request("POST", "/replicate", json={
                "events": [e.model_dump(mode="json") for e in events[i:i + 1000]]})
            for k in result:
                result[k].extend(got[k])
        return result

    async def process(self, events: list[CatalogEvent]) -> None:
        """Apply a contiguous run of the peer's events that starts after the cursor."""
        if not events:
            return
        outgoing = await self._shared(events)
        for name in sorted({e.data.object.type for e in outgoing
                            if isinstance(e.data, ObjectCreated)}):
            await self._class(name)
        result = await self._send(outgoing) if outgoing else {"applied": [], "waiting": []}
        waiting = set(result["waiting"])
        async with self.pool.acquire() as conn, conn.transaction():
            store = CursorStore(conn)
            if waiting:
                await store.wait(self.peer.site, [e for e in outgoing if e.id in waiting])
            await store.advance(self.peer.site, events[-1].sequence, events[-1].time)
        self.applied += len(result["applied"])
        if result["applied"]:
            await self.retry_waiting()

    async def _class(self, name: str) -> None:
        """A user's class the peer registered (its objects cross like any): registered here
        from the peer's schema, with the classes it builds on first, so that its objects
        validate. Once per name; the same schema again changes nothing, a clash is raised
        with the catalog's reason (the follower retries, and its status says why)."""
        if name in self._classes:
            return
        try:
            info = await self.remote.request("GET", f"/classes/{name}")
        except NotFound:  # a peer from before classes were registered: awecore's own
            info = {"builtin": True}
        if not info.get("builtin"):
            spec = info["spec"]
            for other in [*spec["bases"], *(f["target"] for f in spec["fields"].values()
                                            if f.get("target") not in (None, name))]:
                await self._class(other)
            await self.local.request("POST", "/classes", json=spec)
        self._classes.add(name)

    async def retry_waiting(self) -> None:
        async with self.pool.acquire() as conn:
            waiting = await CursorStore(conn).waiting(self.peer.site)
        if not waiting:
            return
        result = await self._send(waiting)
        async with self.pool.acquire() as conn:
            await CursorStore(conn).done(self.peer.site, result["applied"] + result["skipped"])
        self.applied += len(result["applied"])

    async def cursor(self) -> int:
        async with self.pool.acquire() as conn:
            return int((await CursorStore(conn).get(self.peer.site))["last_seq"])

    async def catch_up(self) -> int:
        """Read the peer's changelog over HTTP from the cursor to its end."""
        async with self._lock:
            n = 0
            while True:
                after = await self.cursor()
                page = ChangePage.model_validate(await self.remote.request(
                    "GET", "/changes", params={"after": after, "limit": self.batch}))
                await self.process(page.events)
                n += len(page.events)
                if page.next_after is None:
                    if self._lag is not None:
                        self._lag.set(max(0, page.last_sequence - await self.cursor()))
                    return n

    async def measure_lag(self) -> None:
        """Set the lag gauge: changes the peer has that this site has not taken yet."""
        if self._lag is not None:
            page = ChangePage.model_validate(
                await self.remote.request("GET", "/changes", params={"limit": 1}))
            self._lag.set(max(0, page.last_sequence - await self.cursor()))

    async def take(self, events: list[CatalogEvent]) -> None:
        """Events from the broker: applied directly when they follow the cursor."""
        async with self._lock:
            after = await self.cursor()
            fresh = sorted((e for e in events if e.sequence > after), key=lambda e: e.sequence)
            run = [e for i, e in enumerate(fresh) if e.sequence == after + 1 + i]
            await self.process(run)
            behind = len(run) < len(fresh)
        if behind:
            await self.catch_up()

    # -- loops (the kit's: started by the app's lifespan) ------------------------------
    def add_loops(self, loops: Loops) -> None:
        """The periodic catch-up, and the peer's Kafka consumer when it has a broker."""
        loops.add(f"{self.name}:catch-up", self._catch_up_loop)
        if self.kafka is not None:
            loops.add(f"{self.name}:kafka", self._kafka_loop)

    async def _catch_up_loop(self, stop: asyncio.Event) -> None:
        await every(stop, self.catch_up_seconds, self._catch_up_and_retry, _EXPECTED,
                    self._note_error)

    async def _catch_up_and_retry(self) -> None:
        await self.catch_up()
        await self.retry_waiting()

    async def _note_error(self, exc: BaseException) -> None:
        log.warning("peer trouble; will retry", peer=self.peer.site, error=repr(exc))
        with contextlib.suppress(Exception):
            async with self.pool.acquire() as conn:
                await CursorStore(conn).error(self.peer.site, repr(exc))

    async def _take(self, records: Records) -> None:
        await self.take([CatalogEvent.from_bytes(r.value) for r in records
                         if r.value is not None])

    async def _kafka_loop(self, stop: asyncio.Event) -> None:
        assert self.kafka is not None
        await consume(stop, self.kafka, catalog_changes_topic(self.peer.site),
                      f"awe-federation-{self.local_site}", self._take, name=self.name,
                      metrics=self.metrics, max_records=1000, expected=_EXPECTED,
                      on_error=self._note_error)


#: what a turn of a loop may meet and retry: a peer, the local catalog or the database away
_EXPECTED: tuple[type[BaseException], ...] = (AweError, OSError, *pg.DATABASE_GONE)
