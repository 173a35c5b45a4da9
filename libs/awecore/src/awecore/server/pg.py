"""PostgreSQL plumbing every service with a database shares: pools and migrations.

Imported by services only. Migrations are the ``migrations/*.sql`` files of the service's
package, applied in name order at start-up, each once, under an advisory lock.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from importlib import resources

import asyncpg
import orjson
import structlog

from .loops import keep_running

__all__ = ["DATABASE_GONE", "apply_migrations", "create_pool", "ping"]

#: what a database that went away (stopped, restarting, recovering) raises: a server error,
#: or a pooled connection found closed (asyncpg's InterfaceError is not a PostgresError).
#: Loops that must outlive a database restart retry on these.
DATABASE_GONE: tuple[type[BaseException], ...] = (asyncpg.PostgresError, asyncpg.InterfaceError)

log = structlog.get_logger("awe.pg")


def _jsonb_encode(value: object) -> bytes:
    return b"\x01" + orjson.dumps(value)


def _jsonb_decode(data: bytes) -> object:
    return orjson.loads(data[1:])


async def _init_connection(conn: asyncpg.Connection) -> None:
    # binary, so that COPY (the bulk path) can carry JSON values too
    await conn.set_type_codec("jsonb", encoder=_jsonb_encode, decoder=_jsonb_decode,
                              schema="pg_catalog", format="binary")


async def _as_it_is(_conn: asyncpg.Connection) -> None:
    """A connection goes back to the pool without asyncpg's reset query (``RESET ALL;
    UNLISTEN *; ...``): that was a round trip to the database on every request, as long as
    a small query. asyncpg still rolls back a transaction left open and drops the listener
    callbacks first. Nothing here leaves session state on a pooled connection (no ``SET``;
    advisory locks are the transaction's or unlocked in a ``finally``; ``listen`` unlistens
    or closes its connection): code that changes a session undoes it before releasing."""


async def create_pool(url: str, min_size: int = 2, max_size: int = 10, *,
                      generic: bool = False) -> asyncpg.Pool:
    """A pool whose connections plan each statement with its actual values; with
    ``generic``, once per connection (for statements whose plan cannot depend on their
    values, such as look-ups whose requests arrive as arrays: planning them again on every
    call cost three times their execution)."""
    pool = await asyncpg.create_pool(
        url, min_size=min_size, max_size=max_size, init=_init_connection, reset=_as_it_is,
        # asyncpg prepares every statement; a generic plan ignores which chip or filter is
        # asked for and picks poor joins, so always plan with the actual values (unless
        # the caller says the plan is the same whatever the values)
        server_settings={"plan_cache_mode": "force_generic_plan" if generic
                         else "force_custom_plan"})
    assert pool is not None
    return pool


async def ping(pool: asyncpg.Pool, seconds: float = 2.0) -> str:
    """'ok', or why the database does not answer (a readiness check). Bounded by
    ``seconds``, within the kit's bound on all checks, so a database that hangs is reported
    as this check's failure rather than as the checks' timeout."""
    try:
        async with asyncio.timeout(seconds), pool.acquire() as conn:
            await conn.fetchval("SELECT 1")
    except TimeoutError:
        return f"database: no answer within {seconds:g} s"
    except Exception as exc:  # a readiness check reports any failure, never raises
        return f"database: {exc!r}"
    return "ok"


async def apply_migrations(conn: asyncpg.Connection, package: str, lock: int) -> list[str]:
    """Apply the package's pending migrations; returns the versions applied now."""
    files = sorted(
        (f for f in resources.files(package).joinpath("migrations").iterdir()
         if f.name.endswith(".sql")),
        key=lambda f: f.name,
    )
    applied: list[str] = []
    await conn.execute("SELECT pg_advisory_lock($1)", lock)
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
            log.info("migration applied", package=package, version=version)
    finally:
        await conn.execute("SELECT pg_advisory_unlock($1)", lock)
    return applied


async def listen(pool: asyncpg.Pool, channel: str, what: str, stop: asyncio.Event,
                 heard: Callable[[object, int, str, str], None],
                 listening: Callable[[], Awaitable[None]],
                 deaf: Callable[[], None] = lambda: None) -> None:
    """Listen on a PostgreSQL channel (for ``what``, as logs name it) until ``stop``,
    again after a lost connection (with the kit's backoff). Once each connection listens,
    ``listening`` runs (read what was announced while nobody listened); ``deaf`` runs the
    moment a connection is lost or given up, so nothing is trusted that only a listener
    could keep fresh."""
    async def session(progress: Callable[[], None]) -> None:
        conn = await pool.acquire()
        lost = asyncio.Event()

        def terminated(_conn: object) -> None:
            deaf()
            lost.set()

        conn.add_termination_listener(terminated)
        try:
            await conn.add_listener(channel, heard)
            await listening()
            progress()
            waits = [asyncio.create_task(stop.wait()), asyncio.create_task(lost.wait())]
            try:
                await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
            finally:
                for w in waits:
                    w.cancel()
            if lost.is_set() and not stop.is_set():
                raise ConnectionError(f"the connection listening on {channel} was lost")
        finally:
            deaf()
            if not conn.is_closed():
                try:
                    await conn.remove_listener(channel, heard)
                except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError):
                    conn.terminate()  # it may still listen: never back to the pool so
            await pool.release(conn)

    await keep_running(stop, what, session,
                       (OSError, ConnectionError, asyncpg.PostgresError, asyncpg.InterfaceError))
