"""TAP 1.1: sync and async (UWS) ADQL queries, and VOSI capabilities, availability, tables.

Every answer is a VOTable or one of TAP's XML documents; every refusal a DALI error
document with a 4xx status. Async jobs belong to their creator (see ``services.uws``)."""

from __future__ import annotations

import asyncio
import contextlib

from fastapi import APIRouter, Depends, Request
from fastapi.responses import RedirectResponse, Response

from ..factory import Factory
from ..services import documents
from ..services.tap import check_query, run_query
from ..services.uws import Job, JobList, Outcome, Runner
from ..storage import read_only
from ..votable import VOTABLE, VOError, VOParams, dali_error
from .deps import Caller, get_caller, get_factory, get_params

__all__ = ["router"]

router = APIRouter(prefix="/tap", tags=["tap"])
_XML = "application/xml"
#: the longest a client may block on a job with WAIT
MAX_WAIT = 30.0


def _xml(text: str) -> Response:
    return Response(text, media_type=_XML)


async def _sync(request: Request, factory: Factory = Depends(get_factory),
                caller: Caller = Depends(get_caller),
                params: VOParams = Depends(get_params)) -> Response:
    s = factory.settings
    query = check_query({k: params.get(k) for k in params.names()}, s.default_maxrec,
                        s.hard_maxrec)
    body, _, _ = await run_query(factory.context.pool, s.statement_timeout_ms, query,
                                 caller.viewer, factory.base_url(request))
    return Response(body, media_type=VOTABLE)


# one route per method: each its own OpenAPI operation (DALI allows both)
for _method in ("GET", "POST"):
    router.add_api_route("/sync", _sync, methods=[_method], response_class=Response,
                         operation_id=f"tap_sync_{_method.lower()}",
                         summary="Run an ADQL query now (LANG=ADQL, QUERY, MAXREC)")


@router.get("/capabilities", summary="VOSI capabilities (TAP, SCS, SIA, DataLink, SODA)")
async def capabilities(request: Request, factory: Factory = Depends(get_factory)) -> Response:
    s = factory.settings
    return _xml(documents.capabilities(factory.base_url(request), s.default_maxrec,
                                       s.hard_maxrec, s.job_seconds))


@router.get("/availability", summary="VOSI availability")
async def availability(factory: Factory = Depends(get_factory)) -> Response:
    try:
        async with asyncio.timeout(5), read_only(factory.context.pool, 5000) as conn:
            await conn.fetchval("SELECT 1")
    except Exception as exc:  # availability reports, never raises
        return _xml(documents.availability(False, f"the catalog database: {exc!r}"))
    return _xml(documents.availability(True, "accepting queries"))


@router.get("/tables", summary="VOSI tables: every table and column")
async def tables() -> Response:
    return _xml(documents.tableset())


# -- async (UWS) ---------------------------------------------------------------------------

def _jobs(factory: Factory) -> JobList:
    return factory.context.jobs


def _job(factory: Factory, caller: Caller, job_id: str) -> Job:
    job = _jobs(factory).get(job_id, caller.name)
    if job is None:
        raise VOError(f"no job {job_id}", status=404)
    return job


def _runner(request: Request, factory: Factory, caller: Caller) -> Runner:
    s = factory.settings
    base = factory.base_url(request)

    async def run(job: Job) -> Outcome:
        try:
            query = check_query({k.upper(): v for k, v in job.parameters.items()},
                                s.default_maxrec, s.hard_maxrec)
            body, n, overflow = await run_query(factory.context.pool,
                                                s.statement_timeout_ms, query, caller.viewer,
                                                base)
        except VOError as exc:
            return Outcome(bytes(dali_error(exc.message, exc.status).body), error=exc.message)
        return Outcome(body, overflow=overflow, rows=n)
    return run


def _job_url(request: Request, factory: Factory, job: Job) -> str:
    return f"{factory.base_url(request)}/tap/async/{job.id}"


