"""Following the catalog: Kafka for speed, the HTTP changelog for completeness.

Events are applied strictly in sequence, each once (the graph's cursor is the sequence).
An event that arrives early (the broker lost some, or this service was down) triggers a
catch-up over ``GET /changes``; a periodic catch-up also closes gaps the broker never
shows, such as a tail lost by a restarted memory broker.
"""

from __future__ import annotations

import asyncio
import contextlib

import asyncpg
import structlog
from aiokafka.errors import KafkaError

from awecore.bus import KafkaSettings, every, make_consumer, run_until
from awecore.client import AsyncCatalogClient
from awecore.errors import AweError
from awecore.events import CatalogEvent, ChangePage

from ..storage.graph import GraphStore, OutOfOrder

__all__ = ["Follower"]

log = structlog.get_logger("awe.lineage.follow")


class Follower:
    def __init__(self, pool: asyncpg.Pool, catalog: AsyncCatalogClient,
                 kafka: KafkaSettings | None, topic: str, group: str,
                 catch_up_seconds: float) -> None:
        self.pool = pool
        self.catalog = catalog
        self.kafka = kafka
        self.topic = topic
        self.group = group
        self.catch_up_seconds = catch_up_seconds
        self.applied = 0
        self.duplicates = 0
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
                    return n

    async def lag(self) -> int:
        """Changes the catalog has that the graph has not applied yet."""
        page = ChangePage.model_validate(
            await self.catalog.request("GET", "/changes", params={"limit": 1}))
        async with self.pool.acquire() as conn:
            return page.last_sequence - await GraphStore(conn).last_applied()

    async def run(self, stop: asyncio.Event) -> None:
        loops = [every(stop, self.catch_up_seconds, self.catch_up,
                       (AweError, OSError, asyncpg.PostgresError), self._note_error)]
        if self.kafka is not None:
            loops.append(self._kafka_loop(stop))
        await run_until(stop, *loops)

    async def _note_error(self, exc: BaseException) -> None:
        log.warning("catch-up failed; will retry", error=repr(exc))

    async def _kafka_loop(self, stop: asyncio.Event) -> None:
        assert self.kafka is not None
        while not stop.is_set():
            consumer = make_consumer(self.kafka, self.topic, group_id=self.group)
            try:
                await consumer.start()
                while not stop.is_set():
                    batch = await consumer.getmany(timeout_ms=500, max_records=500)
                    for records in batch.values():
                        for record in records:
                            await self.apply(CatalogEvent.from_bytes(record.value))
                    if batch:
                        await consumer.commit()
            except (KafkaError, OSError) as exc:
                log.warning("broker trouble; reconnecting", error=repr(exc))
                await asyncio.sleep(2)
            finally:
                with contextlib.suppress(KafkaError, OSError):
                    await consumer.stop()
