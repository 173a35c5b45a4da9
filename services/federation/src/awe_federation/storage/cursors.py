"""Per-peer cursors and the changes that wait for the objects they reference."""

from __future__ import annotations

import datetime as dt
from typing import Any

import asyncpg

from awecore.events import CatalogEvent

__all__ = ["CursorStore"]


class CursorStore:
    def __init__(self, conn: asyncpg.Connection) -> None:
        self.conn = conn

    async def get(self, peer: str) -> asyncpg.Record:
        await self.conn.execute(
            "INSERT INTO peer_cursor (peer) VALUES ($1) ON CONFLICT DO NOTHING", peer)
        row = await self.conn.fetchrow("SELECT * FROM peer_cursor WHERE peer = $1", peer)
        assert row is not None
        return row

    async def advance(self, peer: str, seq: int, time: dt.datetime) -> None:
        await self.conn.execute(
            "UPDATE peer_cursor SET last_seq = $2, last_time = $3, updated = now(), "
            "last_error = NULL WHERE peer = $1 AND last_seq < $2", peer, seq, time)

    async def error(self, peer: str, message: str) -> None:
        await self.conn.execute(
            "UPDATE peer_cursor SET last_error = $2, updated = now() WHERE peer = $1",
            peer, f"{dt.datetime.now(dt.UTC).isoformat()} {message}"[:2000])

    async def wait(self, peer: str, events: list[CatalogEvent]) -> None:
        await self.conn.executemany(
            "INSERT INTO pending (peer, id, seq, event) VALUES ($1, $2, $3, $4) "
            "ON CONFLICT DO NOTHING",
            [(peer, e.id, e.sequence, e.model_dump(mode="json")) for e in events])

    async def waiting(self, peer: str) -> list[CatalogEvent]:
        rows = await self.conn.fetch(
            "SELECT event FROM pending WHERE peer = $1 ORDER BY seq, id", peer)
        return [CatalogEvent.model_validate(r["event"]) for r in rows]

    async def done(self, peer: str, ids: list[str]) -> None:
        await self.conn.execute("DELETE FROM pending WHERE peer = $1 AND id = ANY($2::text[])",
                                peer, ids)

    async def count_waiting(self, peer: str) -> int:
        return int(await self.conn.fetchval("SELECT count(*) FROM pending WHERE peer = $1",
                                            peer))

    async def all(self) -> list[dict[str, Any]]:
        return [dict(r) for r in await self.conn.fetch("SELECT * FROM peer_cursor ORDER BY peer")]
