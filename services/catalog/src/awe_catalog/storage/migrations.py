"""The catalog's versioned SQL migrations (``migrations/*.sql``), applied at start-up."""

from __future__ import annotations

import asyncpg

from awecore.server import pg

__all__ = ["apply_migrations"]

_LOCK = 7_031_001


async def apply_migrations(conn: asyncpg.Connection) -> list[str]:
    return await pg.apply_migrations(conn, "awe_catalog", _LOCK)
