"""The source table: bulk loading, DSL queries, and cone search on HEALPix ranges."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Mapping

import asyncpg
import numpy as np

from awecore.query import QuerySpec
from awecore.sources import SourceQueryPage, SourceRow

from ..models import Caller
from .cone import cone as cone_search
from .source_copy import COPY_COLUMNS, HEADER, TRAILER, tuples
from .sql import compile_source_count, compile_source_select

__all__ = ["SourceStore"]

#: rows built on the event loop (a few ms); a bigger load is built in a worker thread
INLINE = 10_000
#: rows of a COPY chunk: some 7 MB of stream
CHUNK = 50_000


async def _chunks(oid: uuid.UUID, columns: Mapping[str, np.ndarray],
                  n: int) -> AsyncIterator[bytes]:
    """The COPY stream of ``n`` rows, the next chunk built while this one is sent."""
    bounds = [(start, min(n, start + CHUNK)) for start in range(0, n, CHUNK)]

    def build(k: int) -> asyncio.Future[bytes]:
        return asyncio.ensure_future(asyncio.to_thread(tuples, oid, columns, *bounds[k]))

    yield HEADER
    pending = build(0)
    try:
        for k in range(len(bounds)):
            data = await pending
            if k + 1 < len(bounds):
                pending = build(k + 1)
            yield data
    finally:
        pending.cancel()  # the COPY failed mid-way: a chunk nobody will send
    yield TRAILER


class SourceStore:
    def __init__(self, conn: asyncpg.Connection) -> None:
        self.conn = conn

    async def loaded(self, sourcelist: str) -> bool:
        """Whether the sources of ``sourcelist`` are loaded (they are loaded once)."""
        return bool(await self.conn.fetchval(
            "SELECT 1 FROM sources WHERE sourcelist = $1::uuid LIMIT 1", sourcelist))

    async def load(self, sourcelist: str, columns: Mapping[str, np.ndarray]) -> int:
        """Checked columns (``awecore.source_columns.checked``) as the rows of
        ``sourcelist``, seq from 0, in one binary COPY built by numpy (source_copy), within
        the caller's transaction. A big load is built in chunks in a worker thread, each
        while PostgreSQL takes the one before, so the event loop serves other requests
        meanwhile."""
        oid = uuid.UUID(sourcelist)
        n = len(columns["ra"])
        # Each row's reference to its source list is checked by a statement of
        # PostgreSQL's own (the foreign key's trigger); planned for each row, as the pool's
        # force_custom_plan asks, it halved the rate of the COPY. Its plan is the same for
        # any row (a primary key look-up): planned once, for this transaction.
        await self.conn.execute("SET LOCAL plan_cache_mode = force_generic_plan")
        source: memoryview | AsyncIterator[bytes]
        if n <= INLINE:
            source = memoryview(HEADER + tuples(oid, columns, 0, n) + TRAILER)
        else:
            source = _chunks(oid, columns, n)
        await self.conn.copy_to_table("sources", source=source, columns=COPY_COLUMNS,
                                      format="binary")
        return n

    async def query(self, spec: QuerySpec, caller: Caller, offset: int,
                    limit: int) -> SourceQueryPage:
        # one row more tells whether another page exists without a count
        q = compile_source_select(spec, caller, offset, limit + 1)
        rows = [SourceRow.model_validate(dict(r)) for r in await self.conn.fetch(q.sql, *q.params)]
        return SourceQueryPage(sources=rows[:limit], offset=offset, limit=limit,
                               next_offset=offset + limit if len(rows) > limit else None)

    async def count(self, spec: QuerySpec, caller: Caller) -> int:
        q = compile_source_count(spec, caller)
        return int(await self.conn.fetchval(q.sql, *q.params))

    async def cone(self, ra: float, dec: float, radius: float, caller: Caller,
                   limit: int, mag_max: float | None = None,
                   spec: QuerySpec | None = None) -> list[asyncpg.Record]:
        """Nearest first; ``spec`` (a Source query's where and scope) narrows the sources."""
        return await cone_search(self.conn, ra, dec, radius, caller, limit, mag_max, spec)
