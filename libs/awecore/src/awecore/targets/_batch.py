"""Many questions asked at once, answered by one request: the planner's look-ups batched.

The planner walks every target's recipe concurrently (one coroutine per node), so at each
step of the walk hundreds of coroutines want the same kind of answer: the best calibration
for their data ID and time, the records of the oids they hold, the raw frames of a night.
Asked one by one that is a round trip each (what made a 10^4-node plan take seconds). A
:class:`Batcher` collects the keys asked for while the event loop turns a few times, then
fetches them in one call and hands each coroutine its answer; a key asked again is answered
from what was fetched (the planner lives for one plan, while the catalogue does not change
under it).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Hashable, Sequence
from typing import Any, Generic, TypeVar

__all__ = ["Batcher"]

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")

#: turns of the event loop a batch waits for more keys: the coroutines that were woken by
#: the previous batch ask their next questions within a turn or two
TICKS = 4


def _seen(future: asyncio.Future[Any]) -> None:
    """Mark a failed answer's exception as retrieved (whoever asked has it raised)."""
    if not future.cancelled():
        future.exception()


class Batcher(Generic[K, V]):
    """Answers keys through ``fetch(keys) -> values`` (in the order of the keys), many at
    a time; each key is fetched once."""

    def __init__(self, fetch: Callable[[list[K]], Awaitable[Sequence[V]]],
                 most: int = 10_000) -> None:
        self._fetch = fetch
        self.most = most  # keys per call
        self._values: dict[K, V] = {}  # answers at hand (no future: a plan has 10^4)
        self._answers: dict[K, asyncio.Future[V]] = {}  # answers awaited
        self._pending: list[K] = []
        self._flush: asyncio.Task[None] | None = None
        self.calls = 0  # fetches made (for tests and benchmarks)

    def known(self, key: K) -> bool:
        """Whether ``key`` was answered already (without an error)."""
        return key in self._values

    def at_hand(self, key: K) -> tuple[bool, V | None]:
        """(True, the answer) when ``key`` was answered already, else (False, None): what
        ``get`` would return without waiting, asked without a coroutine."""
        if key in self._values:
            return True, self._values[key]
        return False, None

    def put(self, key: K, value: V) -> None:
        """An answer learnt otherwise (a record that came with a query's results)."""
        if key not in self._answers:
            self._values.setdefault(key, value)

    async def get(self, key: K) -> V:
        if key in self._values:
            return self._values[key]
        future = self._answers.get(key)
        if future is None:
            future = asyncio.get_running_loop().create_future()
            future.add_done_callback(_seen)
            self._answers[key] = future
            self._pending.append(key)
            if self._flush is None:
                self._flush = asyncio.ensure_future(self._dispatch())
        return await future  # an asker is cancelled only with every other (a failed plan)

    async def many(self, keys: Sequence[K]) -> list[V]:
        """Answers for many keys, those not asked yet fetched now (no waiting for more); a
        failure is raised."""
        missing = [k for k in dict.fromkeys(keys)
                   if k not in self._values and k not in self._answers]
        await self._run(missing, raising=True)
        return [self._values[k] if k in self._values else await self.get(k) for k in keys]

    async def _dispatch(self) -> None:
        for _ in range(TICKS):
            await asyncio.sleep(0)
        keys, self._pending, self._flush = self._pending, [], None
        await self._run(keys)

    async def _run(self, keys: list[K], raising: bool = False) -> None:
        """Fetch the answers of keys (in calls of at most ``most``); whoever awaits one of
        them gets it, or the failure (raised here too with ``raising``)."""
        for i in range(0, len(keys), self.most):
            chunk = keys[i:i + self.most]
            try:
                self.calls += 1
                values = await self._fetch(chunk)
            except asyncio.CancelledError:
                for key in keys[i:]:
                    future = self._answers.pop(key, None)
                    if future is not None:
                        future.cancel()
                raise
            except Exception as exc:  # every asker gets the failure, and may ask again
                for key in chunk:
                    future = self._answers.pop(key, None)
                    if future is not None and not future.done():
                        future.set_exception(exc)
                if raising:
                    raise
                continue
            for key, value in zip(chunk, values, strict=True):
                self._values[key] = value
                future = self._answers.pop(key, None)
                if future is not None and not future.done():
                    future.set_result(value)
