"""The source table: bulk loading, DSL queries, and cone search on HEALPix ranges."""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from typing import Any

import asyncpg
import numpy as np

from awecore.healpix import healpix_of, ranges_for_cone
from awecore.query import QuerySpec
from awecore.sources import SourceQueryPage, SourceRow

from ..models import Caller
from .sql import SOURCE_COLUMNS, compile_source_count, compile_source_select, source_filter

__all__ = ["SourceStore"]

COLUMNS = ("x", "y", "flux", "flux_err", "mag", "mag_err", "snr", "flag")


class SourceStore:
    def __init__(self, conn: asyncpg.Connection) -> None:
        self.conn = conn

    async def loaded(self, sourcelist: str) -> bool:
        """Whether the sources of ``sourcelist`` are loaded (they are loaded once)."""
        return bool(await self.conn.fetchval(
            "SELECT 1 FROM sources WHERE sourcelist = $1::uuid LIMIT 1", sourcelist))

    async def load(self, sourcelist: str, columns: Mapping[str, Sequence[Any]]) -> int:
        ra = np.asarray(columns["ra"], dtype=np.float64)
        dec = np.asarray(columns["dec"], dtype=np.float64)
        pix = healpix_of(ra, dec)
        oid = uuid.UUID(sourcelist)
        n = len(ra)
        extra = [columns.get(c, [0 if c == "flag" else None] * n) for c in COLUMNS]
        rows = [(oid, i, float(ra[i]), float(dec[i]), int(pix[i]),
                 *(None if col[i] is None else col[i] for col in extra)) for i in range(n)]
        await self.conn.copy_records_to_table(
            "sources", records=rows,
            columns=("sourcelist", "seq", "ra", "dec", "healpix", *COLUMNS))
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
        lo, hi = ranges_for_cone(ra, dec, radius)
        where = source_filter(spec, caller, 6)
        # The HEALPix ranges are read first (MATERIALIZED): otherwise the planner may scan
        # the whole table in distance order to satisfy ORDER BY ... LIMIT. They are written
        # as integer literals (ours, from the cone, never the caller's text), so that the
        # planner estimates each range from the index's statistics: as parameters (or an
        # unnested array) each range is guessed at a ninth of the table, and at 10^7 rows
        # the planner then prefers a parallel scan of the whole table (seconds).
        ranges = " OR ".join(f"s.healpix BETWEEN {int(a)} AND {int(b)}"
                             for a, b in zip(lo, hi, strict=True))
        return list(await self.conn.fetch(
            f"WITH near AS MATERIALIZED ("
            f"  SELECT s.*, degrees(2 * asin(sqrt("
            f"    sin(radians(s.dec - $2) / 2) ^ 2 + cos(radians(s.dec)) * cos(radians($2)) *"
            f"    sin(radians(s.ra - $1) / 2) ^ 2))) AS distance "
            f"  FROM sources s WHERE ({ranges}) AND ($4::real IS NULL OR s.mag <= $4)) "
            f"SELECT {SOURCE_COLUMNS}, s.distance FROM near s "
            f"JOIN objects l ON l.oid = s.sourcelist "
            f"WHERE s.distance <= $3 AND {where.sql} ORDER BY s.distance LIMIT $5",
            ra, dec, radius, mag_max, limit, *where.params))
