"""Background loops: where a service's long-running work lives, and how it retries.

Every loop of a process (a follower, the reaper, a worker's consumer, a heartbeat) is added
to one :class:`Loops` by name, started after the process context is open and stopped (a
stop event, then cancellation) before it closes; readiness reports whether each still runs.
A loop that talks to a broker or a peer retries with :func:`keep_running`: an exponential
backoff with jitter (tenacity) that starts afresh after a session that made progress, so a
long outage is not hammered and a brief one costs a fraction of a second.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any

import structlog
from tenacity import AsyncRetrying, RetryCallState, retry_if_exception_type
from tenacity import wait_exponential_jitter as _backoff

__all__ = ["Loops", "every", "keep_running", "pause", "run_until"]

log = structlog.get_logger("awe.loops")

#: the first retry waits about this long, each next one twice as long...
FIRST_RETRY_SECONDS = 0.5
#: ...up to this
LONGEST_RETRY_SECONDS = 30.0

Loop = Callable[[asyncio.Event], Coroutine[Any, Any, None]]


class Loops:
    """Named background loops of one process, each a coroutine ``loop(stop)`` that returns
    once ``stop`` is set."""

    def __init__(self) -> None:
        self.stop_event = asyncio.Event()
        self._loops: dict[str, Loop] = {}
        self._tasks: dict[str, asyncio.Task[None]] = {}

    def add(self, name: str, loop: Loop) -> None:
        if name in self._loops:
            raise ValueError(f"a loop named {name!r} exists already")
        self._loops[name] = loop
        if self._tasks:  # added after the start: runs at once
            self._tasks[name] = asyncio.create_task(loop(self.stop_event), name=name)

    def start(self) -> None:
        for name, loop in self._loops.items():
            if name not in self._tasks:
                self._tasks[name] = asyncio.create_task(loop(self.stop_event), name=name)

    async def stop(self, grace: float = 10.0) -> None:
        """Ask every loop to stop; cancel those that have not within ``grace`` seconds."""
        self.stop_event.set()
        tasks = list(self._tasks.values())
        if tasks:
            _, late = await asyncio.wait(tasks, timeout=grace)
            for task in late:
                task.cancel()
            for task in tasks:
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task
        self._tasks.clear()

    def status(self) -> dict[str, str]:
        """Per loop: 'ok' while it runs, else why it ended."""
        out: dict[str, str] = {}
        for name, task in self._tasks.items():
            if not task.done():
                out[name] = "ok"
            elif task.cancelled():
                out[name] = "cancelled"
            elif (exc := task.exception()) is not None:
                out[name] = f"ended: {exc!r}"
            else:
                out[name] = "ok" if self.stop_event.is_set() else "ended"
        return out


async def pause(stop: asyncio.Event, seconds: float) -> None:
    """Wait ``seconds``, or less if ``stop`` is set meanwhile."""
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), seconds)


async def run_until(stop: asyncio.Event, *loops: Coroutine[Any, Any, None]) -> None:
    """Run the loops as tasks until ``stop`` is set, then cancel them."""
    tasks = [asyncio.create_task(loop) for loop in loops]
    try:
        await stop.wait()
    finally:
        for t in tasks:
            t.cancel()
        for t in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await t


async def every(stop: asyncio.Event, seconds: float, step: Callable[[], Awaitable[object]],
                expected: tuple[type[BaseException], ...],
                on_error: Callable[[BaseException], Awaitable[None]]) -> None:
    """Call ``step`` now and every ``seconds`` until stopped; expected errors are reported
    to ``on_error`` and the loop goes on (the next turn is the retry)."""
    while not stop.is_set():
        try:
            await step()
        except expected as exc:
            await on_error(exc)
        await pause(stop, seconds)


class _AfterProgress(Exception):
    """A session failed after it had made progress: retry at once, backoff afresh."""


async def keep_running(stop: asyncio.Event, what: str,
                       session: Callable[[Callable[[], None]], Awaitable[None]],
                       expected: tuple[type[BaseException], ...],
                       on_error: Callable[[BaseException], Awaitable[None]] | None = None,
                       first: float = FIRST_RETRY_SECONDS,
                       longest: float = LONGEST_RETRY_SECONDS) -> None:
    """Run ``session(progress)`` until ``stop`` is set, again after each expected error.

    The session calls ``progress()`` whenever it got something done (connected, consumed a
    batch); an error after progress is retried at once with the backoff reset, errors in a
    row wait ``first``, 2 x ``first``, ... up to ``longest`` seconds (with jitter).
    Unexpected errors end the loop (and :class:`Loops` reports it).
    """

    async def attempt() -> None:
        progressed = False

        def progress() -> None:
            nonlocal progressed
            progressed = True

        try:
            await session(progress)
        except expected as exc:
            if on_error is not None:
                await on_error(exc)
            if progressed:
                raise _AfterProgress() from exc
            raise

    def before_sleep(state: RetryCallState) -> None:
        exc = state.outcome.exception() if state.outcome else None
        wait = state.next_action.sleep if state.next_action else 0.0
        log.warning(f"{what}: trouble; retrying", error=repr(exc), attempt=state.attempt_number,
                    retry_in=round(wait, 2))

    async def sleep(seconds: float) -> None:
        await pause(stop, seconds)

    while not stop.is_set():
        retrying = AsyncRetrying(
            retry=retry_if_exception_type(expected),
            wait=_backoff(multiplier=first, max=longest, jitter=first),
            stop=lambda _: stop.is_set(), sleep=sleep, before_sleep=before_sleep,
            reraise=True)
        try:
            await retrying(attempt)
        except _AfterProgress as exc:
            log.warning(f"{what}: trouble after progress; retrying at once",
                        error=repr(exc.__cause__))
        except expected:
            if not stop.is_set():  # pragma: no cover - tenacity only gives up when stopped
                raise
