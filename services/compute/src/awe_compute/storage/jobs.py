"""The jobs table: planned, claimed with a lease, finished, failed, reaped."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

import asyncpg

from awecore.jobs import JobOut

__all__ = ["JobStore", "job_out"]

_COLS = ("id::text AS id, cls, chip, filter, night, raw, params, reasons, product::text AS "
         "product, deps::text[] AS deps, status, worker, attempts, error, submitted_by, "
         "created, started, finished")


def job_out(row: asyncpg.Record) -> JobOut:
    return JobOut.model_validate(dict(row))


class JobStore:
    def __init__(self, conn: asyncpg.Connection) -> None:
        self.conn = conn

    async def active(self, key: str) -> asyncpg.Record | None:
        return await self.conn.fetchrow(
            f"SELECT {_COLS} FROM jobs WHERE key = $1 AND status IN "
            "('waiting', 'ready', 'running')", key)

    async def get_many(self, ids: list[uuid.UUID]) -> list[asyncpg.Record]:
        return list(await self.conn.fetch(f"SELECT {_COLS} FROM jobs WHERE id = ANY($1)", ids))

    async def done_since(self, key: str, since: dt.datetime) -> str | None:
        """The product of a job for ``key`` that finished after ``since`` (a plan made
        before then did not see it)."""
        value = await self.conn.fetchval(
            "SELECT product::text FROM jobs WHERE key = $1 AND status = 'done' "
            "AND finished >= $2 ORDER BY finished DESC LIMIT 1", key, since)
        return None if value is None else str(value)

    async def insert(self, job: dict[str, Any]) -> asyncpg.Record:
        row = await self.conn.fetchrow(
            f"INSERT INTO jobs (id, key, cls, chip, filter, night, raw, params, reasons, "
            f" inputs, raws, product, deps, status, submitted_by) VALUES ($1, $2, $3, $4, $5, "
            f" $6, $7, $8, $9, $10, $11, $12, $13::uuid[], $14, $15) RETURNING {_COLS}",
            uuid.UUID(job["id"]), job["key"], job["cls"], job["chip"], job["filter"],
            job["night"], job["raw"], job["params"], job["reasons"], job["inputs"],
            job["raws"], uuid.UUID(job["product"]), [uuid.UUID(d) for d in job["deps"]],
            job["status"], job["submitted_by"])
        assert row is not None
        return row

    async def get(self, job_id: str) -> asyncpg.Record | None:
        return await self.conn.fetchrow(f"SELECT {_COLS}, inputs, raws, log FROM jobs "
                                        "WHERE id = $1", uuid.UUID(job_id))

    async def page(self, status: str | None, offset: int, limit: int) -> list[asyncpg.Record]:
        return list(await self.conn.fetch(
            f"SELECT {_COLS} FROM jobs WHERE ($1::text IS NULL OR status = $1) "
            "ORDER BY created DESC, id LIMIT $2 OFFSET $3", status, limit, offset))

    async def claim(self, job_id: str, worker: str, lease: float) -> asyncpg.Record | None:
        """Take a ready job for this worker, for ``lease`` seconds; None if not claimable."""
        return await self.conn.fetchrow(
            f"UPDATE jobs SET status = 'running', worker = $2, attempts = attempts + 1, "
            f"lease_until = now() + make_interval(secs => $3), started = now() "
            f"WHERE id = $1 AND status = 'ready' RETURNING {_COLS}, inputs, raws",
            uuid.UUID(job_id), worker, lease)

    async def done(self, job_id: str, worker: str, log: str) -> list[str]:
        """Mark done; returns the dependants that became ready."""
        await self.conn.execute(
            "UPDATE jobs SET status = 'done', finished = now(), lease_until = NULL, "
            "log = log || $3 WHERE id = $1 AND worker = $2", uuid.UUID(job_id), worker, log)
        rows = await self.conn.fetch(
            "UPDATE jobs j SET status = 'ready' WHERE j.status = 'waiting' "
            "AND $1::uuid = ANY(j.deps) AND NOT EXISTS (SELECT 1 FROM jobs d "
            "  WHERE d.id = ANY(j.deps) AND d.status <> 'done') RETURNING j.id::text",
            uuid.UUID(job_id))
        return [r[0] for r in rows]

    async def fail(self, job_id: str, error: str, log: str) -> None:
        """Mark failed, with every job that depends on it, directly or not."""
        await self.conn.execute(
            "UPDATE jobs SET status = 'failed', finished = now(), lease_until = NULL, "
            "error = $2, log = log || $3 WHERE id = $1", uuid.UUID(job_id), error, log)
        await self.conn.execute(
            "WITH RECURSIVE down(id) AS (SELECT $1::uuid UNION "
            "  SELECT j.id FROM jobs j JOIN down ON down.id = ANY(j.deps)) "
            "UPDATE jobs SET status = 'failed', finished = now(), "
            "  error = 'an input failed: job ' || $1::text "
            "WHERE id IN (SELECT id FROM down) AND id <> $1 "
            "  AND status IN ('waiting', 'ready')", uuid.UUID(job_id))

    async def reap(self) -> list[str]:
        """Running jobs whose worker's lease ran out (killed, say) become ready again."""
        rows = await self.conn.fetch(
            "UPDATE jobs SET status = 'ready', worker = NULL, lease_until = NULL, "
            "log = log || 'lease expired: requeued' || E'\\n' "
            "WHERE status = 'running' AND lease_until < now() RETURNING id::text")
        return [r[0] for r in rows]

    async def ready(self) -> list[str]:
        rows = await self.conn.fetch("SELECT id::text FROM jobs WHERE status = 'ready'")
        return [r[0] for r in rows]

    async def set_status(self, job_id: str, status: str, allowed: tuple[str, ...]) -> bool:
        got = await self.conn.execute(
            "UPDATE jobs SET status = $2, error = NULL WHERE id = $1 AND status = ANY($3)",
            uuid.UUID(job_id), status, list(allowed))
        return bool(got.endswith(" 1"))
