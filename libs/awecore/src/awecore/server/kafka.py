"""aiokafka wiring shared by every service: client settings, producers, consumers, topics.

Kafka transactions and idempotent producers are not used (the local broker lacks them, and
the outbox plus idempotent consumers make them unnecessary): producers wait for all acks.
"""

from __future__ import annotations

import contextlib
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import TopicAlreadyExistsError
from pydantic import BaseModel, Field
from pydantic_settings import BaseSettings, SettingsConfigDict

__all__ = ["KafkaSettings", "TopicSettings", "consumer_lag", "ensure_topics", "make_consumer",
           "make_producer"]


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
        **settings.common(),
        **kwargs,
    )


async def ensure_topics(settings: KafkaSettings, names: list[str], partitions: int = 1) -> None:
    """Create topics that do not exist yet (a restarted memory broker has lost them)."""
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
    finally:
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
