"""Submitting targets: plan backwards, then one job per product to make, inputs first."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

import asyncpg

from awecore.client import AsyncCatalogClient
from awecore.dimensions import DataId
from awecore.errors import Conflict, Forbidden, InvalidRequest, NotFound
from awecore.ids import new_oid
from awecore.jobs import JobOut, JobPage, Ownership, PlanIn, Submitted, TargetIn, TargetRef
from awecore.server import Identity
from awecore.targets import AsyncPlanner, CalibrationRules, CatalogPorts, Key, Plan, Target
from awecore.visibility import Viewer, may_manage_job, may_see_job

from ..storage.jobs import JobStore, job_out
from .credentials import Delegation
from .queue import JobQueue

__all__ = ["JobService"]


def _target(t: TargetRef) -> Target:
    """The planner's target of a request (given by fields or data ID: the request's model
    has merged them, and refused one without night or chip unless it is made across
    chips and nights, over a sky tile)."""
    return Target(t.cls, t.chip, t.date, t.filter, t.raw, DataId(t.extra))


class JobService:
    def __init__(self, pool: asyncpg.Pool, queue: JobQueue, catalog_url: str,
                 rules: CalibrationRules | None = None,
                 delegation: Delegation | None = None, site: str | None = None) -> None:
        self.pool = pool
        #: this site: a job's submitter is shown whole, name@site (``JobOut.submitter``)
        self.site = site
        #: seals the credential a submitter delegates to the workers (None: jobs are made
        #: with the workers' own account, as before products belonged to their submitter)
        self.delegation = delegation
        self.queue = queue
        self.catalog_url = catalog_url
        #: the calibration rules (the settings'): from how far a calibration is made
        self.rules = rules if rules is not None else CalibrationRules.from_env()

    async def _plan(self, targets: list[Target], params: dict[str, dict[str, Any]] | None,
                    anew: bool, token: str) -> Plan:
        """Plan with the caller's token (the plan uses what the caller may see), awaiting
        the catalogue on this loop: planning is requests, not arithmetic."""
        catalog = AsyncCatalogClient(self.catalog_url, token)
        try:
            return await AsyncPlanner(CatalogPorts(catalog), params, self.rules).plan_many(
                targets, anew)
        finally:
            await catalog.aclose()

    async def submit(self, target: TargetIn, caller: Identity, token: str) -> Submitted:
        return await self._submit(
            [_target(target)], {target.cls: target.params} if target.params else None,
            target.dry_run, target.anew, caller, token, target)

    async def submit_plan(self, body: PlanIn, caller: Identity, token: str) -> Submitted:
        targets = [_target(t) for t in body.targets]
        return await self._submit(targets, body.params, body.dry_run, False, caller, token,
                                  body)

    async def _submit(self, targets: list[Target], params: dict[str, dict[str, Any]] | None,
                      dry_run: bool, anew: bool, caller: Identity, token: str,
                      owner: Ownership) -> Submitted:
        planned = dt.datetime.now(dt.UTC)
        plan = await self._plan(targets, params, anew, token)
        described = [n.describe() for n in plan.nodes.values()]
        if dry_run or not plan.to_make:
            oids = [plan.nodes[k].oid for k in plan.roots]
            return Submitted(plan=described, target=oids[0], targets=oids, jobs=[])
        if owner.project is not None and not caller.sees_all and \
                owner.project not in caller.projects:
            raise Forbidden(f"you are not a member of project {owner.project!r}")
        credential = None
        if self.delegation is not None:
            credential = await self.delegation.mint(
                token, f"compute: {len(plan.to_make)} jobs for {plan.nodes[plan.root].cls}")
        context = _context(caller.name, owner)
        jobs: list[JobOut] = []
        product: dict[Key, str] = {}
        job_of: dict[Key, str] = {}
        ready: list[str] = []
        async with self.pool.acquire() as conn, conn.transaction():
            store = JobStore(conn)
            for node in plan.to_make:
                key = ("|".join(str(k) for k in node.key)
                       + f"|{sorted(node.params.items())}|{context}")
                existing = await store.active(key)
                if existing is not None:  # the same product is being made already
                    product[node.key] = existing["product"]
                    job_of[node.key] = existing["id"]
                    jobs.append(job_out(existing, self.site))
                    continue
                just_made = await store.done_since(key, planned)
                if just_made is not None:  # made while this plan was being drawn
                    product[node.key] = just_made
                    continue
                deps = sorted({job_of[k] for k in node.input_keys() if k in job_of})
                inputs = plan.input_oids(node, product)
                job_id, oid = str(uuid.uuid4()), new_oid()
                try:
                    async with conn.transaction():  # a savepoint: a racing twin may win
                        row = await store.insert({
                            "id": job_id, "key": key, "cls": node.cls, "chip": node.chip,
                            "filter": node.filter, "night": node.night, "raw": node.raw,
                            "dims": dict(node.extra),
                            "params": node.params, "reasons": node.reasons, "inputs": inputs,
                            "raws": node.raws, "product": oid, "deps": deps,
                            "status": "waiting" if deps else "ready", "submitted_by": caller.name,
                            "project": owner.project, "privileges": owner.privileges,
                            "credential": credential, "moment": node.time})
                except asyncpg.UniqueViolationError:
                    twin = await store.active(key)
                    assert twin is not None
                    product[node.key], job_of[node.key] = twin["product"], twin["id"]
                    jobs.append(job_out(twin, self.site))
                    continue
                product[node.key], job_of[node.key] = oid, job_id
                if not deps:
                    ready.append(job_id)
                jobs.append(job_out(row, self.site))
        await self.queue.announce(ready)
        oids = [product.get(k) or plan.nodes[k].oid for k in plan.roots]
        return Submitted(plan=described, target=oids[0], targets=oids, jobs=jobs)

    async def resolve(self, text: str, caller: Identity | None = None) -> str:
        """The full id of the one job whose id starts with ``text`` (ids are shown in full
        but may be typed short) among those ``caller`` may see (None: all); NotFound if
        none, InvalidRequest if several."""
        async with self.pool.acquire() as conn:
            found = await JobStore(conn).resolve(text, _viewer(caller))
        if not found:
            raise NotFound(f"no job {text}")
        if len(found) > 1:
            raise InvalidRequest(f"{text!r} starts more than one job id ({found[0]}, "
                                 f"{found[1]}, ...): give more of it")
        return found[0]

    async def get(self, job_id: str, caller: Identity | None = None) -> tuple[JobOut, str]:
        """One job (``job_id`` may be a unique prefix) and its log; NotFound unless
        ``caller`` may see it (``awecore.visibility.may_see_job``; None: the service)."""
        job_id = await self.resolve(job_id, caller)
        async with self.pool.acquire() as conn:
            row = await JobStore(conn).get(job_id)
        viewer = _viewer(caller)
        if row is None or (viewer is not None and not may_see_job(
                viewer, row["submitted_by"], row["shared_with"])):
            raise NotFound(f"no job {job_id}")
        return job_out(row, self.site), row["log"]

    async def lookup(self, ids: list[str], caller: Identity | None = None) -> list[JobOut]:
        """Many jobs at once (what a waiting client polls), in the order asked; those
        ``caller`` may not see are missing."""
        try:
            wanted = [uuid.UUID(i) for i in ids]
        except ValueError:
            raise InvalidRequest("job ids are UUIDs") from None
        async with self.pool.acquire() as conn:
            rows = {r["id"]: r for r in await JobStore(conn).get_many(wanted)}
        viewer = _viewer(caller)
        if viewer is not None:
            rows = {k: r for k, r in rows.items()
                    if may_see_job(viewer, r["submitted_by"], r["shared_with"])}
        missing = [i for i, u in zip(ids, wanted, strict=True) if str(u) not in rows]
        if missing:
            raise NotFound(f"no job {missing[0]}" + (f" (and {len(missing) - 1} more)"
                                                    if len(missing) > 1 else ""))
        return [job_out(rows[str(u)], self.site) for u in wanted]

    async def page(self, status: str | None, offset: int, limit: int,
                   caller: Identity | None = None) -> JobPage:
        """Jobs newest first, of those ``caller`` may see (None: all)."""
        async with self.pool.acquire() as conn:
            rows = await JobStore(conn).page(status, offset, limit + 1, _viewer(caller))
        return JobPage(jobs=[job_out(r, self.site) for r in rows[:limit]],
                       next_offset=offset + limit if len(rows) > limit else None)

    async def cancel(self, job_id: str, caller: Identity) -> JobOut:
        """Cancel a job that has not finished, and what waits for it. A running job is
        marked at once; its worker's result is then refused (jobs are shared between
        targets, so only the one who submitted it or an admin may; to anyone who may not
        see it, it does not exist)."""
        job, _ = await self.get(job_id, caller)
        if not may_manage_job(Viewer.of(caller), job.submitted_by):
            raise Forbidden(f"job {job.id} was submitted by {job.submitted_by}: only they "
                            "or an admin may cancel it")
        async with self.pool.acquire() as conn, conn.transaction():
            if not await JobStore(conn).cancel(job.id, f"cancelled by {caller.name}"):
                raise Conflict(f"job {job.id} is {job.status}: only a job that has not "
                               "finished can be cancelled")
        return (await self.get(job.id))[0]

    async def retry(self, job_id: str, caller: Identity | None = None,
                    token: str | None = None) -> JobOut:
        """Requeue a failed or cancelled job, and the jobs that failed with it (its
        submitter or an admin; NotFound for who may not see it). It waits for its inputs
        again (``JobStore.retry``): announced now only if they are all done, else by the
        worker that finishes the last one (or the reaper)."""
        job, _ = await self.get(job_id, caller)
        if caller is not None and not may_manage_job(Viewer.of(caller), job.submitted_by):
            raise Forbidden(f"job {job.id} was submitted by {job.submitted_by}: only they "
                            "or an admin may retry it")
        credential = None
        if self.delegation is not None and token is not None and caller is not None \
                and caller.name == job.submitted_by:  # the first one may have expired
            credential = await self.delegation.mint(token, f"compute: retry of {job.id}")
        try:
            async with self.pool.acquire() as conn, conn.transaction():
                status = await JobStore(conn).retry(job.id)
                if status is not None and credential is not None:
                    await JobStore(conn).delegate(job.submitted_by, credential)
        except asyncpg.UniqueViolationError:
            raise Conflict(f"the product of job {job.id} is being made by another job "
                           "now: nothing to retry") from None
        if status is None:
            raise Conflict(f"job {job.id} is {job.status}: only a failed or cancelled job "
                           "can be retried")
        if status == "ready":
            await self.queue.announce([job.id])
        return (await self.get(job.id))[0]

    async def share(self, submitted: Submitted, caller: Identity) -> None:
        """A submission handed jobs that others submitted (the same product was being made
        already): the caller may follow them too."""
        others = [j.id for j in submitted.jobs if j.submitted_by != caller.name]
        if others:
            async with self.pool.acquire() as conn:
                await JobStore(conn).share(others, caller.name)

    async def reap(self) -> list[str]:
        """Requeue jobs of lost workers and announce every ready job again."""
        async with self.pool.acquire() as conn:
            store = JobStore(conn)
            await store.reap()
            ready = await store.ready()
        if ready:
            await self.queue.announce(ready)
        return ready


def _context(submitter: str, owner: Ownership) -> str:
    """Whose a job's product will be, as far as sharing the job goes: a product only its
    submitter (level 1) or their project (2) may see is made for them alone; from level 3
    on, one job serves every submission of the same product at that level (a later
    submitter who may see it is handed the job, as Astro-WISE reused shared products)."""
    if owner.privileges == 1:
        return f"1:{submitter}:{owner.project or ''}"
    if owner.privileges == 2:
        return f"2:{owner.project or '@' + submitter}"
    return str(owner.privileges)


def _viewer(caller: Identity | None) -> Viewer | None:
    """The viewer whose jobs a request may touch; None: the service itself (all jobs)."""
    return None if caller is None else Viewer.of(caller)
