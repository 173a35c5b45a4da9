"""The jobs table: planned, claimed with a lease, finished, failed, reaped."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

import asyncpg

from awecore.client import current_request_id
from awecore.errors import Conflict
from awecore.ids import prefix_range
from awecore.jobs import JobOut
from awecore.visibility import Viewer, binder, jobs_sql

__all__ = ["JobStore", "job_out"]

_COLS = ("id::text AS id, cls, chip, filter, night, raw, dims, params, reasons, "
         "product::text AS "
         "product, deps::text[] AS deps, status, worker, attempts, error, submitted_by, "
         "project, privileges, created, started, finished")


def _whose(viewer: Viewer | None, first: int) -> tuple[str, list[Any]]:
    """The jobs ``viewer`` may see (``awecore.visibility.jobs_sql``) as a condition whose
    parameters start at ``$first``; None: every job (the service's own use)."""
    if viewer is None:
        return "TRUE", []
    params: list[Any] = []

    def param(value: Any) -> str:
        params.append(value)
        return f"${first + len(params) - 1}"
    return jobs_sql(viewer, binder(param)), params


def job_out(row: asyncpg.Record, site: str | None = None) -> JobOut:
    """A job as the API shows it; ``site``: the site that runs it (its submitter is then
    shown whole, ``name@site``)."""
    return JobOut.model_validate({**dict(row), "site": site})


class JobStore:
    def __init__(self, conn: asyncpg.Connection) -> None:
        self.conn = conn

    async def active(self, key: str) -> asyncpg.Record | None:
        return await self.conn.fetchrow(
            f"SELECT {_COLS} FROM jobs WHERE key = $1 AND status IN "
            "('waiting', 'ready', 'running')", key)

    async def get_many(self, ids: list[uuid.UUID]) -> list[asyncpg.Record]:
        return list(await self.conn.fetch(f"SELECT {_COLS}, shared_with FROM jobs "
                                          "WHERE id = ANY($1)", ids))

    async def done_since(self, key: str, since: dt.datetime) -> str | None:
        """The product of a job for ``key`` that finished after ``since`` (a plan made
        before then did not see it)."""
        value = await self.conn.fetchval(
            "SELECT product::text FROM jobs WHERE key = $1 AND status = 'done' "
            "AND finished >= $2 ORDER BY finished DESC LIMIT 1", key, since)
        return None if value is None else str(value)

    async def insert(self, job: dict[str, Any]) -> asyncpg.Record:
        """A new job; it keeps the request id of its submission (``job["request_id"]``, else
        the one bound for the request being served) and its log starts with it."""
        request_id = job.get("request_id") or current_request_id()
        first = (f"{dt.datetime.now(dt.UTC).isoformat()} submitted by {job['submitted_by']}"
                 f" (request {request_id or '-'})\n")
        row = await self.conn.fetchrow(
            f"INSERT INTO jobs (id, key, cls, chip, filter, night, raw, params, reasons, "
            f" inputs, raws, product, deps, status, submitted_by, request_id, log, dims, "
            f" project, privileges, credential, moment) "
            f" VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13::uuid[], $14, "
            f" $15, $16, $17, $18, $19, $20, $21, $22) RETURNING {_COLS}",
            uuid.UUID(job["id"]), job["key"], job["cls"], job["chip"], job["filter"],
            job["night"], job["raw"], job["params"], job["reasons"], job["inputs"],
            job["raws"], uuid.UUID(job["product"]), [uuid.UUID(d) for d in job["deps"]],
            job["status"], job["submitted_by"], request_id, first, job.get("dims") or {},
            job.get("project"), job.get("privileges", 1), job.get("credential"),
            job.get("moment"))
        assert row is not None
        return row

    async def delegate(self, submitter: str, credential: str) -> None:
        """Give the queued jobs of ``submitter`` a new delegated credential (they retried
        one: the credential of the first submission may have expired)."""
        await self.conn.execute(
            "UPDATE jobs SET credential = $2 WHERE submitted_by = $1 AND credential IS NOT "
            "NULL AND status IN ('waiting', 'ready')", submitter, credential)

    async def get(self, job_id: str) -> asyncpg.Record | None:
        return await self.conn.fetchrow(f"SELECT {_COLS}, inputs, raws, log, shared_with "
                                        "FROM jobs WHERE id = $1", uuid.UUID(job_id))

    async def page(self, status: str | None, offset: int, limit: int,
                   viewer: Viewer | None = None) -> list[asyncpg.Record]:
        """Jobs, newest first: those ``viewer`` may see (None: all)."""
        whose, params = _whose(viewer, 4)
        return list(await self.conn.fetch(
            f"SELECT {_COLS} FROM jobs WHERE ($1::text IS NULL OR status = $1) AND {whose} "
            "ORDER BY created DESC, id LIMIT $2 OFFSET $3", status, limit, offset, *params))

    async def resolve(self, text: str, viewer: Viewer | None = None) -> list[str]:
        """At most two ids of jobs whose id starts with ``text`` (ids are typed short), of
        the jobs ``viewer`` may see (others neither match nor make a prefix ambiguous)."""
        span = prefix_range(text)
        if span is None:
            return []
        whose, params = _whose(viewer, 3)
        rows = await self.conn.fetch(f"SELECT id::text FROM jobs WHERE id BETWEEN $1 AND $2 "
                                     f"AND {whose} ORDER BY id LIMIT 2", *span, *params)
        return [r[0] for r in rows]

    async def share(self, job_ids: list[str], name: str) -> None:
        """Hand these jobs to ``name`` too (a submission of theirs was given them)."""
        await self.conn.execute(
            "UPDATE jobs SET shared_with = shared_with || $2::text WHERE id = ANY($1::uuid[]) "
            "AND submitted_by <> $2 AND NOT $2 = ANY(shared_with)",
            [uuid.UUID(i) for i in job_ids], name)

    async def claim(self, job_id: str, worker: str, lease: float) -> asyncpg.Record | None:
        """Take a ready job for this worker, for ``lease`` seconds; None if not claimable.

        Only a job whose inputs are all done is taken: one announced while an input was
        not (a retry, a message from before an input was requeued) goes back to waiting,
        and is announced again when its last input is done."""
        row = await self.conn.fetchrow(
            f"UPDATE jobs SET status = 'running', worker = $2, attempts = attempts + 1, "
            f"lease_until = now() + make_interval(secs => $3), started = now() "
            f"WHERE id = $1 AND status = 'ready' AND NOT EXISTS (SELECT 1 FROM jobs d "
            f"  WHERE d.id = ANY(jobs.deps) AND d.status <> 'done') "
            f"RETURNING {_COLS}, inputs, raws, request_id, credential, moment",
            uuid.UUID(job_id), worker, lease)
        if row is None:
            await self.conn.execute(
                "UPDATE jobs SET status = 'waiting', log = log || 'an input is not done: "
                "waiting for it' || E'\\n' WHERE id = $1 AND status = 'ready' AND EXISTS "
                "(SELECT 1 FROM jobs d WHERE d.id = ANY(jobs.deps) AND d.status <> 'done')",
                uuid.UUID(job_id))
        return row

    async def renew(self, job_id: str, worker: str, lease: float) -> bool:
        """Extend the lease of a job this worker runs; False if it no longer holds it (the
        lease ran out and the job was requeued, or it was cancelled)."""
        took = await self.conn.execute(
            "UPDATE jobs SET lease_until = now() + make_interval(secs => $3) "
            "WHERE id = $1 AND worker = $2 AND status = 'running'",
            uuid.UUID(job_id), worker, lease)
        return bool(took.endswith(" 1"))

    async def counts(self) -> dict[str, int]:
        """Jobs by status (the queue's depth, for readiness details and metrics)."""
        rows = await self.conn.fetch("SELECT status, count(*) FROM jobs GROUP BY status")
        return {r[0]: int(r[1]) for r in rows}

    async def done(self, job_id: str, worker: str, log: str) -> list[str]:
        """Mark done; returns the dependants that became ready."""
        took = await self.conn.execute(
            "UPDATE jobs SET status = 'done', finished = now(), lease_until = NULL, "
            "log = log || $3 WHERE id = $1 AND worker = $2 AND status = 'running'",
            uuid.UUID(job_id), worker, log)
        if not took.endswith(" 1"):  # cancelled while it ran: the result is refused
            await self.conn.execute(
                "UPDATE jobs SET log = log || $2 WHERE id = $1 AND status = 'cancelled'",
                uuid.UUID(job_id), f"{log.rstrip()} (refused: the job was cancelled)\n")
            return []
        rows = await self.conn.fetch(
            "UPDATE jobs j SET status = 'ready' WHERE j.status = 'waiting' "
            "AND $1::uuid = ANY(j.deps) AND NOT EXISTS (SELECT 1 FROM jobs d "
            "  WHERE d.id = ANY(j.deps) AND d.status <> 'done') RETURNING j.id::text",
            uuid.UUID(job_id))
        return [r[0] for r in rows]

    async def fail(self, job_id: str, worker: str, error: str, log: str) -> bool:
        """Mark failed, with every job that depends on it, directly or not; only by the
        worker that holds the job (False otherwise: another worker took it over after the
        lease ran out, or it was cancelled, and its state stays as it is)."""
        took = await self.conn.execute(
            "UPDATE jobs SET status = 'failed', finished = now(), lease_until = NULL, "
            "error = $2, log = log || $3 WHERE id = $1 AND worker = $4 AND status = 'running'",
            uuid.UUID(job_id), error, log, worker)  # a cancelled job stays cancelled
        if not took.endswith(" 1"):
            return False
        await self.conn.execute(
            "WITH RECURSIVE down(id) AS (SELECT $1::uuid UNION "
            "  SELECT j.id FROM jobs j JOIN down ON down.id = ANY(j.deps)) "
            "UPDATE jobs SET status = 'failed', finished = now(), "
            "  error = 'an input failed: job ' || $1::text "
            "WHERE id IN (SELECT id FROM down) AND id <> $1 "
            "  AND status IN ('waiting', 'ready')", uuid.UUID(job_id))
        return True

    async def reap(self) -> list[str]:
        """Running jobs whose worker's lease ran out (killed, say) become ready again, and
        so do waiting jobs whose inputs are all done (two inputs finishing at once each
        see the other still running, and neither promotes their dependant)."""
        rows = await self.conn.fetch(
            "UPDATE jobs SET status = 'ready', worker = NULL, lease_until = NULL, "
            "log = log || 'lease expired: requeued' || E'\\n' "
            "WHERE status = 'running' AND lease_until < now() RETURNING id::text")
        promoted = await self.conn.fetch(
            "UPDATE jobs j SET status = 'ready' WHERE j.status = 'waiting' AND NOT EXISTS "
            "(SELECT 1 FROM jobs d WHERE d.id = ANY(j.deps) AND d.status <> 'done') "
            "RETURNING j.id::text")
        return [r[0] for r in rows] + [r[0] for r in promoted]

    async def ready(self) -> list[str]:
        rows = await self.conn.fetch("SELECT id::text FROM jobs WHERE status = 'ready'")
        return [r[0] for r in rows]

    async def cancel(self, job_id: str, why: str) -> bool:
        """Cancel a job that has not finished (a running one too: its worker's result is
        then refused), with every job that waits for it; False if it had finished."""
        took = await self.conn.execute(
            "UPDATE jobs SET status = 'cancelled', finished = now(), lease_until = NULL, "
            "error = $2, log = log || $2 || E'\\n' WHERE id = $1 "
            "AND status IN ('waiting', 'ready', 'running')", uuid.UUID(job_id), why)
        if not took.endswith(" 1"):
            return False
        await self.conn.execute(
            "WITH RECURSIVE down(id) AS (SELECT $1::uuid UNION "
            "  SELECT j.id FROM jobs j JOIN down ON down.id = ANY(j.deps)) "
            "UPDATE jobs SET status = 'cancelled', finished = now(), "
            "  error = 'an input was cancelled: job ' || $1::text "
            "WHERE id IN (SELECT id FROM down) AND id <> $1 "
            "  AND status IN ('waiting', 'ready')", uuid.UUID(job_id))
        return True

    async def retry(self, job_id: str) -> str | None:
        """Requeue a failed or cancelled job, and the jobs that failed or were cancelled
        because of it; returns its new status, None if it had not failed nor been
        cancelled.

        A retried job waits for its inputs again: it is 'waiting' while any is not done
        (and announced when the last one is), 'ready' only if all are. An input that failed
        or was cancelled itself is not retried with it: the retry is refused (Conflict,
        naming each such input), since that input may be someone else's job and retrying
        it is its submitter's call; retrying that input first requeues this job too when it
        failed or was cancelled because of it. The inputs' rows are locked (FOR SHARE) so
        that one finishing meanwhile cannot miss this job's new state."""
        row = await self.conn.fetchrow(
            "SELECT status, deps::text[] AS deps FROM jobs WHERE id = $1 FOR UPDATE",
            uuid.UUID(job_id))
        if row is None or row["status"] not in ("failed", "cancelled"):
            return None
        deps = await self.conn.fetch(
            "SELECT id::text AS id, status, cls FROM jobs WHERE id = ANY($1::uuid[]) "
            "ORDER BY id FOR SHARE", row["deps"])
        blocked = [d for d in deps if d["status"] in ("failed", "cancelled")]
        if blocked:
            raise Conflict(
                f"job {job_id} needs " + ", ".join(
                    f"job {d['id']} ({d['cls']}, {d['status']})" for d in blocked)
                + ", which did not finish: retry " + ("that one" if len(blocked) == 1
                                                      else "those") + " first")
        status = "waiting" if any(d["status"] != "done" for d in deps) else "ready"
        await self.conn.execute(
            "UPDATE jobs SET status = $2, error = NULL, finished = NULL, worker = NULL, "
            "lease_until = NULL, log = log || 'retried' || "
            "CASE WHEN $2 = 'waiting' THEN ': waiting for its inputs' ELSE '' END || E'\\n' "
            "WHERE id = $1", uuid.UUID(job_id), status)
        await self.conn.execute(
            "UPDATE jobs SET status = 'waiting', error = NULL, finished = NULL, worker = NULL, "
            "lease_until = NULL WHERE status IN ('failed', 'cancelled') AND error IN "
            "  ('an input failed: job ' || $1::text, 'an input was cancelled: job ' || $1::text)",
            str(uuid.UUID(job_id)))
        return status
