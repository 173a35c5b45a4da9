"""The service kit's parts that need no service: settings, retries, the status server."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import httpx
import pytest
from aiokafka.errors import KafkaConnectionError
from pydantic import ValidationError
from pydantic_settings import SettingsConfigDict

from awecore.server import Heartbeat, Metrics, ServiceSettings, StatusServer, keep_running
from awecore.server.follow import _stop_quietly


class ToySettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="AWE_TOY_")


def test_site_wide_variables_and_a_services_own(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("AWE_SITE", "AWE_TOY_SITE", "AWE_LOG_LEVEL", "AWE_KAFKA_REPLICATION_FACTOR"):
        monkeypatch.delenv(name, raising=False)
    assert ToySettings().site == "local"
    monkeypatch.setenv("AWE_SITE", "site-a")
    monkeypatch.setenv("AWE_LOG_LEVEL", "warning")
    monkeypatch.setenv("AWE_KAFKA_REPLICATION_FACTOR", "3")
    toy = ToySettings(kafka_bootstrap_servers="kafka:9092")
    assert (toy.site, toy.log_level) == ("site-a", "WARNING")
    assert toy.kafka("toy").replication_factor == 3
    monkeypatch.setenv("AWE_TOY_SITE", "own")  # the service's own variable wins
    assert ToySettings().site == "own"
    assert ToySettings(site="given").site == "given"  # and what the code passes, over both


def test_settings_refuse_what_cannot_work(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWE_TOY_LOG_LEVEL", "chatty")
    with pytest.raises(ValidationError, match="unknown log level"):
        ToySettings()
    monkeypatch.delenv("AWE_TOY_LOG_LEVEL")
    with pytest.raises(ValidationError):
        ToySettings(site="Not A Site")
    with pytest.raises(ValueError, match="AWE_TOY_KAFKA_BOOTSTRAP_SERVERS is not set"):
        ToySettings().kafka("toy")
    assert ToySettings().kafka_or_none("toy") is None
    with pytest.raises(ValueError, match="AWE_TOY_DATABASE_URL is not set"):
        ToySettings().database()


async def test_keep_running_retries_expected_errors_until_stopped() -> None:
    stop = asyncio.Event()
    calls: list[str] = []

    async def session(progress: object) -> None:
        calls.append("call")
        if len(calls) <= 2:
            raise KafkaConnectionError("no broker yet")  # retried after a backoff
        if len(calls) == 3:
            progress()  # type: ignore[operator]
            raise OSError("lost it after some work")  # retried at once
        stop.set()

    errors: list[BaseException] = []

    async def noted(exc: BaseException) -> None:
        errors.append(exc)

    await keep_running(stop, "toy", session, (KafkaConnectionError, OSError), noted,
                       first=0.01, longest=0.02)
    assert len(calls) == 4 and [type(e) for e in errors] == [
        KafkaConnectionError, KafkaConnectionError, OSError]


async def test_keep_running_ends_on_an_unexpected_error() -> None:
    async def session(progress: object) -> None:
        raise ZeroDivisionError("a bug")

    with pytest.raises(ZeroDivisionError):
        await keep_running(asyncio.Event(), "toy", session, (OSError,), first=0.01)


async def test_status_server_and_heartbeat(tmp_path: Path) -> None:
    metrics = Metrics("toy-process")
    done = metrics.counter("things", "things done")
    done.inc(3)

    async def broken_hook() -> None:
        raise RuntimeError("a source that does not answer")

    metrics.on_scrape(broken_hook)  # the scrape answers all the same
    ready = {"database": "ok"}

    async def checks() -> dict[str, str]:
        return dict(ready)

    beat = Heartbeat(metrics, tmp_path / "beat.json")
    server = StatusServer(metrics, port=0, checks=checks)
    port = await server.start()
    try:
        beat.beat(metrics_port=port, job=None)
        assert json.loads((tmp_path / "beat.json").read_text())["metrics_port"] == port
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as http:
            text = (await http.get("/metrics")).text
            assert "awe_toy_process_things_total 3.0" in text
            assert "awe_heartbeat_timestamp_seconds" in text
            assert (await http.get("/livez")).status_code == 200
            assert (await http.get("/readyz")).json() == {"status": "ok",
                                                          "checks": {"database": "ok"}}
            ready["database"] = "database: refused"
            r = await http.get("/readyz")
            assert r.status_code == 503 and r.json()["status"] == "unavailable"
            assert (await http.get("/nothing")).status_code == 404
            assert (await http.post("/metrics")).status_code == 405
    finally:
        await server.stop()


class _Stopping:
    """A consumer whose ``stop`` ends as aiokafka's may with the broker gone: in the
    CancelledError of its own fetch task, though nobody cancelled the caller."""

    def __init__(self, error: BaseException) -> None:
        self.error = error
        self.stopped = False

    async def stop(self) -> None:
        self.stopped = True
        raise self.error


async def test_a_dropped_consumer_s_own_cancellation_does_not_end_the_loop() -> None:
    for error in (asyncio.CancelledError(), KafkaConnectionError("gone"), OSError("gone")):
        consumer = _Stopping(error)
        await _stop_quietly(consumer)  # type: ignore[arg-type]
        assert consumer.stopped
    # a real cancellation of the task itself goes on as one
    started = asyncio.Event()

    async def cancelled_while_stopping() -> None:
        class Slow(_Stopping):
            async def stop(self) -> None:
                started.set()
                await asyncio.sleep(3600)  # cancelled from outside while here
        await _stop_quietly(Slow(RuntimeError()))  # type: ignore[arg-type]

    task = asyncio.create_task(cancelled_while_stopping())
    await started.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert task.cancelled()
