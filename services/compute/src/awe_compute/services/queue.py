"""Job ids on ``awe.<site>.compute.jobs``; the jobs table is the truth, messages are nudges.

A lost message is harmless (the reaper re-announces ready jobs), and so is a duplicate (a
worker claims a job in the table, atomically, before it runs it).

The topic is made here and by the workers (``awecore.server.ensure_topics``), always with
``job_partitions`` partitions: no client lets the broker make it with its own default. A
broker that restarted empty acknowledges writes to the topic it lost (and drops them), so
before announcing the queue looks, at most every ``guard_seconds``, that the topic is there,
and makes it again if not; what was announced into the void is announced again by the
reaper, which announces every ready job each turn.
"""

from __future__ import annotations

import asyncio
import time

from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient

from awecore.events import topic
from awecore.server import (
    BrokerProbe,
    KafkaSettings,
    close_quietly,
    ensure_topics,
    make_producer,
)

__all__ = ["JobQueue"]


class JobQueue:
    def __init__(self, site: str, kafka: KafkaSettings, partitions: int = 1,
                 guard_seconds: float = 2.0) -> None:
        self.kafka = kafka
        self.partitions = partitions  # the consumer group shares a topic by its partitions
        self.topic = topic(site, "compute.jobs")
        self.guard_seconds = guard_seconds
        self.probe = BrokerProbe(kafka, {self.topic: partitions})
        self._producer: AIOKafkaProducer | None = None
        self._admin: AIOKafkaAdminClient | None = None
        self._guarded = 0.0

    async def start(self) -> None:
        """Make the topic (or check its partitions: ``WrongPartitions`` stops the start)."""
        await ensure_topics(self.kafka, [self.topic], self.partitions)
        self._guarded = time.monotonic()
        self._producer = make_producer(self.kafka)
        await self._producer.start()

    async def stop(self) -> None:
        await self.probe.aclose()
        await self._close_admin()
        if self._producer is not None:
            await self._producer.stop()

    async def _close_admin(self) -> None:
        admin, self._admin = self._admin, None
        await close_quietly(admin)

    async def _guard(self) -> None:
        """The topic is there (made again if the broker lost it), looked at most every
        ``guard_seconds``; a failure closes the admin connection (a new one next time)."""
        if time.monotonic() - self._guarded < self.guard_seconds:
            return
        try:
            if self._admin is None:
                admin = AIOKafkaAdminClient(**self.kafka.common())
                await admin.start()
                self._admin = admin
            await ensure_topics(self.kafka, [self.topic], self.partitions, admin=self._admin)
        except Exception:
            await self._close_admin()
            raise
        self._guarded = time.monotonic()

    async def announce(self, job_ids: list[str]) -> None:
        """Send each id and wait for every acknowledgement (a failed send raises here, its
        future retrieved, rather than being left to the loop's "never retrieved")."""
        if not job_ids:
            return
        assert self._producer is not None
        await self._guard()
        sent: list[asyncio.Future[object]] = []
        try:
            for job_id in job_ids:
                sent.append(await self._producer.send(self.topic, job_id.encode(),
                                                      key=job_id.encode()))
        finally:
            results = await asyncio.gather(*sent, return_exceptions=True)
        for result in results:
            if isinstance(result, BaseException):
                raise result

    async def check(self) -> str:
        """'ok' when the broker answers and the topic is there with its partitions, else
        why not (readiness: jobs are announced on it)."""
        if self._producer is None:
            return "not started"
        return await self.probe.check()
