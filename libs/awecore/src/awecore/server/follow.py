"""The one Kafka consumer loop of the services: the lineage follower, federation's peer
followers and the compute workers all consume through :func:`consume`.

It joins the consumer group, hands each batch to the caller, commits after the batch is
handled (so a crash replays it: handlers are idempotent), keeps the consumer lag in the
metrics, and on broker trouble reconnects with an exponential backoff
(:func:`~awecore.server.loops.keep_running`).

A batch whose handler fails for anything but the broker (its database or a peer away) is
tried again after the same backoff by the same consumer, rewound to the batch: the consumer
stays in its group. Leaving and joining anew on each such error made every worker
of a group leave at once when their shared database restarted, and tansu (0.6.0) then kept
the member that had led the group, gone, as the leader of the next generation: the new
members, all followers, re-joined every few seconds for minutes without partitions.

A consumer of a topic it owns (``partitions`` given: the compute workers' jobs topic) makes
the topic when a session starts and looks every ``guard_seconds`` that it is still there: a
broker that restarted empty has lost it, and no client makes it implicitly (see
:mod:`.kafka`), so the consumer makes it again, with its partitions, and starts a fresh
session (a new member of a group the broker has forgotten) at once.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.errors import KafkaError
from aiokafka.structs import ConsumerRecord

from .kafka import KafkaSettings, consumer_lag, ensure_topics, make_consumer
from .loops import keep_running
from .metrics import Metrics

__all__ = ["Records", "TopicLost", "consume"]

Records = list[ConsumerRecord[bytes, bytes]]


async def _stop_quietly(consumer: AIOKafkaConsumer) -> None:
    """Stop a consumer that is being dropped (the session ends, or failed: its error goes on).

    With the broker gone, aiokafka's own fetch task may end in a CancelledError that
    ``stop()`` passes on although nobody cancelled this task: taken for a cancellation,
    it would end the consumer loop (and a worker) for good. Only a cancellation of this
    very task (``cancelling()``) goes on as one."""
    try:
        await consumer.stop()
    except (KafkaError, OSError):
        pass  # it is being dropped: nothing it held is kept (offsets commit per batch)
    except asyncio.CancelledError:
        task = asyncio.current_task()
        if task is not None and task.cancelling():
            raise


def _rewind(consumer: AIOKafkaConsumer, records: Records) -> None:
    """Seek each partition of a batch that was not handled back to its first record, so
    the next poll returns the batch again. A partition no longer assigned to this consumer
    is left alone: its new owner starts from the committed offset, before the batch."""
    first: dict[TopicPartition, int] = {}
    for r in records:
        tp = TopicPartition(r.topic, r.partition)
        first[tp] = min(first.get(tp, r.offset), r.offset)
    assigned = consumer.assignment()
    for tp, offset in first.items():
        if tp in assigned:
            consumer.seek(tp, offset)


class TopicLost(KafkaError):  # type: ignore[misc]
    """The consumed topic vanished (the broker restarted empty); it has been made again."""


async def consume(stop: asyncio.Event, kafka: KafkaSettings, topic: str, group: str,
                  handle: Callable[[Records], Awaitable[None]], *, name: str,
                  metrics: Metrics | None = None, max_records: int = 500,
                  poll_ms: int = 500,
                  expected: tuple[type[BaseException], ...] = (KafkaError, OSError),
                  on_error: Callable[[BaseException], Awaitable[None]] | None = None,
                  on_poll: Callable[[], None] | None = None,
                  partitions: int | None = None, guard_seconds: float = 2.0) -> None:
    """Consume ``topic`` in ``group`` until ``stop`` is set.

    ``name`` labels the lag gauge and the log lines; ``on_poll`` is called after every poll
    (a heartbeat); ``expected`` errors, raised by the broker or by ``handle``, are reported
    to ``on_error`` and retried after a backoff; any other error ends the loop. With
    ``partitions``, the topic is this consumer's to make (see the module's docstring).
    """
    lag = metrics.consumer_lag.labels(name) if metrics is not None else None
    retried = tuple({KafkaError, OSError, *expected})

    #: kept from one session to the next unless the broker failed it
    kept: AIOKafkaConsumer | None = None

    async def session(progress: Callable[[], None]) -> None:
        nonlocal kept
        if kept is None:
            if partitions is not None:
                await ensure_topics(kafka, [topic], partitions)
            fresh = make_consumer(kafka, topic, group_id=group)
            try:
                await fresh.start()
            except BaseException:
                await _stop_quietly(fresh)
                raise
            kept = fresh
        consumer = kept
        guarded = time.monotonic()
        handling: Records = []
        try:
            while not stop.is_set():
                if partitions is not None and time.monotonic() - guarded >= guard_seconds:
                    guarded = time.monotonic()
                    if topic not in await consumer.topics():
                        made = await ensure_topics(kafka, [topic], partitions)
                        progress()  # a fresh session at once, not after a backoff
                        raise TopicLost(f"{topic} vanished (the broker restarted empty)"
                                        + (": made again" if made else ""))
                batch = await consumer.getmany(timeout_ms=poll_ms, max_records=max_records)
                records = [r for rs in batch.values() for r in rs]
                if records:
                    handling = records
                    await handle(records)
                    handling = []
                    await consumer.commit()
                progress()
                if lag is not None and (behind := await consumer_lag(consumer)) is not None:
                    lag.set(behind)
                if on_poll is not None:
                    on_poll()
        except Exception as exc:
            if handling and not isinstance(exc, KafkaError):
                _rewind(consumer, handling)  # the handler failed, not the broker: stay
            else:
                kept = None
                await _stop_quietly(consumer)
            raise
        except BaseException:
            kept = None
            await _stop_quietly(consumer)
            raise

    try:
        await keep_running(stop, f"{name} consumer", session, retried, on_error)
    finally:
        if kept is not None:
            await _stop_quietly(kept)
