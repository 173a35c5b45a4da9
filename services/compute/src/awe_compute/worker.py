"""A compute worker: ``python -m awe_compute.worker`` (run as many as there are cores).

Workers form one Kafka consumer group on ``awe.<site>.compute.jobs``. For each job id a
worker claims the job in the jobs table (so a redelivered message does nothing), makes the
product under the job's pre-chosen oid off the event loop, marks it done and announces the
jobs that became ready. A failure keeps its traceback in the job and fails what depends on
it. A worker that dies leaves a lease that runs out; the job is then made again elsewhere,
under the same oid, so one object is registered.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import os
import signal
import socket
import traceback

import asyncpg
import structlog
from aiokafka.errors import KafkaError

from awecore import pg
from awecore.bus import KafkaSettings, make_consumer
from awecore.client import CatalogClient, StorageClient
from awecore.logs import configure_logging
from awecore.targets import Maker, MakerCache, Node

from .config import ComputeSettings
from .services.queue import JobQueue
from .storage.jobs import JobStore

__all__ = ["Worker", "main"]

log = structlog.get_logger("awe.compute.worker")


class Worker:
    def __init__(self, settings: ComputeSettings, pool: asyncpg.Pool, queue: JobQueue) -> None:
        self.settings = settings
        self.pool = pool
        self.queue = queue
        self.name = f"{socket.gethostname()}:{os.getpid()}"
        self.cache = MakerCache(settings.cache_bytes)  # calibrations, read once per worker

    def _make(self, job: dict[str, object]) -> str:
        """Runs in a thread: the pipelines are numpy work."""
        token = self.settings.token()
        with CatalogClient(self.settings.catalog_url, token) as catalog:
            product = str(job["product"])
            # registered by an earlier try: done (a source list may still lack its sources,
            # so it is made again, and the maker only loads what is missing)
            if job["cls"] != "SourceList" and product in catalog.get_records([product]):
                return "registered by an earlier try"
            storage = StorageClient(self.settings.storage_url, token)
            try:
                node = Node(str(job["cls"]), str(job["chip"]),
                            job["filter"] if job["filter"] else None,  # type: ignore[arg-type]
                            job["night"], job["raw"] if job["raw"] else None,  # type: ignore[arg-type]
                            raws=dict(job["raws"]),  # type: ignore[call-overload]
                            params=dict(job["params"]))  # type: ignore[call-overload]
                Maker(catalog, storage, cache=self.cache).make_one(
                    node, dict(job["inputs"]), product)  # type: ignore[call-overload]
            finally:
                storage.close()
        return "made"

    async def handle(self, job_id: str) -> None:
        async with self.pool.acquire() as conn:
            job = await JobStore(conn).claim(job_id, self.name, self.settings.lease_seconds)
        if job is None:
            return  # taken by another worker, finished, or cancelled
        log.info("job started", job=job_id, cls=job["cls"], chip=job["chip"])
        await self.queue.status(job_id, "running")
        stamp = dt.datetime.now(dt.UTC).isoformat()
        try:
            outcome = await asyncio.to_thread(self._make, dict(job))
        except Exception as exc:
            async with self.pool.acquire() as conn:
                await JobStore(conn).fail(job_id, f"{type(exc).__name__}: {exc}",
                                          f"{stamp} {self.name}\n{traceback.format_exc()}\n")
            await self.queue.status(job_id, "failed")
            log.warning("job failed", job=job_id, error=repr(exc))
            return
        async with self.pool.acquire() as conn:
            ready = await JobStore(conn).done(job_id, self.name,
                                              f"{stamp} {self.name}: {outcome}\n")
        await self.queue.status(job_id, "done")
        await self.queue.announce(ready)
        log.info("job done", job=job_id, outcome=outcome, ready=len(ready))

    async def run(self, stop: asyncio.Event) -> None:
        kafka = KafkaSettings(bootstrap_servers=self.settings.kafka_bootstrap_servers,
                              client_id="awe-compute-worker",
                              session_timeout_ms=self.settings.session_timeout_ms)
        while not stop.is_set():
            consumer = make_consumer(kafka, self.queue.topic,
                                     group_id=f"awe-compute-{self.settings.site}")
            try:
                await consumer.start()
                while not stop.is_set():
                    batch = await consumer.getmany(timeout_ms=500, max_records=1)
                    for records in batch.values():
                        for record in records:
                            await self.handle(record.value.decode())
                    if batch:
                        await consumer.commit()
            except (KafkaError, OSError) as exc:
                log.warning("broker trouble; reconnecting", error=repr(exc))
                await asyncio.sleep(2)
            finally:
                await consumer.stop()


async def _main(settings: ComputeSettings) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    pool = await pg.create_pool(settings.database_url.get_secret_value(), 1, 4)
    queue = JobQueue(settings.site, KafkaSettings(
        bootstrap_servers=settings.kafka_bootstrap_servers, client_id="awe-compute-worker"),
        settings.job_partitions)
    await queue.start()
    try:
        await Worker(settings, pool, queue).run(stop)
    finally:
        await queue.stop()
        await pool.close()


def main() -> None:
    settings = ComputeSettings()
    configure_logging("compute-worker", settings.log_level)
    asyncio.run(_main(settings))


if __name__ == "__main__":
    main()
