from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import PlainTextResponse

from awecore.jobs import JobOut, JobPage, JobsIn, PlanIn, Submitted, TargetIn
from awecore.web import Identity, get_identity

from ..factory import Factory

router = APIRouter()


def get_factory(request: Request) -> Factory:
    return Factory(request.app.state.context)


def get_token(request: Request) -> str:
    """The caller's own token: planning reads the catalog as the caller (get_identity has
    checked it)."""
    return request.headers["authorization"].split(" ", 1)[1]


@router.get("/health", tags=["operations"], summary="Liveness")
async def health(factory: Factory = Depends(get_factory)) -> dict[str, Any]:
    async with factory.context.pool.acquire() as conn:
        counts = dict(await conn.fetch("SELECT status, count(*) FROM jobs GROUP BY status"))
    return {"status": "ok", "site": factory.context.settings.site, "jobs": counts}


@router.post("/jobs", response_model=Submitted, status_code=201, tags=["jobs"],
             summary="Plan a target and queue the jobs that make what it lacks")
async def submit(body: TargetIn, caller: Identity = Depends(get_identity),
                 token: str = Depends(get_token),
                 factory: Factory = Depends(get_factory)) -> Submitted:
    return await factory.jobs().submit(body, caller, token)


@router.post("/jobs/plan", response_model=Submitted, status_code=201, tags=["jobs"],
             summary="Plan many targets as one DAG and queue what they lack, once")
async def submit_plan(body: PlanIn, caller: Identity = Depends(get_identity),
                      token: str = Depends(get_token),
                      factory: Factory = Depends(get_factory)) -> Submitted:
    return await factory.jobs().submit_plan(body, caller, token)


@router.post("/jobs/lookup", response_model=list[JobOut], tags=["jobs"],
             summary="Many jobs by id, in the order asked")
async def lookup(body: JobsIn, caller: Identity = Depends(get_identity),
                 factory: Factory = Depends(get_factory)) -> list[JobOut]:
    return await factory.jobs().lookup(body.ids)


@router.get("/jobs", response_model=JobPage, tags=["jobs"], summary="Jobs, newest first")
async def page(status: Literal["waiting", "ready", "running", "done", "failed",
                               "cancelled"] | None = None,
               offset: int = Query(default=0, ge=0), limit: int = Query(default=100, ge=1,
                                                                       le=1000),
               caller: Identity = Depends(get_identity),
               factory: Factory = Depends(get_factory)) -> JobPage:
    return await factory.jobs().page(status, offset, limit)


@router.get("/jobs/{job_id}", response_model=JobOut, tags=["jobs"], summary="One job")
async def get(job_id: str, caller: Identity = Depends(get_identity),
              factory: Factory = Depends(get_factory)) -> JobOut:
    return (await factory.jobs().get(job_id))[0]


@router.get("/jobs/{job_id}/log", response_class=PlainTextResponse, tags=["jobs"],
            summary="What the workers wrote, tracebacks included")
async def job_log(job_id: str, caller: Identity = Depends(get_identity),
                  factory: Factory = Depends(get_factory)) -> str:
    return (await factory.jobs().get(job_id))[1]


@router.post("/jobs/{job_id}/cancel", response_model=JobOut, tags=["jobs"])
async def cancel(job_id: str, caller: Identity = Depends(get_identity),
                 factory: Factory = Depends(get_factory)) -> JobOut:
    return await factory.jobs().cancel(job_id)


@router.post("/jobs/{job_id}/retry", response_model=JobOut, tags=["jobs"])
async def retry(job_id: str, caller: Identity = Depends(get_identity),
                factory: Factory = Depends(get_factory)) -> JobOut:
    return await factory.jobs().retry(job_id)
