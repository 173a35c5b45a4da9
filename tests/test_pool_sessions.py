"""Pooled connections go back to the pool without a reset query (one round trip less per
request, ``awecore.server.pg``): what a request leaves on its connection must not reach the
next one, and the look-up pool plans its statements once."""

from __future__ import annotations

import asyncio

import asyncpg
import pytest

from awecore.server import pg
from awecore.stack import PostgresServer

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def db_url(postgres: PostgresServer) -> str:
    return postgres.create_database("awe_pool_sessions")


async def test_a_transaction_left_open_is_rolled_back_before_reuse(db_url: str) -> None:
    pool = await pg.create_pool(db_url, 1, 1)
    try:
        async with pool.acquire() as conn:
            await conn.execute("CREATE TABLE IF NOT EXISTS left_open (n int)")
            await conn.execute("TRUNCATE left_open")
        async with pool.acquire() as conn:
            await conn.execute("BEGIN")
            await conn.execute("INSERT INTO left_open VALUES (1)")
        async with pool.acquire() as conn:  # the same connection: one in the pool
            assert not conn.is_in_transaction()
            assert await conn.fetchval("SELECT count(*) FROM left_open") == 0
            await conn.execute("INSERT INTO left_open VALUES (2)")  # usable as it is
            assert await conn.fetchval("SELECT count(*) FROM left_open") == 1
    finally:
        await pool.close()


async def test_a_listener_leaves_its_connection_not_listening(db_url: str) -> None:
    """``pg.listen`` holds a pooled connection while it listens and gives it back
    unlistened (the pool's reset would have done that; it no longer runs)."""
    pool = await pg.create_pool(db_url, 1, 1)  # one connection: the listener's
    stop, listening, got = asyncio.Event(), asyncio.Event(), asyncio.Event()
    heard: list[str] = []

    def hear(_conn: object, _pid: int, _channel: str, payload: str) -> None:
        heard.append(payload)
        got.set()

    async def started() -> None:
        listening.set()

    task = asyncio.create_task(pg.listen(
        pool, "awe_pool_test", "test", stop, hear, started))
    notifier = await asyncpg.connect(db_url)
    try:
        async with asyncio.timeout(30):
            await listening.wait()
            await notifier.execute("NOTIFY awe_pool_test, 'hello'")
            await got.wait()
            stop.set()
            await task
            async with pool.acquire() as conn:  # the listener's connection, given back
                assert await conn.fetchval("SELECT count(*) FROM pg_listening_channels()") == 0
    finally:
        stop.set()
        await notifier.close()
        await pool.close()
    assert heard == ["hello"]


async def test_the_lookup_pool_plans_once_the_others_every_time(db_url: str) -> None:
    custom = await pg.create_pool(db_url, 1, 1)
    generic = await pg.create_pool(db_url, 1, 1, generic=True)
    try:
        assert await custom.fetchval("SHOW plan_cache_mode") == "force_custom_plan"
        assert await generic.fetchval("SHOW plan_cache_mode") == "force_generic_plan"
        for pool in (custom, generic):  # and it stays so from one request to the next
            async with pool.acquire() as conn:
                await conn.fetchval("SELECT 1")
        assert await generic.fetchval("SHOW plan_cache_mode") == "force_generic_plan"
    finally:
        await custom.close()
        await generic.close()
