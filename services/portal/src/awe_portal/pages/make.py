"""The target maker: choose a class and data ID, read the dry-run plan, make it, watch it.

Every step is one call to a service as the signed-in user: the classes that can be made come
from the catalog's ``GET /classes`` (those a pipeline makes: ``ProcessTarget``), their
dimensions from the model, the plan from the compute service's ``POST /jobs`` with
``dry_run`` (the very plan ``awe get --dry-run`` prints), the run from the same call without
it, progress from ``POST /jobs/lookup`` (an htmx fragment polled until the run has ended),
logs from ``GET /jobs/{id}/log`` and retries from ``POST /jobs/{id}/retry``. The portal adds
no rule of its own: what the user may plan, see or retry is what compute says.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import re
from typing import Any, TypeVar
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Request
from fastapi.responses import RedirectResponse, Response

from awecore.dimensions import DIMENSIONS
from awecore.errors import AweError, InvalidRequest
from awecore.model import registry

from .. import openapi as api
from ..deps import Portal, portal
from ..session import form_data, require_csrf, safe_next
from ..templating import render, render_fragment
from ._makeplan import parse_plan, plan_summary, run_state

router = APIRouter()
T = TypeVar("T")

#: the dimensions a person types (the instrument is named by the chip)
_ASKED = tuple(d for d in DIMENSIONS if d != "instrument")
_JOB_ID = re.compile(r"^[0-9a-fA-F-]{4,36}$")
#: jobs one run page follows (of a larger plan, the first: inputs come first)
MAX_RUN = 500
#: seconds between two looks at a running run's jobs
POLL = 1
#: the fields of a target: its class and data ID
_DATA_ID = {"cls": "the class to make", "chip": "chip name", "filter": "filter name",
            "night": "YYYY-MM-DD", "raw": "a raw frame's oid (picked)",
            "raw_oid": "a raw frame's oid (typed)", "tile": "a sky tile"}


async def makeable(p: Portal) -> list[str]:
    """Classes a pipeline makes, as the catalog knows them (a user's own classes too)."""
    classes: dict[str, Any] = await p.catalog_api.get("/classes")
    return sorted(name for name, info in classes.items()
                  if not info.get("abstract") and "ProcessTarget" in info.get("bases", ()))


async def dimensions_of(p: Portal, cls: str) -> tuple[str, ...]:
    """The class's dimensions a person gives: the model's, or a registered class's."""
    if cls in registry:
        dims = registry.get(cls).dimensions
    else:
        info = await p.catalog_api.get(f"/classes/{cls}")
        dims = tuple(info.get("spec", {}).get("dimensions") or ())
    return tuple(d for d in (dims or ("chip", "filter", "night")) if d in _ASKED)


def _names(page: dict[str, Any]) -> list[str]:
    return sorted({str(o["attributes"].get("name")) for o in page["objects"]
                   if o["attributes"].get("name")})


async def _choices(p: Portal, cls: str, dims: tuple[str, ...],
                   data_id: dict[str, str]) -> dict[str, list[Any]]:
    """What a person may pick: chip and filter names, and the raw frames of a night."""
    out: dict[str, list[Any]] = {}
    if "chip" in dims:
        out["chip"] = _names(await p.catalog_api.post(
            "/query", json={"query": {"cls": "Chip"}, "limit": 1000}))
    if "filter" in dims:
        out["filter"] = _names(await p.catalog_api.post(
            "/query", json={"query": {"cls": "Filter"}, "limit": 1000}))
    if "raw" in dims and data_id.get("night") and data_id.get("chip"):
        out["raw"] = await _raw_frames(p, data_id)
    return out


async def _raw_frames(p: Portal, data_id: dict[str, str]) -> list[dict[str, Any]]:
    """The raw science frames of a night (noon to noon UTC) on a chip (and filter)."""
    try:
        night = dt.date.fromisoformat(data_id["night"])
    except ValueError:
        return []
    start = dt.datetime.combine(night, dt.time(12), dt.UTC)
    items: list[dict[str, Any]] = [
        {"node": "compare", "op": "eq", "path": ["chip", "name"], "value": data_id["chip"]},
        {"node": "between", "path": ["date_obs"], "low": start.isoformat(),
         "high": (start + dt.timedelta(days=1)).isoformat()}]
    if data_id.get("filter"):
        items.append({"node": "compare", "op": "eq", "path": ["filter", "name"],
                      "value": data_id["filter"]})
    page = await p.catalog_api.post("/query", json={"query": {
        "cls": "RawScienceFrame", "where": {"node": "and", "items": items},
        "order_by": [{"path": ["date_obs"]}]}, "limit": 200})
    return [{"oid": o["oid"], "type": o["type"], "object": o["attributes"].get("object"),
             "date_obs": o["attributes"].get("date_obs")} for o in page["objects"]]


def _data_id(values: dict[str, str], dims: tuple[str, ...]) -> dict[str, str]:
    """The data ID a form gave (blank fields left out; a raw frame picked from the list, or
    typed as an oid)."""
    values = {**values, "raw": values.get("raw") or values.get("raw_oid") or ""}
    return {d: values[d].strip() for d in dims if (values.get(d) or "").strip()}


def _is_date(text: str | None) -> bool:
    """Whether a night is absent or a date (the browser's date input sends YYYY-MM-DD)."""
    try:
        return text is None or bool(dt.date.fromisoformat(text))
    except ValueError:
        return False


@router.get("/make", summary="The target maker: class, data ID, dry-run plan", **api.page(),
            openapi_extra=api.query_params({**_DATA_ID, "plan": "present: show the dry-run plan"}))
async def make_page(request: Request, p: Portal = Depends(portal)) -> Response:
    """The form, and once Plan is pressed the dry-run plan. The page's calls to the
    services (the classes, the names to pick from, the plan) run at once."""
    params = dict(request.query_params)
    cls = (params.get("cls") or "").strip()
    classes: list[str] | None = None
    if cls and cls not in registry:  # a user's class: is it one, and its dimensions
        classes = await _checked_class(p, cls)
    dims = await dimensions_of(p, cls) if cls else ()
    data_id = _data_id(params, dims)
    context: dict[str, Any] = {"title": "Make", "cls": cls, "dims": dims, "data_id": data_id,
                               "choices": {}, "rows": None, "summary": None, "target": None,
                               "error": None, "need": None}
    status = 200
    missing = [d for d in dims if d not in data_id]
    planning = bool(cls) and params.get("plan") is not None
    if planning and missing:  # the Plan button, too early
        planning = False
        context["need"] = (f"A {cls} is for one {', '.join(missing)}: "
                           + ("choose the raw frame below, then Plan again."
                              if missing == ["raw"] else "give it, then Plan."))
    elif planning and not _is_date(data_id.get("night")):
        planning = False
        context["error"], status = f"night {data_id['night']!r} is not a date (YYYY-MM-DD)", 400
    found, choices, plan = await asyncio.gather(
        _given(classes) if classes is not None else makeable(p),
        _choices(p, cls, dims, data_id) if cls else _given({}),
        _dry_run(p, cls, data_id) if planning else _given(None))
    if cls and cls not in found:
        raise InvalidRequest(f"{cls[:100]!r} is not a class a pipeline makes; choose one of "
                             + ", ".join(found))
    context.update(classes=found, choices=choices)
    if isinstance(plan, AweError):
        context["error"], status = plan.detail, plan.status_code
    elif plan is not None:
        rows = parse_plan(plan["plan"])
        context.update(rows=rows, summary=plan_summary(rows), target=plan.get("target"))
    # a class chosen in the select (htmx) gets the whole page: it swaps in the form only
    return render(request, "make.html", context, status_code=status)


async def _given(value: T) -> T:
    """A value known already, among calls gathered at once."""
    return value


async def _checked_class(p: Portal, cls: str) -> list[str]:
    """The classes a pipeline makes, ``cls`` among them (else 400, naming them)."""
    classes = await makeable(p)
    if cls not in classes:
        raise InvalidRequest(f"{cls[:100]!r} is not a class a pipeline makes; choose one of "
                             + ", ".join(classes))
    return classes


async def _dry_run(p: Portal, cls: str, data_id: dict[str, str]) -> dict[str, Any] | AweError:
    """The plan compute would carry out, or its refusal (a 4xx: shown on the page)."""
    try:
        plan: dict[str, Any] = await p.compute.post(
            "/jobs", json={"cls": cls, "data_id": data_id, "dry_run": True})
    except AweError as exc:
        if exc.status_code >= 500:
            raise
        return exc
    return plan


@router.post("/make", summary="Make the planned target: queue its jobs",
             dependencies=[Depends(require_csrf)],
             **api.form(_DATA_ID, required=("cls",), redirect="to the run page, or to the "
                        "target when it is up to date (Location)"))
async def make_submit(request: Request, p: Portal = Depends(portal)) -> Response:
    """Queue the jobs (compute plans again: what was made meanwhile is not made twice) and
    follow them on the run page; a target up to date already is shown itself."""
    form = await form_data(request)
    cls = form.get("cls", "")
    await _checked_class(p, cls)
    data_id = _data_id(form, await dimensions_of(p, cls))
    submitted = await p.compute.post("/jobs", json={"cls": cls, "data_id": data_id})
    ids = [j["id"] for j in submitted["jobs"]]
    if not ids:  # up to date already: the target itself
        return RedirectResponse(f"/objects/{submitted['target']}", status_code=303)
    return RedirectResponse(_run_url(ids[:MAX_RUN], submitted.get("target")), status_code=303)


def _run_url(ids: list[str], target: str | None, path: str = "/make/run") -> str:
    query = {"jobs": ",".join(ids)}
    if target:
        query["target"] = target
    return f"{path}?{urlencode(query)}"


def _job_ids(text: str) -> list[str]:
    ids = [i for i in (text or "").split(",") if i]
    if not ids or len(ids) > MAX_RUN or not all(_JOB_ID.match(i) for i in ids):
        raise InvalidRequest(f"jobs: give 1 to {MAX_RUN} job ids, comma-separated")
    return ids


async def _run_context(p: Portal, jobs_text: str, target: str | None) -> dict[str, Any]:
    """A run's jobs as compute has them now, its state, and the URLs that follow it."""
    ids = _job_ids(jobs_text)
    jobs = await p.compute.post("/jobs/lookup", json={"ids": ids})
    state = run_state(jobs)
    counts = {s: sum(j["status"] == s for j in jobs)
              for s in ("waiting", "ready", "running", "done", "failed", "cancelled")}
    return {"jobs": jobs, "state": state, "counts": counts, "target": target,
            "poll": POLL,
            "run_url": _run_url(ids, target), "fragment_url": _run_url(ids, target,
                                                                      "/make/run/jobs")}


@router.get("/make/run", summary="A run of jobs, followed live", **api.page())
async def run_page(request: Request, jobs: str = "", target: str | None = None,
                   p: Portal = Depends(portal)) -> Response:
    return render(request, "make_run.html",
                  {"title": "Making", **await _run_context(p, jobs, target)})


@router.get("/make/run/jobs", summary="The run's jobs: the fragment the run page polls",
            **api.page())
async def run_fragment(request: Request, jobs: str = "", target: str | None = None,
                       p: Portal = Depends(portal)) -> Response:
    return render_fragment(request, "make_jobs.html", await _run_context(p, jobs, target))


def _checked(job_id: str) -> str:
    if not _JOB_ID.match(job_id):
        raise InvalidRequest(f"{job_id[:60]!r} is not a job id")
    return job_id


@router.get("/make/jobs/{job_id}/log", summary="A job and what its workers wrote",
            **api.page())
async def job_log(request: Request, job_id: str, back: str | None = None,
                  p: Portal = Depends(portal)) -> Response:
    job, log = await asyncio.gather(p.compute.get(f"/jobs/{_checked(job_id)}"),
                                    p.compute.get(f"/jobs/{job_id}/log"))
    return render(request, "make_log.html", {"title": f"Job {job['id'][:8]}", "job": job,
                                             "log": log,
                                             "back": safe_next(back) if back else None})


@router.post("/make/jobs/{job_id}/retry", summary="Requeue a failed job, and what failed with it",
             dependencies=[Depends(require_csrf)],
             **api.form({"back": "where to go then (a path)"}))
async def job_retry(request: Request, job_id: str, p: Portal = Depends(portal)) -> Response:
    job = await p.compute.post(f"/jobs/{_checked(job_id)}/retry")
    back = (await form_data(request)).get("back")
    return RedirectResponse(safe_next(back) if back else _run_url([job["id"]], None),
                            status_code=303)
