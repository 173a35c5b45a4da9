"""A compute worker: ``python -m awe_compute.worker`` (run as many as there are cores).

Workers form one Kafka consumer group on ``awe.<site>.compute.jobs``. For each job id a
worker claims the job in the jobs table (so a redelivered message does nothing), makes the
product under the job's pre-chosen oid off the event loop, marks it done and announces the
jobs that became ready. A failure keeps its traceback in the job and fails what depends on
it. While a job runs its worker renews the job's lease every third of ``lease_seconds``; a
worker that dies leaves a lease that runs out, and the job is then made again elsewhere,
under the same oid, so one object is registered.

While it makes a job a worker binds the request id of the job's submission, so its calls to
the catalog and storage and its lines in the job's log carry it. It serves ``/metrics``
(``awe_compute_job_seconds`` by class and outcome, consumer lag, heartbeat), ``/livez`` and
``/readyz`` on ``AWE_COMPUTE_WORKER_METRICS_HOST``:``..._PORT`` (0: a free port) and, with
``AWE_COMPUTE_WORKER_HEARTBEAT_FILE``, rewrites that file at each turn (pid, worker, port,
the job in hand).
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import os
import signal
import socket
import time
import traceback
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import asyncpg
import structlog
from prometheus_client import Counter, Histogram

from awecore.client import AsyncCatalogClient, AsyncStorageClient, using_request_id
from awecore.errors import AweError
from awecore.model import SourceList, registry
from awecore.server import (
    Heartbeat,
    Metrics,
    Records,
    StatusServer,
    configure_logging,
    consume,
    pg,
)
from awecore.targets import AsyncMaker, CatalogPorts, MakerCache, Node

from . import plugins
from .config import ComputeSettings
from .services.credentials import Delegation
from .services.queue import JobQueue
from .storage.jobs import JobStore

__all__ = ["Worker", "main"]

#: classes whose product is not done when registered: its sources are loaded after
_SOURCE_LISTS = frozenset(registry.subclass_names(SourceList))

log = structlog.get_logger("awe.compute.worker")
#: a lease renewal that failed for these is tried again at the next turn
_DATABASE_TROUBLE: tuple[type[BaseException], ...] = (OSError, *pg.DATABASE_GONE)


class Worker:
    def __init__(self, settings: ComputeSettings, pool: asyncpg.Pool, queue: JobQueue,
                 metrics: Metrics | None = None, heartbeat: Heartbeat | None = None) -> None:
        self.settings = settings
        self.pool = pool
        self.queue = queue
        self.name = f"{socket.gethostname()}:{os.getpid()}"
        self.delegation = Delegation.of(settings)
        self.cache = MakerCache(settings.cache_bytes)  # calibrations, read once per worker
        self.metrics = metrics or Metrics("compute-worker")
        self.heartbeat = heartbeat or Heartbeat(self.metrics)
        self.durations = Histogram(
            "awe_compute_job_seconds", "how long this worker took to make a job, by class "
            "and outcome (done, failed)", ["cls", "outcome"], registry=self.metrics.registry,
            buckets=(0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800, 3600))
        self.renewals = Counter("awe_compute_lease_renewals", "leases renewed while jobs ran",
                                registry=self.metrics.registry)

    async def _make(self, job: dict[str, object]) -> str:
        """Make a job's product on this loop: the maker awaits the catalogue and storage
        here and runs the recipe (numpy work) in a thread, so the loop stays free."""
        # as the submitter, with the credential they delegated (jobs from before products
        # belonged to their submitters have none: the workers' account makes them)
        sealed = job.get("credential")
        token = self.delegation.open(str(sealed)) if sealed else self.settings.token()
        catalog = AsyncCatalogClient(self.settings.catalog_url, token)
        storage = AsyncStorageClient(self.settings.storage_url, token)
        try:
            product = str(job["product"])
            # registered by an earlier try: done (a source list may still lack its sources,
            # so it is made again, and the maker only loads what is missing)
            sources = str(job["cls"]) in _SOURCE_LISTS
            if not sources and product in await catalog.get_records([product]):
                return "registered by an earlier try"
            node = Node(str(job["cls"]), str(job["chip"]) if job["chip"] else None,
                        job["filter"] if job["filter"] else None,  # type: ignore[arg-type]
                        job["night"], job["raw"] if job["raw"] else None,  # type: ignore[arg-type]
                        raws=dict(job["raws"]),  # type: ignore[call-overload]
                        params=dict(job["params"]),  # type: ignore[call-overload]
                        extra=dict(job.get("dims") or {}),  # type: ignore[call-overload]
                        time=job.get("moment"))  # type: ignore[arg-type]
            ports = CatalogPorts(catalog)
            project = job.get("project")
            await AsyncMaker(ports, ports, storage, privileges=int(str(job.get("privileges") or 3)),
                             cache=self.cache, rules=self.settings.calibration_rules,
                             project=str(project) if project else None).make_one(
                node, dict(job["inputs"]), product)  # type: ignore[call-overload]
        finally:
            await storage.aclose()
            await catalog.aclose()
        return "made"

    async def handle(self, job_id: str) -> None:
        async with self.pool.acquire() as conn:
            job = await JobStore(conn).claim(job_id, self.name, self.settings.lease_seconds)
        if job is None:
            return  # taken by another worker, finished, or cancelled
        request_id = job["request_id"]
        with structlog.contextvars.bound_contextvars(job=job_id, request_id=request_id), \
                using_request_id(request_id):
            self.heartbeat.beat(job=job_id)
            try:
                await self._run(job_id, dict(job), request_id)
            finally:
                self.heartbeat.beat(job=None)

    async def _run(self, job_id: str, job: dict[str, Any], request_id: str | None) -> None:
        log.info("job started", cls=job["cls"], chip=job["chip"])
        stamp = f"{dt.datetime.now(dt.UTC).isoformat()} {self.name}" + (
            f" (request {request_id})" if request_id else "")
        start = time.perf_counter()
        try:
            async with self.leased(job_id):
                outcome = await self._make(job)
        except Exception as exc:
            self.durations.labels(job["cls"], "failed").observe(time.perf_counter() - start)
            async with self.pool.acquire() as conn:
                held = await JobStore(conn).fail(job_id, self.name, f"{type(exc).__name__}: {exc}",
                                                 f"{stamp}\n{traceback.format_exc()}\n")
            log.warning("job failed" if held else "job failed, but it is no longer this "
                        "worker's: left as it is", error=repr(exc))
            return
        self.durations.labels(job["cls"], "done").observe(time.perf_counter() - start)
        async with self.pool.acquire() as conn:
            ready = await JobStore(conn).done(job_id, self.name, f"{stamp}: {outcome}\n")
        await self.queue.announce(ready)
        log.info("job done", outcome=outcome, ready=len(ready))

    @asynccontextmanager
    async def leased(self, job_id: str) -> AsyncIterator[None]:
        """Renew the lease of ``job_id`` every third of ``lease_seconds`` while the block
        runs, so that a long job is not taken for a dead worker's and made twice."""

        async def renew() -> None:
            while True:
                await asyncio.sleep(self.settings.lease_seconds / 3)  # the renewal's pace
                try:
                    async with self.pool.acquire() as conn:
                        held = await JobStore(conn).renew(job_id, self.name,
                                                          self.settings.lease_seconds)
                except _DATABASE_TROUBLE as exc:
                    log.warning("cannot renew the lease; will try again", error=repr(exc))
                    continue
                if not held:
                    log.warning("the lease is lost (requeued or cancelled): its result "
                                "will be refused")
                    return
                self.renewals.inc()
                self.heartbeat.beat(job=job_id)

        task = asyncio.create_task(renew())
        try:
            yield
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _take(self, records: Records) -> None:
        for record in records:
            if record.value is not None:
                await self.handle(record.value.decode())

    async def checks(self) -> dict[str, str]:
        """Readiness of the status server: the database answers, the broker answers with
        the jobs topic as configured, the loop goes round (or a job is in hand, whose lease
        renewals beat)."""
        age = self.heartbeat.age()
        limit = max(60.0, self.settings.lease_seconds)
        return {"database": await pg.ping(self.pool), "broker": await self.queue.check(),
                "loop": "ok" if age < limit else f"no turn for {age:.0f} s"}

    async def run(self, stop: asyncio.Event) -> None:
        """Take job ids from the topic, one at a time, until ``stop`` is set."""
        await consume(stop, self.settings.kafka("awe-compute-worker"), self.queue.topic,
                      f"awe-compute-{self.settings.site}", self._take, name="compute-worker",
                      metrics=self.metrics, max_records=1,
                      expected=(OSError, *pg.DATABASE_GONE, AweError),
                      on_poll=self.heartbeat.beat,
                      # the topic is the workers' to make again after a broker restart
                      partitions=self.settings.job_partitions)


