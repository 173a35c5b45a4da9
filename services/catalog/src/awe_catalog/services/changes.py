"""The changelog as a caller may read it: the catch-up path of followers."""

from __future__ import annotations

import asyncpg

from awecore.events import ChangePage

from ..models import Caller
from ..storage.changes import ChangeStore, event_from_row

__all__ = ["ChangeService"]


class ChangeService:
    def __init__(self, pool: asyncpg.Pool, site: str) -> None:
        self.pool = pool
        self.site = site

    async def page(self, after: int, limit: int, caller: Caller) -> ChangePage:
        """Changes after sequence ``after`` that ``caller`` may see, and the newest sequence
        (a follower's lag); ``next_after`` when a full page suggests more."""
        async with self.pool.acquire() as conn:
            store = ChangeStore(conn)
            rows = await store.after(after, limit, caller)
            last = await store.last_sequence()
        events = [event_from_row(r, self.site) for r in rows]
        more = len(rows) == limit
        return ChangePage(events=events, last_sequence=last,
                          next_after=events[-1].sequence if more else None)
