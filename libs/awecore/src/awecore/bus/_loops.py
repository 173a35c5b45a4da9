"""Background loops of followers: run side by side until a stop event, repeat with a pause."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any

__all__ = ["every", "run_until"]


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
    to ``on_error`` and the loop goes on."""
    while not stop.is_set():
        try:
            await step()
        except expected as exc:
            await on_error(exc)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), seconds)
