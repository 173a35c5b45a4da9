"""The outbox relay: publishes the changelog to ``awe.<site>.catalog.changes``.

PostgreSQL is the source of truth. The relay reads changes after its cursor, publishes them
(acks=all), then advances the cursor. Killed between the two, it would publish a batch
again, so on start it reads the newest event on the topic and resumes after the higher of
that and its cursor: no gap, no duplicate. A broker that lost everything (memory storage)
gets its topic recreated; consumers catch up on the rest over ``GET /changes``.

Run it with ``python -m awe_catalog.relay`` (settings as for the catalog service). It serves
``/metrics`` (``awe_outbox_lag``: changes not yet published), ``/livez`` and ``/readyz`` on
``AWE_CATALOG_RELAY_METRICS_HOST``:``..._PORT`` (0: a free one) and, with
``AWE_CATALOG_RELAY_HEARTBEAT_FILE``, rewrites that file at each turn (pid, port, cursor).
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
from collections.abc import Callable

import asyncpg
import structlog
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import KafkaError
from prometheus_client import Counter, Gauge

from awecore.events import catalog_changes_topic
from awecore.server import (
    Heartbeat,
    KafkaSettings,
    Metrics,
    StatusServer,
    configure_logging,
    ensure_topics,
    keep_running,
    make_producer,
    pg,
)

from .config import CatalogSettings
from .factory import create_pool
from .storage.changes import ChangeStore, event_from_row
from .storage.migrations import apply_migrations

__all__ = ["OutboxRelay", "main", "newest_published"]

log = structlog.get_logger("awe.catalog.relay")
CURSOR = "kafka"
#: the database went away (restarted, recovering): the relay waits for it, as for the broker
_DB_GONE = pg.DATABASE_GONE
_TAIL = 1000


async def newest_published(kafka: KafkaSettings, topic: str, partitions: int,
                           wait_ms: int = 1000) -> int:
    """The highest changelog sequence already on the topic (0 if empty).

    A broker's reported end offset may lag the true end (tansu reports a batch's base), so
    this reads forward from a little before it until the partition has nothing more.
    """
    consumer = AIOKafkaConsumer(enable_auto_commit=False, auto_offset_reset="earliest",
                                **kafka.common())
    await consumer.start()
    try:
        newest = 0
        for tp in [TopicPartition(topic, p) for p in range(partitions)]:
            consumer.assign([tp])
            await consumer.seek_to_end(tp)
            end = await consumer.position(tp)
            if end == 0:
                continue
            consumer.seek(tp, max(0, end - _TAIL))
            while True:
                batch = await consumer.getmany(tp, timeout_ms=wait_ms)
                records = batch.get(tp, [])
                if not records:
                    break
                for record in records:
                    sequence = dict(record.headers or ()).get("ce_sequence")
                    if sequence:
                        newest = max(newest, int(sequence))
        return newest
    finally:
        await consumer.stop()


class BrokerLostTopic(Exception):
    """The topic is gone: the broker lost its state, so recreate it and republish."""


class OutboxRelay:
    def __init__(self, settings: CatalogSettings, pool: asyncpg.Pool,
                 metrics: Metrics | None = None, heartbeat: Heartbeat | None = None) -> None:
        self.settings = settings
        self.pool = pool
        self.metrics = metrics or Metrics("catalog-relay")
        self.heartbeat = heartbeat or Heartbeat(self.metrics)
        self.lag = Gauge("awe_outbox_lag", "changes in the changelog not yet published",
                         registry=self.metrics.registry)
        self.published = Counter("awe_outbox_published", "changes published to the topic",
                                 registry=self.metrics.registry)
        self.metrics.on_scrape(self._measure_lag)
        self.connected = False
        self.kafka = settings.kafka("awe-catalog-relay")
        self.topic = catalog_changes_topic(settings.site)
        self.cursor = 0
        self._wake = asyncio.Event()
        # one partition keeps the changelog's order on the topic. Pinned, because a consumer
        # that subscribed first may have had the broker create the topic with more.
        self._partition = 0 if settings.changes_partitions == 1 else None

    async def _resume_point(self) -> int:
        await ensure_topics(self.kafka, [self.topic], self.settings.changes_partitions)
        async with self.pool.acquire() as conn:
            stored = await ChangeStore(conn).cursor(CURSOR)
        on_topic = await newest_published(self.kafka, self.topic,
                                          self.settings.changes_partitions)
        if on_topic > stored:
            log.info("topic is ahead of the cursor: skipping what was published",
                     cursor=stored, topic_newest=on_topic)
            async with self.pool.acquire() as conn:
                await ChangeStore(conn).set_cursor(CURSOR, on_topic)
        return max(stored, on_topic)

    async def publish_once(self, producer: AIOKafkaProducer, admin: AIOKafkaAdminClient) -> int:
        """Publish one batch after the cursor; returns how many were published.

        The cursor advances only once the topic is seen to still exist after the broker
        acknowledged: a memory broker that restarted empty acknowledges writes to topics it
        no longer has, and those writes are lost.
        """
        async with self.pool.acquire() as conn:
            rows = await ChangeStore(conn).after(self.cursor, self.settings.relay_batch, None)
        if not rows:
            return 0
        futures = []
        for row in rows:
            event = event_from_row(row, self.settings.site)
            futures.append(await producer.send(
                self.topic, event.to_bytes(), key=event.key(), headers=event.headers(),
                partition=self._partition))
        await asyncio.gather(*futures)
        if self.topic not in await admin.list_topics():
            raise BrokerLostTopic(f"{self.topic} vanished: the broker restarted empty")
        last = int(rows[-1]["seq"])
        async with self.pool.acquire() as conn:
            await ChangeStore(conn).set_cursor(CURSOR, last)
        self.cursor = last
        self.published.inc(len(rows))
        log.debug("published", count=len(rows), last_sequence=last)
        return len(rows)

    async def _measure_lag(self) -> None:
        async with self.pool.acquire() as conn:
            newest = await ChangeStore(conn).last_sequence()
        self.lag.set(max(0, newest - self.cursor))

    async def checks(self) -> dict[str, str]:
        """Readiness: the database answers and the relay is connected to the broker."""
        return {"database": await pg.ping(self.pool),
                "broker": "ok" if self.connected else "not connected"}

    async def run(self, stop: asyncio.Event) -> None:
        """Publish until ``stop``; broker trouble is retried with an exponential backoff."""
        def wake(*_: object) -> None:
            self._wake.set()

        async def session(progress: Callable[[], None]) -> None:
            # a listener per session: a restarted database drops it with every connection
            listener = await self.pool.acquire()
            try:
                await listener.add_listener("awe_changes", wake)
                await self._run_connected(stop, progress)
            finally:
                self.connected = False
                with contextlib.suppress(*_DB_GONE):
                    await listener.remove_listener("awe_changes", wake)
                with contextlib.suppress(*_DB_GONE):
                    await self.pool.release(listener)

        await keep_running(stop, "relay", session,
                           (KafkaError, OSError, BrokerLostTopic, *_DB_GONE))

    async def _run_connected(self, stop: asyncio.Event, progress: Callable[[], None]) -> None:
        self.cursor = await self._resume_point()
        log.info("relay running", topic=self.topic, after=self.cursor)
        producer = make_producer(self.kafka)
        admin = AIOKafkaAdminClient(**self.kafka.common())
        await producer.start()
        await admin.start()
        try:
            while not stop.is_set():
                self.connected = True
                self.heartbeat.beat(cursor=self.cursor)
                if await self.publish_once(producer, admin):
                    progress()
                    continue
                self._wake.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), self.settings.relay_poll_seconds)
                if self.topic not in await admin.list_topics():
                    raise BrokerLostTopic(f"{self.topic} vanished: the broker restarted empty")
                progress()
        finally:
            await admin.close()
            await producer.stop()


async def _main(settings: CatalogSettings) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    metrics = Metrics("catalog-relay")
    heartbeat = Heartbeat(metrics, settings.relay_heartbeat_file)
    pool = await create_pool(settings)
    relay = OutboxRelay(settings, pool, metrics, heartbeat)
    status = StatusServer(metrics, settings.relay_metrics_host, settings.relay_metrics_port,
                          relay.checks)
    try:
        async with pool.acquire() as conn:
            await apply_migrations(conn)
        port = await status.start()
        heartbeat.beat(metrics_port=port, metrics_host=settings.relay_metrics_host)
        await relay.run(stop)
    finally:
        await status.stop()
        await pool.close()


def main() -> None:
    settings = CatalogSettings()
    configure_logging("catalog-relay", settings.log_level)
    asyncio.run(_main(settings))


if __name__ == "__main__":
    main()
