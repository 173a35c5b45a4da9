"""Versioned SQL migrations, applied at start-up under an advisory lock.

Each file runs once, in name order, in its own transaction; the files themselves are also
written to be idempotent, so a crash between file and bookkeeping is harmless.
"""

from __future__ import annotations

from importlib import resources

import asyncpg
import structlog

__all__ = ["apply_migrations"]

_LOCK = 7_031_001
log = structlog.get_logger("awe.catalog.migrations")


async def apply_migrations(conn: asyncpg.Connection, package: str = "awe_catalog") -> list[str]:
    """Apply pending migrations; returns the versions applied now."""
    files = sorted(
        (f for f in resources.files(package).joinpath("migrations").iterdir()
         if f.name.endswith(".sql")),
        key=lambda f: f.name,
    )
    applied: list[str] = []
    await conn.execute("SELECT pg_advisory_lock($1)", _LOCK)
    try:
        await conn.execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations ("
            " version text PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())"
        )
        done = {r["version"] for r in await conn.fetch("SELECT version FROM schema_migrations")}
        for f in files:
            version = f.name.removesuffix(".sql")
            if version in done:
                continue
            async with conn.transaction():
                await conn.execute(f.read_text())
                await conn.execute("INSERT INTO schema_migrations (version) VALUES ($1)", version)
            applied.append(version)
            log.info("migration applied", version=version)
    finally:
        await conn.execute("SELECT pg_advisory_unlock($1)", _LOCK)
    return applied
