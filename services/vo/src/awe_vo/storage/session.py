"""Read-only sessions on the catalog's database.

The VO service compiles users' ADQL to SQL over the catalog's tables, so what it runs must
not be able to change them nor run forever, whatever slipped through the compiler: every
statement runs inside a ``READ ONLY`` transaction with a ``statement_timeout`` set LOCAL to
that transaction (so the pooled connection keeps no session state)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import asyncpg

__all__ = ["read_only"]


@asynccontextmanager
async def read_only(pool: asyncpg.Pool, timeout_ms: int) -> AsyncIterator[asyncpg.Connection]:
    """A connection inside a READ ONLY transaction bounded by ``timeout_ms`` per statement;
    the transaction is rolled back at the end (nothing to commit)."""
    async with pool.acquire() as conn:
        tx = conn.transaction(readonly=True)
        await tx.start()
        try:
            await conn.execute(f"SET LOCAL statement_timeout = {int(timeout_ms)}")
            yield conn
        finally:
            await tx.rollback()
