from __future__ import annotations

from typing import Literal

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import PlainTextResponse

from awecore.jobs import JobOut, JobPage, JobsIn, PlanIn, Submitted, TargetIn
from awecore.server import READS, Identity, get_factory, get_identity

from ..factory import Factory

router = APIRouter()
# Jobs belong to who submitted them (and to who a later submission of the same product was
# handed them): every read below passes the caller, and a job the caller may not see is
# "not found" (awecore.visibility.may_see_job); cancel and retry are the submitter's.


def get_token(request: Request) -> str:
    """The caller's own token: planning reads the catalog as the caller (get_identity has
    checked it)."""
    return request.headers["authorization"].split(" ", 1)[1]


@router.post("/jobs", response_model=Submitted, status_code=201, tags=["jobs"],
             summary="Plan a target and queue the jobs that make what it lacks")
async def submit(body: TargetIn, caller: Identity = Depends(get_identity),
                 token: str = Depends(get_token),
                 factory: Factory = Depends(get_factory)) -> Submitted:
    jobs = factory.jobs()
    submitted = await jobs.submit(body, caller, token)
    await jobs.share(submitted, caller)
    return submitted


@router.post("/jobs/plan", response_model=Submitted, status_code=201, tags=["jobs"],
             summary="Plan many targets as one DAG and queue what they lack, once")
async def submit_plan(body: PlanIn, caller: Identity = Depends(get_identity),
                      token: str = Depends(get_token),
                      factory: Factory = Depends(get_factory)) -> Submitted:
    jobs = factory.jobs()
    submitted = await jobs.submit_plan(body, caller, token)
    await jobs.share(submitted, caller)
    return submitted


@router.post("/jobs/lookup", response_model=list[JobOut], tags=["jobs"], openapi_extra=READS,
             summary="Many jobs by id, in the order asked")
async def lookup(body: JobsIn, caller: Identity = Depends(get_identity),
                 factory: Factory = Depends(get_factory)) -> list[JobOut]:
    return await factory.jobs().lookup(body.ids, caller)


@router.get("/jobs", response_model=JobPage, tags=["jobs"], summary="Jobs, newest first")
async def page(status: Literal["waiting", "ready", "running", "done", "failed",
                               "cancelled"] | None = None,
               offset: int = Query(default=0, ge=0), limit: int = Query(default=100, ge=1,
                                                                       le=1000),
               caller: Identity = Depends(get_identity),
               factory: Factory = Depends(get_factory)) -> JobPage:
    return await factory.jobs().page(status, offset, limit, caller)


@router.get("/jobs/{job_id}", response_model=JobOut, tags=["jobs"],
            summary="One job (its id, or a unique start of it)")
async def get(job_id: str, caller: Identity = Depends(get_identity),
              factory: Factory = Depends(get_factory)) -> JobOut:
    return (await factory.jobs().get(job_id, caller))[0]


@router.get("/jobs/{job_id}/log", response_class=PlainTextResponse, tags=["jobs"],
            summary="What the workers wrote, tracebacks included")
async def job_log(job_id: str, caller: Identity = Depends(get_identity),
                  factory: Factory = Depends(get_factory)) -> str:
    return (await factory.jobs().get(job_id, caller))[1]


@router.post("/jobs/{job_id}/cancel", response_model=JobOut, tags=["jobs"],
             summary="Cancel a job that has not finished, and the jobs waiting for it")
async def cancel(job_id: str, caller: Identity = Depends(get_identity),
                 factory: Factory = Depends(get_factory)) -> JobOut:
    """A running job is marked cancelled at once and its worker's result refused; only who
    submitted it or an admin may (409 if it has finished)."""
    return await factory.jobs().cancel(job_id, caller)


@router.post("/jobs/{job_id}/retry", response_model=JobOut, tags=["jobs"],
             summary="Requeue a failed or cancelled job, and the jobs that failed with it")
async def retry(job_id: str, caller: Identity = Depends(get_identity),
                token: str = Depends(get_token),
                factory: Factory = Depends(get_factory)) -> JobOut:
    """The job waits for its inputs again: 'waiting' until each is done, 'ready' if all
    are. If an input failed or was cancelled, 409 names it: retry it first (that requeues
    this job too, when it failed or was cancelled because of that input)."""
    return await factory.jobs().retry(job_id, caller, token)
