"""A private event loop for the synchronous side of target processing.

The planner and the maker are coroutines. A scientist calls them from a plain prompt or a
script (no event loop), or from IPython or Jupyter, where a loop already runs in the main
thread and ``asyncio.run`` is refused. So the synchronous facade runs them on a loop of its
own, in one daemon thread started when first needed, and waits for the result: the same
behaviour everywhere, whatever the caller's thread is doing.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Coroutine
from typing import Any, TypeVar

__all__ = ["run"]

T = TypeVar("T")

_lock = threading.Lock()
_loop: asyncio.AbstractEventLoop | None = None
_thread: threading.Thread | None = None


def _serve(loop: asyncio.AbstractEventLoop) -> None:
    asyncio.set_event_loop(loop)
    loop.run_forever()


def _running_loop() -> asyncio.AbstractEventLoop:
    global _loop, _thread
    with _lock:
        if _loop is None or _thread is None or not _thread.is_alive():
            _loop = asyncio.new_event_loop()
            _thread = threading.Thread(target=_serve, args=(_loop,), name="awe-targets",
                                       daemon=True)
            _thread.start()
        return _loop


def run(coro: Coroutine[Any, Any, T]) -> T:
    """Run ``coro`` on the private loop and wait for its result (or its exception). An
    interrupt (Ctrl-C) while waiting cancels it."""
    loop = _running_loop()
    if threading.current_thread() is _thread:
        coro.close()
        raise RuntimeError("the synchronous targets API was called from its own event loop "
                           "(a progress callback?): await the async planner/maker there")
    future = asyncio.run_coroutine_threadsafe(coro, loop)
    try:
        return future.result()
    except BaseException:
        future.cancel()
        raise
