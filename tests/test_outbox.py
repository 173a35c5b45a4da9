"""The outbox: changes reach Kafka; a killed relay resumes with no gap and no duplicate."""

from __future__ import annotations

import asyncio
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import asyncpg
import httpx
import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition
from conftest import service_env
from seed import batch

from awe_catalog.config import CatalogSettings
from awecore.events import CatalogEvent, catalog_changes_topic
from awecore.stack import Broker, ServiceProcess

pytestmark = pytest.mark.integration


async def read_topic(bootstrap: str, topic: str, until: int, seconds: float = 30.0,
                     stop_early: bool = False) -> list[CatalogEvent]:
    """Every event on the topic from the start, until sequence ``until`` has been seen."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False,
                                auto_offset_reset="earliest")
    await consumer.start()
    events: list[CatalogEvent] = []
    try:
        tp = TopicPartition(topic, 0)
        deadline = time.monotonic() + seconds
        while topic not in await consumer.topics():
            if time.monotonic() > deadline:
                return events
            await asyncio.sleep(0.1)
        consumer.assign([tp])
        await consumer.seek_to_beginning(tp)
        while time.monotonic() < deadline:
            got = await consumer.getmany(tp, timeout_ms=200)
            events.extend(CatalogEvent.from_bytes(m.value) for m in got.get(tp, []))
            if events and (stop_early or max(e.sequence for e in events) >= until):
                break
        return events
    finally:
        await consumer.stop()


class Relay:
    def __init__(self, settings: CatalogSettings, logdir: Path) -> None:
        env = service_env(settings) | {"AWE_CATALOG_RELAY_BATCH": "100"}
        self.proc = ServiceProcess("relay", [sys.executable, "-m", "awe_catalog.relay"],
                                   env, logdir / "relay.log")

    def start(self) -> None:
        self.proc.start()

    def kill(self) -> None:
        self.proc.kill()

    def stop(self) -> None:
        self.proc.stop()


@pytest.fixture(scope="module")
def relay(catalog_settings: CatalogSettings,
          tmp_path_factory: pytest.TempPathFactory) -> Iterator[Relay]:
    r = Relay(catalog_settings, tmp_path_factory.mktemp("relay"))
    r.start()
    try:
        yield r
    finally:
        r.stop()


async def last_sequence(admin: httpx.AsyncClient) -> int:
    return int((await admin.get("/changes", params={"limit": 1})).json()["last_sequence"])


def assert_contiguous(events: list[CatalogEvent], upto: int) -> None:
    seqs = [e.sequence for e in events]
    assert len(seqs) == len(set(seqs)), "a sequence was published twice"
    assert seqs == list(range(1, upto + 1)), "the topic has a gap"


async def test_change_event_reaches_kafka(admin: httpx.AsyncClient, relay: Relay,
                                          catalog_settings: CatalogSettings) -> None:
    (oid,) = await batch(admin, [{"type": "Instrument", "attributes": {"name": "outbox"}}])
    upto = await last_sequence(admin)
    events = await read_topic(catalog_settings.kafka_bootstrap_servers,
                              catalog_changes_topic("test"), upto)
    mine = [e for e in events if e.subject == oid]
    assert len(mine) == 1
    event = mine[0]
    assert event.type == "awe.catalog.object.created.v1"
    assert event.data.object.attributes == {"name": "outbox"}  # type: ignore[union-attr]
    assert_contiguous(events, upto)


async def end_offset(bootstrap: str, topic: str) -> int:
    """Where the next message of the topic's partition will be."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    await consumer.start()
    try:
        tp = TopicPartition(topic, 0)
        return int((await consumer.end_offsets([tp]))[tp])
    finally:
        await consumer.stop()


async def wait_for_offset_past(bootstrap: str, topic: str, offset: int,
                               seconds: float = 30.0) -> None:
    """Until the partition holds a message past ``offset`` (its end offset read directly:
    reading the topic from its start to see that took longer, under load, than the relay
    took to publish the whole burst)."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    await consumer.start()
    try:
        tp = TopicPartition(topic, 0)
        deadline = time.monotonic() + seconds
        while (await consumer.end_offsets([tp]))[tp] <= offset:
            assert time.monotonic() < deadline, "the relay published nothing"
            await asyncio.sleep(0.005)
    finally:
        await consumer.stop()


async def test_relay_killed_mid_stream_resumes(admin: httpx.AsyncClient, relay: Relay,
                                               catalog_settings: CatalogSettings) -> None:
    topic = catalog_changes_topic("test")
    bootstrap = catalog_settings.kafka_bootstrap_servers
    relay.stop()
    try:
        published = await last_sequence(admin)
        for _ in range(8):
            await batch(admin, [{"type": "Filter", "attributes": {"name": "burst"}}] * 2000)
        upto = await last_sequence(admin)
        start = await end_offset(bootstrap, topic)
        relay.start()
        # kill it as soon as the burst starts to appear on the topic
        await wait_for_offset_past(bootstrap, topic, start)
        relay.kill()
        partial = await read_topic(bootstrap, topic, upto, seconds=2)
        assert published < max(e.sequence for e in partial) < upto, "relay was not mid-stream"
    finally:
        relay.start()  # whatever happened: the module's other tests need a relay
    events = await read_topic(bootstrap, topic, upto)
    assert_contiguous(events, upto)


async def test_crash_between_publish_and_cursor_publishes_nothing_twice(
        admin: httpx.AsyncClient, relay: Relay, catalog_settings: CatalogSettings) -> None:
    topic = catalog_changes_topic("test")
    bootstrap = catalog_settings.kafka_bootstrap_servers
    await batch(admin, [{"type": "Filter"}] * 50)
    upto = await last_sequence(admin)
    assert_contiguous(await read_topic(bootstrap, topic, upto), upto)
    relay.kill()
    # the broker acknowledged, but the cursor write was lost with the process
    conn = await asyncpg.connect(catalog_settings.database_url.get_secret_value())
    try:
        await conn.execute("UPDATE outbox_cursor SET last_seq = $1", upto - 40)
    finally:
        await conn.close()
    relay.start()
    await batch(admin, [{"type": "Filter"}] * 5)
    upto = await last_sequence(admin)
    assert_contiguous(await read_topic(bootstrap, topic, upto), upto)


async def test_broker_lost_everything(admin: httpx.AsyncClient, relay: Relay, broker: Broker,
                                      catalog_settings: CatalogSettings) -> None:
    """A memory broker restarted empty: the relay recreates the topic and goes on."""
    broker.restart_empty()
    (oid,) = await batch(admin, [{"type": "Filter", "attributes": {"name": "after-loss"}}])
    upto = await last_sequence(admin)
    events = await read_topic(catalog_settings.kafka_bootstrap_servers,
                              catalog_changes_topic("test"), upto, seconds=60)
    assert [e.subject for e in events if e.sequence == upto] == [oid]
    # what the broker lost is still in the changelog, for consumers to catch up over HTTP
    page = (await admin.get("/changes", params={"after": 0, "limit": 5})).json()
    assert [e["sequence"] for e in page["events"]] == [1, 2, 3, 4, 5]
