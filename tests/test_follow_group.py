"""A consumer whose handler fails (its database away) keeps its place in the group.

When PostgreSQL restarted, every compute worker's handler failed at once; each worker left
the group and joined anew, and tansu kept the leader that had left as the leader of the next
generation: the new members re-joined for minutes without partitions. A handler's failure
is now retried by the same consumer, rewound to the batch, so nobody leaves the group.
"""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import pytest
from aiokafka import AIOKafkaProducer
from test_faults import until

from awecore.server import follow
from awecore.server.follow import Records, consume
from awecore.server.kafka import KafkaSettings
from awecore.stack import Broker

pytestmark = pytest.mark.integration


async def test_a_failing_handler_keeps_its_consumer_and_gets_the_batch_again(
        broker: Broker, monkeypatch: pytest.MonkeyPatch) -> None:
    kafka = KafkaSettings(bootstrap_servers=broker.bootstrap_servers, session_timeout_ms=3000)
    topic, group = f"follow-{uuid.uuid4().hex[:8]}", f"g-{uuid.uuid4().hex[:8]}"
    made: list[Any] = []
    real = follow.make_consumer

    def counted(*args: Any, **kwargs: Any) -> Any:
        made.append(consumer := real(*args, **kwargs))
        return consumer

    monkeypatch.setattr(follow, "make_consumer", counted)
    failures = {"left": 3}  # the first three batches fail, as with the database restarting
    handled: list[bytes] = []
    all_handled = asyncio.Event()

    async def handle(records: Records) -> None:
        if failures["left"] > 0:
            failures["left"] -= 1
            raise OSError("the database is starting up")
        handled.extend(r.value or b"" for r in records)
        if len(set(handled)) == 4:
            all_handled.set()

    stop = asyncio.Event()
    loops = [asyncio.create_task(consume(stop, kafka, topic, group, handle, name="test",
                                         max_records=1, expected=(OSError,), partitions=2))
             for _ in range(2)]
    producer = AIOKafkaProducer(bootstrap_servers=broker.bootstrap_servers)
    await producer.start()
    try:
        async def both_in_the_group() -> bool:
            return len(made) == 2 and all(c.assignment() for c in made)

        await until("both consumers assigned partitions", both_in_the_group)
        for i in range(4):
            await producer.send_and_wait(topic, f"r{i}".encode(), partition=i % 2)
        await asyncio.wait_for(all_handled.wait(), 120)  # a guard against a hang only
    finally:
        await producer.stop()
        stop.set()
        await asyncio.gather(*loops)
    assert failures["left"] == 0
    assert sorted(set(handled)) == [b"r0", b"r1", b"r2", b"r3"]
    assert len(made) == 2, "a handler's failure made the consumer leave the group"