def _job_part(request: Request, factory: Factory, job: Job, tag: str,
              namespaces: str = "") -> Response:
    """One element of the job document (``parameters``, ``results``) as a document of its
    own, cut from the whole so the two always agree."""
    doc = documents.job_document(job, _job_url(request, factory, job))
    start, end = doc.index(f"<uws:{tag}>") + len(f"<uws:{tag}>"), doc.index(f"</uws:{tag}>")
    return _xml(f'<?xml version="1.0" encoding="UTF-8"?>\n<uws:{tag} '
                f'xmlns:uws="http://www.ivoa.net/xml/UWS/v1.0"{namespaces}>'
                f"{doc[start:end]}</uws:{tag}>\n")


@router.get("/async", summary="UWS: your async jobs")
async def job_list(request: Request, factory: Factory = Depends(get_factory),
                   caller: Caller = Depends(get_caller)) -> Response:
    return _xml(documents.jobs_document(_jobs(factory).of(caller.name),
                                        f"{factory.base_url(request)}/tap/async"))


@router.post("/async", summary="UWS: create an async job (PHASE=RUN starts it)")
async def create_job(request: Request, factory: Factory = Depends(get_factory),
                     caller: Caller = Depends(get_caller),
                     params: VOParams = Depends(get_params)) -> Response:
    values = {k: v for k in params.names() if k != "PHASE"
              for v in [params.get(k)] if v is not None}
    job = _jobs(factory).create(caller.name, values)
    phase = (params.get("PHASE") or "").upper()
    if phase == "RUN":
        _jobs(factory).run(job, _runner(request, factory, caller))
    elif phase:
        raise VOError(f"PHASE={phase} is not allowed when creating a job; use RUN")
    return RedirectResponse(_job_url(request, factory, job), status_code=303)


@router.get("/async/{job_id}", summary="UWS: a job (WAIT=seconds blocks while it runs)")
async def get_job(job_id: str, request: Request, factory: Factory = Depends(get_factory),
                  caller: Caller = Depends(get_caller),
                  params: VOParams = Depends(get_params)) -> Response:
    job = _job(factory, caller, job_id)
    wait = params.number("WAIT")
    if wait is not None and job.task is not None and not job.finished:
        seconds = MAX_WAIT if wait < 0 else min(wait, MAX_WAIT)
        with contextlib.suppress(TimeoutError, asyncio.CancelledError):
            await asyncio.wait_for(asyncio.shield(job.task), seconds)
    return _xml(documents.job_document(job, _job_url(request, factory, job)))


@router.post("/async/{job_id}", summary="UWS: ACTION=DELETE deletes the job")
async def post_job(job_id: str, request: Request, factory: Factory = Depends(get_factory),
                   caller: Caller = Depends(get_caller),
                   params: VOParams = Depends(get_params)) -> Response:
    job = _job(factory, caller, job_id)
    action = (params.get("ACTION") or "").upper()
    if action != "DELETE":
        raise VOError("POST to a job takes ACTION=DELETE")
    _jobs(factory).delete(job)
    return RedirectResponse(f"{factory.base_url(request)}/tap/async", status_code=303)


@router.delete("/async/{job_id}", summary="UWS: delete a job")
async def delete_job(job_id: str, request: Request, factory: Factory = Depends(get_factory),
                     caller: Caller = Depends(get_caller)) -> Response:
    _jobs(factory).delete(_job(factory, caller, job_id))
    return RedirectResponse(f"{factory.base_url(request)}/tap/async", status_code=303)


@router.get("/async/{job_id}/phase", summary="UWS: a job's phase")
async def get_phase(job_id: str, factory: Factory = Depends(get_factory),
                    caller: Caller = Depends(get_caller)) -> Response:
    return Response(_job(factory, caller, job_id).phase, media_type="text/plain")


@router.post("/async/{job_id}/phase", summary="UWS: PHASE=RUN or PHASE=ABORT")
async def post_phase(job_id: str, request: Request, factory: Factory = Depends(get_factory),
                     caller: Caller = Depends(get_caller),
                     params: VOParams = Depends(get_params)) -> Response:
    job = _job(factory, caller, job_id)
    phase = (params.get("PHASE") or "").upper()
    if phase == "RUN":
        if job.phase != "PENDING":
            raise VOError(f"the job is {job.phase}: only a PENDING job can be run")
        _jobs(factory).run(job, _runner(request, factory, caller))
    elif phase == "ABORT":
        _jobs(factory).abort(job)
    else:
        raise VOError("PHASE must be RUN or ABORT")
    return RedirectResponse(_job_url(request, factory, job), status_code=303)


