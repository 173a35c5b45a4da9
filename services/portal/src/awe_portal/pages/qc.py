"""QC monitoring: a chip's (and filter's) QC quantities over nights, and verdicts.

For a chip, each quantity of :data:`~._qcseries.METRICS` is one chart (read noise, bias
level, flat-field rms, hot and cold pixels, zeropoint, astrometric rms, seeing, source
counts), each point a link to its object, flagged and rejected points marked. A
calibration scientist opens a point's verdict form (``judge``), sets ``is_valid`` (0 bad,
1 good, 2 proposed) with a comment, and the catalog's ``PATCH /objects/{oid}`` does it as
that user: the catalog alone decides whether this user may (its 403 is shown as is). The
comment is the curation's ``reason``: it stays in the object's history, which the form
shows, and it travels with the verdict to the other sites.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Request
from fastapi.responses import RedirectResponse, Response

from awecore.errors import InvalidRequest, NotFound

from .. import openapi as api
from ..deps import Portal, portal
from ..render import series_svg
from ..session import form_data, require_csrf
from ..templating import render, render_fragment
from ._params import check_name, oid, optional_time, reason, verdict
from ._qcseries import METRICS, fetch_series, named_objects, object_time

__all__ = ["router"]

router = APIRouter()
#: the view a form comes back to
_VIEW = {"chip": "chip name", "filter": "filter name", "start": "from (a date)",
         "end": "to (a date)"}


def qc_url(chip: str | None, filter: str | None, start: str | None, end: str | None,
           judge: str | None = None, done: str | None = None) -> str:
    """The QC page of this view (and a point's verdict form), as a link."""
    params = {k: v for k, v in (("chip", chip), ("filter", filter), ("start", start),
                                ("end", end), ("judge", judge), ("done", done)) if v}
    return "/qc" + ("?" + urlencode(params) if params else "")


@router.get("/qc", summary="QC monitoring: a chip's quantities over nights", **api.page())
async def qc_page(request: Request, p: Portal = Depends(portal), chip: str | None = None,
                  filter: str | None = None, start: str | None = None,
                  end: str | None = None, judge: str | None = None,
                  done: str | None = None) -> Response:
    chip_name = check_name(chip, "chip")
    filter_name = check_name(filter, "filter")
    lo = optional_time(start, "from")
    hi = optional_time(end, "to", end_of_day=True)
    # the names for the form and the series in one call to the catalog
    if chip_name:
        series, (chips, filters) = await fetch_series(p, chip_name, filter_name, lo, hi,
                                                      named=("Chip", "Filter"))
    else:
        series, (chips, filters) = [], await named_objects(p, "Chip", "Filter")
    keep = {"chip": chip_name, "filter": filter_name, "start": (start or "").strip() or None,
            "end": (end or "").strip() or None}
    context: dict[str, Any] = {
        "title": f"QC {chip_name}" if chip_name else "QC", "chips": sorted(set(chips.values())),
        "filters": sorted(set(filters.values())), "form": keep, "charts": [],
        "judged": None, "history": [], "done": done, "back": qc_url(**keep)}
    if series:
        # the points' tables are fetched when opened (htmx): a year of nights is thousands
        # of rows, which every view would pay for
        context["charts"] = [{
            "metric": s.metric, "truncated": s.truncated, "count": len(s.points),
            "svg": series_svg(s.points, title=s.metric.label, unit=s.metric.unit,
                              css_id=f"qc-{s.metric.key}"),
            "points_url": "/qc/points?" + urlencode(
                {**{k: v for k, v in keep.items() if v}, "metric": s.metric.key}),
        } for s in series]
    if judge:
        target = oid(judge, "judge")
        records = await p.catalog.get_records([target])
        if target not in records:
            raise NotFound(f"no object {target} (or you may not see it)")
        record = records[target]
        context["judged"] = {"record": record, "when": object_time(record)}
        context["history"] = list(reversed(await p.catalog.history(target)))[:5]
    return render(request, "qc.html", context)


@router.get("/qc/points", summary="One quantity's points (a fragment)", **api.page())
async def points_fragment(request: Request, p: Portal = Depends(portal), chip: str = "",
                          metric: str = "", filter: str | None = None,
                          start: str | None = None, end: str | None = None) -> Response:
    """One quantity's points as a table, each with its object and its verdict form."""
    chosen = next((m for m in METRICS if m.key == metric), None)
    if chosen is None:
        raise InvalidRequest(f"no QC quantity {metric[:40]!r}; there are "
                             + ", ".join(m.key for m in METRICS))
    chip_name = check_name(chip, "chip")
    if chip_name is None:
        raise InvalidRequest("give a chip")
    filter_name = check_name(filter, "filter")
    keep = {"chip": chip_name, "filter": filter_name, "start": (start or "").strip() or None,
            "end": (end or "").strip() or None}
    lo, hi = optional_time(start, "from"), optional_time(end, "to", end_of_day=True)
    (series,), _ = await fetch_series(p, chip_name, filter_name, lo, hi, metrics=[chosen],
                                      named=("Filter",) if chosen.per_filter else ())
    points = sorted(series.points, key=lambda pt: pt.at, reverse=True)
    return render_fragment(request, "qc_points.html", {
        "points": points, "metric": chosen,
        "judge": {pt.oid: qc_url(**keep, judge=pt.oid) + "#verdict" for pt in points}})


@router.post("/qc/verdict", dependencies=[Depends(require_csrf)], summary="Set is_valid",
             **api.form({"oid": "the object", "is_valid": "0 bad, 1 good, 2 proposed",
                         "comment": "why (kept in its history)", **_VIEW},
                        required=("oid", "is_valid", "comment")))
async def set_verdict(request: Request, p: Portal = Depends(portal)) -> Response:
    """Set is_valid with a comment (the curation's reason), then back to the same view."""
    form = await form_data(request)
    target = oid(form.get("oid"))
    body = {"is_valid": verdict(form.get("is_valid")), "reason": reason(form.get("comment"))}
    await p.catalog_api.request("PATCH", f"/objects/{target}", json=body)
    keep = {k: check_name(form.get(k), k) for k in ("chip", "filter")}
    back = qc_url(keep["chip"], keep["filter"], (form.get("start") or "").strip() or None,
                  (form.get("end") or "").strip() or None, judge=target,
                  done=str(body["is_valid"]))
    return RedirectResponse(back + "#verdict", status_code=303)
