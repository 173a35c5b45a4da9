"""Job ids on ``awe.<site>.compute.jobs``; the jobs table is the truth, messages are nudges.

A lost message is harmless (the reaper re-announces ready jobs), and so is a duplicate (a
worker claims a job in the table, atomically, before it runs it)."""

from __future__ import annotations

from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError

from awecore.events import topic
from awecore.server import KafkaSettings, ensure_topics, make_producer

__all__ = ["JobQueue"]


class JobQueue:
    def __init__(self, site: str, kafka: KafkaSettings, partitions: int = 1) -> None:
        self.kafka = kafka
        self.partitions = partitions  # the consumer group shares a topic by its partitions
        self.topic = topic(site, "compute.jobs")
        self._producer: AIOKafkaProducer | None = None

    async def start(self) -> None:
        await ensure_topics(self.kafka, [self.topic], self.partitions)
        self._producer = make_producer(self.kafka)
        await self._producer.start()

    async def stop(self) -> None:
        if self._producer is not None:
            await self._producer.stop()

    async def announce(self, job_ids: list[str]) -> None:
        assert self._producer is not None
        for job_id in job_ids:
            await self._producer.send(self.topic, job_id.encode(), key=job_id.encode())
        await self._producer.flush()

    async def check(self) -> str:
        """'ok' when the broker answers a metadata request, else why not (readiness: jobs
        are announced on it)."""
        if self._producer is None:
            return "not started"
        try:
            await self._producer.client.fetch_all_metadata()
        except (KafkaError, OSError) as exc:
            return f"broker: {exc!r}"
        return "ok"
