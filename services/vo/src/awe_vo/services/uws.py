"""Async TAP jobs (UWS 1.1), kept in the memory of the process.

A job is what a caller asked (its parameters), its phase, and once done its result (the
VOTable bytes) or its error (a DALI error document). Jobs live in memory: they are cheap to
run again, a restart loses only results not yet fetched, and the VO service then owns no
data at all. The list is bounded (``max_jobs``, oldest finished jobs go first) and finished
jobs are dropped after ``keep_seconds``.

A job is its creator's: a signed-in user's jobs are seen only with their token; an
anonymous caller's job only by its id (random, 128 bits), like a result URL.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import secrets
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

__all__ = ["PHASES", "Job", "JobList", "Outcome", "Runner"]

PHASES = ("PENDING", "QUEUED", "EXECUTING", "COMPLETED", "ERROR", "ABORTED", "UNKNOWN",
          "HELD", "SUSPENDED", "ARCHIVED")
_FINAL = frozenset({"COMPLETED", "ERROR", "ABORTED"})


@dataclass
class Outcome:
    """What running a job gave: the result document, or an error document and status."""

    body: bytes
    error: str | None = None
    overflow: bool = False
    rows: int = 0


Runner = Callable[["Job"], Awaitable[Outcome]]


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


@dataclass
class Job:
    id: str
    owner: str | None
    parameters: dict[str, str]
    created: dt.datetime = field(default_factory=_now)
    phase: str = "PENDING"
    started: dt.datetime | None = None
    ended: dt.datetime | None = None
    outcome: Outcome | None = None
    execution_duration: int = 0
    destruction: dt.datetime | None = None
    task: asyncio.Task[None] | None = None

    @property
    def finished(self) -> bool:
        return self.phase in _FINAL


class JobList:
    def __init__(self, max_jobs: int, keep_seconds: float) -> None:
        self.max_jobs = max_jobs
        self.keep = dt.timedelta(seconds=keep_seconds)
        self._jobs: OrderedDict[str, Job] = OrderedDict()

    def __len__(self) -> int:
        return len(self._jobs)

    def create(self, owner: str | None, parameters: dict[str, str]) -> Job:
        self._expire()
        job = Job(secrets.token_hex(16), owner, parameters)
        job.destruction = job.created + self.keep
        self._jobs[job.id] = job
        return job

    def get(self, job_id: str, owner: str | None) -> Job | None:
        """The job if it is the caller's (a signed-in owner's jobs are theirs alone)."""
        self._expire()
        job = self._jobs.get(job_id)
        if job is None or (job.owner is not None and job.owner != owner):
            return None
        return job

    def of(self, owner: str | None) -> list[Job]:
        """The jobs a job list shows the caller: their own (anonymous callers: none, as
        their jobs are found only by id)."""
        self._expire()
        if owner is None:
            return []
        return [j for j in self._jobs.values() if j.owner == owner]

    def run(self, job: Job, runner: Runner) -> None:
        """PHASE=RUN: queue the job and run it in the background."""
        if job.phase != "PENDING":
            return
        job.phase = "QUEUED"

        async def go() -> None:
            job.phase, job.started = "EXECUTING", _now()
            try:
                outcome = await runner(job)
            except asyncio.CancelledError:
                job.phase, job.ended = "ABORTED", _now()
                raise
            job.outcome, job.ended = outcome, _now()
            if job.phase == "EXECUTING":
                job.phase = "ERROR" if outcome.error is not None else "COMPLETED"

        job.task = asyncio.create_task(go(), name=f"uws-{job.id}")

    def abort(self, job: Job) -> None:
        if job.finished:
            return
        if job.task is not None:
            job.task.cancel()
        job.phase, job.ended = "ABORTED", _now()

    def delete(self, job: Job) -> None:
        self.abort(job)
        self._jobs.pop(job.id, None)

    def _expire(self) -> None:
        now = _now()
        for job in [j for j in self._jobs.values()
                    if j.destruction is not None and j.destruction < now]:
            self.delete(job)
        while len(self._jobs) > self.max_jobs:
            oldest = next((j for j in self._jobs.values() if j.finished),
                          next(iter(self._jobs.values())))
            self.delete(oldest)

    async def aclose(self) -> None:
        tasks = [j.task for j in self._jobs.values() if j.task is not None and not j.task.done()]
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
