"""Following the catalog: Kafka for speed, the HTTP changelog for completeness.

Events are applied strictly in sequence, each once (the graph's cursor is the sequence).
An event that arrives early (the broker lost some, or this service was down) triggers a
catch-up over ``GET /changes``; a periodic catch-up also closes gaps the broker never
shows, such as a tail lost by a restarted memory broker. Both loops are the kit's (started
by the app's lifespan): a periodic catch-up, and the Kafka consumer with retries and backoff.
"""

from __future__ import annotations

import asyncio

import asyncpg
import structlog

from awecore.client import AsyncCatalogClient
from awecore.errors import AweError
from awecore.events import CatalogEvent, ChangePage
from awecore.server import KafkaSettings, Loops, Metrics, Records, consume, every, pg

from ..storage.graph import GraphStore, OutOfOrder

__all__ = ["Follower"]

log = structlog.get_logger("awe.lineage.follow")


class Follower:
    def __init__(self, pool: asyncpg.Pool, catalog: AsyncCatalogClient,
                 kafka: KafkaSettings | None, topic: str, group: str,
                 catch_up_seconds: float, metrics: Metrics | None = None) -> None:
        self.pool = pool
        self.catalog = catalog
        self.kafka = kafka
        self.topic = topic
        self.group = group
        self.catch_up_seconds = catch_up_seconds
        self.applied = 0
        self.duplicates = 0
        self.metrics = metrics
        self._lag = metrics.follower_lag.labels("lineage") if metrics is not None else None
        if metrics is not None:
            metrics.on_scrape(self._measure_lag)
        self._lock = asyncio.Lock()

    async def apply(self, event: CatalogEvent) -> None:
        async with self.pool.acquire() as conn:
            try:
                if await GraphStore(conn).apply(event):
                    self.applied += 1
                else:
                    self.duplicates += 1
            except OutOfOrder as gap:
                log.info("gap in the events: catching up", applied=gap.last,
                         got=event.sequence)
                await self.catch_up()

    async def catch_up(self) -> int:
        """Apply everything the changelog has after the cursor; returns how many."""
        async with self._lock:
            n = 0
            while True:
                async with self.pool.acquire() as conn:
                    store = GraphStore(conn)
                    last = await store.last_applied()
                    page = ChangePage.model_validate(await self.catalog.request(
                        "GET", "/changes", params={"after": last, "limit": 1000}))
                    for event in page.events:
                        if await store.apply(event):
                            n += 1
                self.applied += n
                if page.next_after is None:
                    if self._lag is not None:
                        self._lag.set(max(0, page.last_sequence - max(
                            [last, *(e.sequence for e in page.events)])))
                    return n

    async def lag(self) -> int:
        """Changes the catalog has that the graph has not applied yet."""
        page = ChangePage.model_validate(
            await self.catalog.request("GET", "/changes", params={"limit": 1}))
        async with self.pool.acquire() as conn:
            return page.last_sequence - await GraphStore(conn).last_applied()

    async def _measure_lag(self) -> None:
        if self._lag is not None:
            self._lag.set(max(0, await self.lag()))

    # -- loops -------------------------------------------------------------------------
    def add_loops(self, loops: Loops) -> None:
        """The periodic catch-up, and the Kafka consumer when there is a broker."""
        loops.add("catch-up", self._catch_up_loop)
        if self.kafka is not None:
            loops.add("kafka", self._kafka_loop)

    async def _catch_up_loop(self, stop: asyncio.Event) -> None:
        await every(stop, self.catch_up_seconds, self.catch_up, _EXPECTED, self._note_error)

    async def _note_error(self, exc: BaseException) -> None:
        log.warning("catch-up failed; will retry", error=repr(exc))

    async def _take(self, records: Records) -> None:
        for record in records:
            if record.value is not None:
                await self.apply(CatalogEvent.from_bytes(record.value))

    async def _kafka_loop(self, stop: asyncio.Event) -> None:
        assert self.kafka is not None
        await consume(stop, self.kafka, self.topic, self.group, self._take, name="lineage",
                      metrics=self.metrics, expected=_EXPECTED)


#: what a turn of a loop may meet and retry: the catalog or the database away for a while
_EXPECTED: tuple[type[BaseException], ...] = (AweError, OSError, *pg.DATABASE_GONE)
