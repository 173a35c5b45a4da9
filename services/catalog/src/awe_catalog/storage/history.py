"""An object's curation history: one row per curation, the same row at every site.

A row is keyed by (object, time at its origin, origin site): a replicated curation, and the
history a shared object brings along, land on the row its origin wrote, so recording one
twice (an echo, a catch-up after the broker) changes nothing.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any

import asyncpg

from awecore.records import CurationChange, FieldChange

__all__ = ["HISTORY_COLUMNS", "HistoryStore", "row_to_change"]

#: the columns of a history row ``h`` that ``row_to_change`` reads
HISTORY_COLUMNS = "h.oid::text AS oid, h.at, h.site, h.by_user, h.reason, h.changes"


def row_to_change(row: asyncpg.Record | dict[str, Any]) -> CurationChange:
    return CurationChange(
        oid=row["oid"], at=row["at"], by=row["by_user"], site=row["site"],
        reason=row["reason"],
        changes={k: FieldChange.model_validate(v) for k, v in (row["changes"] or {}).items()})


class HistoryStore:
    def __init__(self, conn: asyncpg.Connection) -> None:
        self.conn = conn

    async def record(self, rows: Sequence[CurationChange]) -> None:
        """Add history rows (in the transaction of the curation they describe); a row that
        is there already is left as it is."""
        if not rows:
            return
        await self.conn.executemany(
            "INSERT INTO curation_history (oid, at, site, by_user, reason, changes) "
            "VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT DO NOTHING",
            [(uuid.UUID(r.oid), r.at, r.site, r.by, r.reason,
              {k: c.model_dump(mode="json") for k, c in r.changes.items()}) for r in rows])

    async def of(self, oid: str) -> list[CurationChange]:
        """The object's history, oldest first (the caller checked that it may see it)."""
        rows = await self.conn.fetch(
            f"SELECT {HISTORY_COLUMNS} FROM curation_history h WHERE h.oid = $1 "
            "ORDER BY h.at, h.site", uuid.UUID(oid))
        return [row_to_change(r) for r in rows]