async def _main(settings: ComputeSettings) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    metrics = Metrics("compute-worker")
    heartbeat = Heartbeat(metrics, settings.worker_heartbeat_file)
    pool = await pg.create_pool(settings.database(), 1, 4)
    queue = JobQueue(settings.site, settings.kafka("awe-compute-worker"),
                     settings.job_partitions)
    await queue.start()
    worker = Worker(settings, pool, queue, metrics, heartbeat)
    status = StatusServer(metrics, settings.worker_metrics_host, settings.worker_metrics_port,
                          worker.checks)
    # users' products: the recipes this worker makes, their classes registered (idempotent)
    catalog = AsyncCatalogClient(settings.catalog_url, settings.token())
    products = asyncio.create_task(plugins.register_classes(catalog, plugins.load(), stop))
    try:
        port = await status.start()
        heartbeat.beat(worker=worker.name, metrics_host=settings.worker_metrics_host,
                       metrics_port=port, job=None)
        await worker.run(stop)
    finally:
        products.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await products
        await catalog.aclose()
        await status.stop()
        await queue.stop()
        await pool.close()


def main() -> None:
    settings = ComputeSettings()
    configure_logging("compute-worker", settings.log_level)
    asyncio.run(_main(settings))


if __name__ == "__main__":
    main()
