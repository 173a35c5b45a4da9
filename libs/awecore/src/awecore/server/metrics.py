"""Prometheus metrics of one app or process, on a registry of its own.

A registry per app (not the global one): tests run several apps in one process. Every
registry has the HTTP metrics (``awe_<service>_requests_total``, ``..._request_seconds``)
and the lag of the process's followers and consumers; a service adds its own with
:meth:`Metrics.counter` and friends, and values that are cheaper to read when scraped than
to keep up to date (queue depth from the jobs table, say) with :meth:`Metrics.on_scrape`.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence

import structlog
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)

__all__ = ["CONTENT_TYPE_LATEST", "Metrics"]

log = structlog.get_logger("awe.metrics")
#: a scrape hook that takes longer is abandoned (scrapers time out after about 10 s)
HOOK_SECONDS = 3.0


class Metrics:
    def __init__(self, service: str) -> None:
        self.service = service
        self.prefix = "awe_" + service.replace("-", "_")
        self.registry = CollectorRegistry()
        self._hooks: list[Callable[[], Awaitable[None]]] = []
        self.requests = self.counter("requests", "HTTP requests", ["method", "route", "status"])
        self.latency = self.histogram("request_seconds", "HTTP request latency",
                                      ["method", "route"])
        self.follower_lag = Gauge(
            "awe_follower_lag", "changes the followed changelog has that this follower has "
            "not applied yet (as of its last look)", ["follower"], registry=self.registry)
        self.consumer_lag = Gauge(
            "awe_consumer_lag", "records on the Kafka partitions of this consumer that it "
            "has not read yet", ["consumer"], registry=self.registry)
        self.heartbeat = Gauge("awe_heartbeat_timestamp_seconds",
                               "when the main loop of the process last went round",
                               registry=self.registry)

    # -- a service's own metrics, named awe_<service>_<name> -------------------------------
    def counter(self, name: str, doc: str, labels: Sequence[str] = ()) -> Counter:
        return Counter(f"{self.prefix}_{name}", doc, list(labels), registry=self.registry)

    def gauge(self, name: str, doc: str, labels: Sequence[str] = ()) -> Gauge:
        return Gauge(f"{self.prefix}_{name}", doc, list(labels), registry=self.registry)

    def histogram(self, name: str, doc: str, labels: Sequence[str] = (),
                  buckets: Sequence[float] | None = None) -> Histogram:
        if buckets is None:
            return Histogram(f"{self.prefix}_{name}", doc, list(labels),
                             registry=self.registry)
        return Histogram(f"{self.prefix}_{name}", doc, list(labels), registry=self.registry,
                         buckets=list(buckets))

    def on_scrape(self, hook: Callable[[], Awaitable[None]]) -> None:
        """Run ``hook`` (which sets gauges) before each scrape."""
        self._hooks.append(hook)

    async def render(self) -> bytes:
        """The text exposition; a failing hook leaves its gauges as they were."""
        for hook in self._hooks:
            try:
                async with asyncio.timeout(HOOK_SECONDS):
                    await hook()
            except Exception as exc:  # a scrape answers even when a source does not
                log.warning("metrics hook failed", hook=getattr(hook, "__qualname__", "?"),
                            error=repr(exc))
        return generate_latest(self.registry)
