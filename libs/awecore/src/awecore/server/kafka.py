"""aiokafka wiring shared by every service: client settings, producers, consumers, topics.

Kafka transactions and idempotent producers are not used (the local broker lacks them, and
the outbox plus idempotent consumers make them unnecessary): producers wait for all acks.

Topics are made only by :func:`ensure_topics`, with the partitions the service configures.
No AWE client lets the broker create a topic implicitly: aiokafka asks for that in every
metadata request, and a broker that lost its topics (a restarted memory broker) then made
``compute.jobs`` anew with its own default (4 partitions instead of 8), the first time a
consumer or producer looked for it. Importing this module turns that off for aiokafka's
clients (see :func:`_no_implicit_topics`).
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

import aiokafka.admin.client as _admin_module
import aiokafka.client as _client_module
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import KafkaError, TopicAlreadyExistsError
from aiokafka.protocol.metadata import MetadataRequest
from pydantic import BaseModel, Field
from pydantic_settings import BaseSettings, SettingsConfigDict

__all__ = ["BrokerProbe", "KafkaSettings", "TopicSettings", "WrongPartitions", "close_quietly",
           "consumer_lag", "ensure_topics", "make_consumer", "make_producer", "topic_partitions"]

#: how often a consumer refreshes the broker's metadata: a topic made (again) after it
#: subscribed is found within this
METADATA_MAX_AGE_MS = 5000


class _MetadataWithoutCreation(MetadataRequest):  # type: ignore[misc]
    """A metadata request that never asks the broker to create the topics it names."""

    def __init__(self, topics: list[str] | None = None,
                 allow_auto_topic_creation: bool | None = False) -> None:
        super().__init__(topics, False if allow_auto_topic_creation is None
                         else allow_auto_topic_creation)


def _no_implicit_topics() -> None:
    """aiokafka's client and admin build their metadata requests from this name in their
    modules; both get the variant that creates nothing (aiokafka has no setting for it)."""
    _client_module.MetadataRequest = _MetadataWithoutCreation
    _admin_module.MetadataRequest = _MetadataWithoutCreation


_no_implicit_topics()


class WrongPartitions(KafkaError):  # type: ignore[misc]
    """A topic exists with fewer partitions than configured (made by someone else)."""


class TopicSettings(BaseSettings):
    """How the topics a service creates are made, from ``AWE_KAFKA_*``: one setting for
    every service of a site. (Partitions are per topic, in each service's own settings.)"""

    model_config = SettingsConfigDict(env_prefix="AWE_KAFKA_", extra="ignore")

    replication_factor: int = Field(
        default=1, ge=1, description="copies of each partition: 1 for the local broker, "
        "3 for a production cluster of three brokers or more")


class KafkaSettings(BaseModel):
    bootstrap_servers: str = "127.0.0.1:9092"
    client_id: str = "awe"
    session_timeout_ms: int = Field(default=10_000, ge=1000)
    request_timeout_ms: int = Field(default=30_000, ge=1000)
    replication_factor: int = Field(
        default_factory=lambda: TopicSettings().replication_factor, ge=1,
        description="of the topics ensure_topics creates; AWE_KAFKA_REPLICATION_FACTOR")

    def common(self) -> dict[str, Any]:
        return {"bootstrap_servers": self.bootstrap_servers, "client_id": self.client_id,
                "request_timeout_ms": self.request_timeout_ms}


def make_producer(settings: KafkaSettings) -> AIOKafkaProducer:
    return AIOKafkaProducer(acks="all", linger_ms=5, max_batch_size=1 << 20, **settings.common())


def make_consumer(settings: KafkaSettings, *topics: str, group_id: str | None,
                  **kwargs: Any) -> AIOKafkaConsumer:
    return AIOKafkaConsumer(
        *topics,
        group_id=group_id,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        session_timeout_ms=settings.session_timeout_ms,
        heartbeat_interval_ms=max(100, settings.session_timeout_ms // 5),
        metadata_max_age_ms=METADATA_MAX_AGE_MS,
        **settings.common(),
        **kwargs,
    )


async def topic_partitions(admin: AIOKafkaAdminClient, names: list[str]) -> dict[str, int]:
    """Partitions of each of these topics that exists (a missing one is left out)."""
    found: dict[str, int] = {}
    for t in await admin.describe_topics(names):
        if t.get("error_code", 0) == 0 and t["topic"] in names:
            found[t["topic"]] = len(t.get("partitions") or [])
    return found


async def ensure_topics(settings: KafkaSettings, names: list[str], partitions: int = 1,
                        admin: AIOKafkaAdminClient | None = None) -> list[str]:
    """Create the topics that do not exist yet (a restarted memory broker has lost them)
    with ``partitions`` each; returns those it made. A topic that exists with fewer
    partitions raises :class:`WrongPartitions` (say so at start rather than share jobs
    among fewer workers than configured; a broker cannot always add partitions)."""
    own = admin is None
    if admin is None:
        admin = AIOKafkaAdminClient(**settings.common())
        await admin.start()
    try:
        existing = set(await admin.list_topics())
        missing = [n for n in names if n not in existing]
        if missing:
            with contextlib.suppress(TopicAlreadyExistsError):
                await admin.create_topics(
                    [NewTopic(n, num_partitions=partitions,
                              replication_factor=settings.replication_factor)
                     for n in missing])
        present = [n for n in names if n in existing]
        if present and partitions > 1:
            few = {n: k for n, k in (await topic_partitions(admin, present)).items()
                   if k < partitions}
            if few:
                raise WrongPartitions(
                    "; ".join(f"topic {n} has {k} partitions, {partitions} configured"
                              for n, k in few.items())
                    + ": delete the topic (it is remade with the configured count) or "
                    "configure the count it has")
        return missing
    finally:
        if own:
            await admin.close()


class BrokerProbe:
    """The broker's part of a service's readiness: a metadata request, bounded in time,
    over one admin connection kept between probes (opened again after a failure).

    With ``topics`` (name -> partitions), a topic that is missing is reported (the service
    that owns it makes it again), as is one with fewer partitions than configured."""

    def __init__(self, settings: KafkaSettings, topics: dict[str, int] | None = None,
                 seconds: float = 2.0) -> None:
        self.settings = settings
        self.topics = topics or {}
        self.seconds = seconds
        self._admin: AIOKafkaAdminClient | None = None

    async def check(self) -> str:
        """'ok', or what is wrong with the broker (never raises: a readiness check)."""
        try:
            async with asyncio.timeout(self.seconds):
                if self._admin is None:
                    admin = AIOKafkaAdminClient(**self.settings.common())
                    await admin.start()
                    self._admin = admin
                if not self.topics:
                    await self._admin.list_topics()
                    return "ok"
                have = await topic_partitions(self._admin, list(self.topics))
        except TimeoutError:
            await self.aclose()
            return f"broker: no answer within {self.seconds:g} s"
        except Exception as exc:  # a readiness check reports any failure, never raises
            await self.aclose()
            return f"broker: {exc!r}"
        wrong = [f"topic {n} is missing" if n not in have else
                 f"topic {n} has {have[n]} partitions, {k} configured"
                 for n, k in self.topics.items() if have.get(n, 0) < k]
        return "ok" if not wrong else "broker: " + "; ".join(wrong)

    async def aclose(self) -> None:
        admin, self._admin = self._admin, None
        await close_quietly(admin)


async def close_quietly(admin: AIOKafkaAdminClient | None) -> None:
    """Close an admin connection that is being discarded (after a failure, or at the end).
    Nothing was stored through it, so a failure to close reports nothing worth raising:
    the connection is dropped either way, and a new one is opened when next needed."""
    if admin is not None:
        with contextlib.suppress(Exception):
            await admin.close()


async def consumer_lag(consumer: AIOKafkaConsumer) -> int | None:
    """Records on the consumer's partitions that it has not read yet (None before its first
    fetch: the broker tells the high-water mark with the records)."""
    total, known = 0, False
    for tp in consumer.assignment():
        high = consumer.highwater(tp)
        if high is None:
            continue
        position = await consumer.position(TopicPartition(tp.topic, tp.partition))
        total += max(0, high - position)
        known = True
    return total if known else None
