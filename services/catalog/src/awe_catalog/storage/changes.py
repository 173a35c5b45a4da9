"""The changelog: read by sequence (HTTP catch-up, outbox relay) as CloudEvents envelopes."""

from __future__ import annotations

import asyncpg

from awecore.events import OBJECT_CREATED, OBJECT_CURATED, CatalogEvent, source_for

from ..models import Caller
from .sql import visibility

__all__ = ["ChangeStore", "event_from_row"]

_TYPES = {"created": OBJECT_CREATED, "curated": OBJECT_CURATED}


def event_from_row(row: asyncpg.Record, site: str) -> CatalogEvent:
    return CatalogEvent(
        id=str(row["event_id"]), source=source_for(site), type=_TYPES[row["kind"]],
        time=row["time"], subject=str(row["oid"]), sequence=row["seq"], data=row["payload"],
    )


class ChangeStore:
    def __init__(self, conn: asyncpg.Connection) -> None:
        self.conn = conn

    async def after(self, seq: int, limit: int, caller: Caller | None) -> list[asyncpg.Record]:
        """Changes with sequence > seq; a caller sees changes of objects visible to them."""
        if caller is None or caller.sees_all:
            return list(await self.conn.fetch(
                "SELECT seq, event_id, oid, kind, time, payload FROM changes "
                "WHERE seq > $1 ORDER BY seq LIMIT $2", seq, limit))
        vis, params = visibility(caller, "o", 3)
        return list(await self.conn.fetch(
            f"SELECT c.seq, c.event_id, c.oid, c.kind, c.time, c.payload FROM changes c "
            f"JOIN objects o ON o.oid = c.oid WHERE c.seq > $1 AND {vis} "
            f"ORDER BY c.seq LIMIT $2", seq, limit, *params))

    async def last_sequence(self) -> int:
        value = await self.conn.fetchval("SELECT coalesce(max(seq), 0) FROM changes")
        return int(value)

    async def cursor(self, name: str) -> int:
        value = await self.conn.fetchval(
            "SELECT last_seq FROM outbox_cursor WHERE name = $1", name)
        return int(value or 0)

    async def set_cursor(self, name: str, seq: int) -> None:
        await self.conn.execute(
            "INSERT INTO outbox_cursor (name, last_seq) VALUES ($1, $2) "
            "ON CONFLICT (name) DO UPDATE SET last_seq = GREATEST(outbox_cursor.last_seq, $2)",
            name, seq)