@router.get("/async/{job_id}/parameters", summary="UWS: a job's parameters")
async def get_parameters(job_id: str, request: Request, factory: Factory = Depends(get_factory),
                         caller: Caller = Depends(get_caller)) -> Response:
    return _job_part(request, factory, _job(factory, caller, job_id), "parameters")


@router.post("/async/{job_id}/parameters", summary="UWS: set parameters of a PENDING job")
async def post_parameters(job_id: str, request: Request, factory: Factory = Depends(get_factory),
                          caller: Caller = Depends(get_caller),
                          params: VOParams = Depends(get_params)) -> Response:
    job = _job(factory, caller, job_id)
    if job.phase != "PENDING":
        raise VOError(f"the job is {job.phase}: parameters change only while PENDING")
    for k in params.names():
        value = params.get(k)
        if value is not None:
            job.parameters[k] = value
    return RedirectResponse(_job_url(request, factory, job), status_code=303)


@router.get("/async/{job_id}/results", summary="UWS: a job's results")
async def results(job_id: str, request: Request, factory: Factory = Depends(get_factory),
                  caller: Caller = Depends(get_caller)) -> Response:
    return _job_part(request, factory, _job(factory, caller, job_id), "results",
                     ' xmlns:xlink="http://www.w3.org/1999/xlink"')


@router.get("/async/{job_id}/results/result", summary="UWS: the result VOTable")
async def result(job_id: str, factory: Factory = Depends(get_factory),
                 caller: Caller = Depends(get_caller)) -> Response:
    return _outcome(_job(factory, caller, job_id), "COMPLETED", "result")


@router.get("/async/{job_id}/error", summary="UWS: the error document of a failed job")
async def error(job_id: str, factory: Factory = Depends(get_factory),
                caller: Caller = Depends(get_caller)) -> Response:
    return _outcome(_job(factory, caller, job_id), "ERROR", "error")


def _outcome(job: Job, phase: str, what: str) -> Response:
    """The VOTable a finished job left: its result once COMPLETED, its DALI error document
    once in ERROR; 404 in any other phase."""
    if job.phase != phase or job.outcome is None:
        raise VOError(f"the job is {job.phase}: it has no {what}", status=404)
    return Response(job.outcome.body, media_type=VOTABLE)


def _field_route(name: str) -> None:
    async def read(job_id: str, request: Request, factory: Factory = Depends(get_factory),
                   caller: Caller = Depends(get_caller)) -> Response:
        job = _job(factory, caller, job_id)
        doc = documents.job_document(job, _job_url(request, factory, job))
        tag = {"executionduration": "executionDuration", "destruction": "destruction",
               "quote": "quote", "owner": "ownerId"}[name]
        start = doc.find(f"<uws:{tag}>")
        value = "" if start < 0 else doc[start + len(tag) + 6:doc.index(f"</uws:{tag}>")]
        return Response(value, media_type="text/plain")

    async def write(job_id: str, request: Request, factory: Factory = Depends(get_factory),
                    caller: Caller = Depends(get_caller)) -> Response:
        job = _job(factory, caller, job_id)  # the service keeps its own limits
        return RedirectResponse(_job_url(request, factory, job), status_code=303)

    router.add_api_route(f"/async/{{job_id}}/{name}", read, methods=["GET"],
                         response_class=Response, summary=f"UWS: a job's {name}")
    if name in ("executionduration", "destruction"):
        router.add_api_route(f"/async/{{job_id}}/{name}", write, methods=["POST"],
                             response_class=Response,
                             summary=f"UWS: {name} (kept as the service sets it)")


for _name in ("executionduration", "destruction", "quote", "owner"):
    _field_route(_name)
