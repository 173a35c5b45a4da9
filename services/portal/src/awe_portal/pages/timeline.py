"""The calibration timeline (Astro-WISE's CalTS): the validity windows of a class for a
chip on a time axis, with verdicts and flags; edit a window and see what becomes stale.

The windows come from the catalog's ``GET /calibrations/{cls}/timeline``; a window is moved
with ``PATCH /objects/{oid}`` (start, end and a reason, as the signed-in user: the catalog
decides who may). What the move makes stale is the lineage service's answer: the
calibration's products (``GET /lineage/{oid}/downstream``), each judged by ``GET
/lineage/{oid}/staleness`` (a calibration is never used outside its window), and what was
made from a stale product in turn. Lineage learns of the move from the catalogue's
changelog a moment later, so the stale panel is an htmx fragment that looks again until
lineage's copy of the window is the catalogue's.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import RedirectResponse, Response

from awecore.errors import AweError, InvalidRequest, NotFound
from awecore.lineage import Graph, Staleness
from awecore.model import registry
from awecore.records import ObjectOut, TimelineEntry, TimelinePage

from .. import openapi as api
from ..deps import Portal, portal
from ..render import node_label, timeline_svg
from ..session import form_data, require_csrf
from ..templating import render, render_fragment
from ._params import check_name, oid, optional_time, reason

__all__ = ["calibration_classes", "router"]

router = APIRouter()

#: windows one timeline shows (one page of the API)
MAX_ENTRIES = 1000
#: direct products whose staleness is asked (in parallel, a few at a time)
MAX_PRODUCTS = 200
#: looks of the stale panel while lineage catches up with a moved window (every POLL ms)
MAX_LOOKS, POLL_MS = 60, 500


def calibration_classes() -> list[str]:
    """``CalFile`` (all calibrations) and each concrete calibration class of the model."""
    names = registry.subclass_names(registry.get("CalFile"))
    return ["CalFile", *sorted(n for n in names if not registry.get(n).abstract)]


def timeline_url(cls: str | None, chip: str | None, filter: str | None, start: str | None,
                 end: str | None, edit: str | None = None, changed: str | None = None) -> str:
    params = {k: v for k, v in (("cls", cls), ("chip", chip), ("filter", filter),
                                ("start", start), ("end", end), ("edit", edit),
                                ("changed", changed)) if v}
    return "/timeline" + ("?" + urlencode(params) if params else "")


def _local(when: dt.datetime | None) -> str:
    """A time as a datetime-local input shows it (UTC, to the minute)."""
    return when.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M") if when else ""


async def _timeline(p: Portal, cls: str, chip: str, filter: str | None,
                    start: dt.datetime | None, end: dt.datetime | None) -> TimelinePage:
    params: dict[str, Any] = {"chip": chip, "limit": MAX_ENTRIES}
    if filter:
        params["filter"] = filter
    if start:
        params["start"] = start.isoformat()
    if end:
        params["end"] = end.isoformat()
    return TimelinePage.model_validate(
        await p.catalog_api.get(f"/calibrations/{cls}/timeline", **params))


@router.get("/timeline", summary="A calibration class's validity windows", **api.page())
async def timeline_page(request: Request, p: Portal = Depends(portal), cls: str = "CalFile",
                        chip: str | None = None, filter: str | None = None,
                        start: str | None = None, end: str | None = None,
                        edit: str | None = None, changed: str | None = None) -> Response:
    classes = calibration_classes()
    if cls not in classes:
        raise InvalidRequest(f"{cls[:60]!r} is not a calibration class; choose one of "
                             + ", ".join(classes))
    chip_name = check_name(chip, "chip")
    filter_name = check_name(filter, "filter")
    lo = optional_time(start, "from")
    hi = optional_time(end, "to", end_of_day=True)
    keep = {"cls": cls, "chip": chip_name, "filter": filter_name,
            "start": (start or "").strip() or None, "end": (end or "").strip() or None}
    context: dict[str, Any] = {
        "title": f"Timeline {cls} {chip_name or ''}".strip(), "classes": classes,
        "form": keep, "svg": None, "entries": [], "truncated": False, "edited": None,
        "changed": bool(changed), "stale_url": None, "back": timeline_url(**keep)}
    target = oid(edit, "edit") if edit else None
    if chip_name:
        page = await _timeline(p, cls, chip_name, filter_name, lo, hi)
        entries = page.entries
        context["entries"] = entries
        context["truncated"] = page.next_offset is not None
        context["svg"] = timeline_svg(
            entries, start=lo, end=hi, highlight={target} if target else (),
            href=lambda o: timeline_url(**keep, edit=o) + "#edit")
    if target:
        context["edited"] = await _edited(p, target, context["entries"])
        context["stale_url"] = "/timeline/stale?" + urlencode(
            {"oid": target, **({"wait": "1"} if changed else {})})
    return render(request, "timeline.html", context)


async def _edited(p: Portal, target: str, entries: list[TimelineEntry]) -> dict[str, Any]:
    """The window being edited: from the timeline shown, else from the catalog."""
    entry = next((e for e in entries if e.oid == target), None)
    if entry is not None:
        start, end, kind, valid = (entry.timestamp_start, entry.timestamp_end, entry.type,
                                   entry.is_valid)
    else:
        found = await p.catalog.get_records([target])
        if target not in found:
            raise NotFound(f"no object {target} (or you may not see it)")
        r = found[target]
        start, end, kind, valid = r.timestamp_start, r.timestamp_end, r.type, r.is_valid
    if start is None and end is None and entry is None:
        raise InvalidRequest(f"{kind} {target} has no validity window: it is no calibration")
    return {"oid": target, "type": kind, "is_valid": valid, "start": start, "end": end,
            "start_local": _local(start), "end_local": _local(end), "entry": entry}


@router.post("/timeline/window", dependencies=[Depends(require_csrf)],
             summary="Move a validity window",
             **api.form({"oid": "the calibration", "timestamp_start": "its new start",
                         "timestamp_end": "its new end", "reason": "why",
                         "cls": "the timeline's class", "chip": "chip name",
                         "filter": "filter name", "start": "from (a date)",
                         "end": "to (a date)"},
                        required=("oid", "timestamp_start", "timestamp_end", "reason")))
async def move_window(request: Request, p: Portal = Depends(portal)) -> Response:
    """Move a window (start, end, why) and come back to the timeline, where the stale
    panel follows lineage until it has seen the move."""
    form = await form_data(request)
    target = oid(form.get("oid"))
    start = optional_time(form.get("timestamp_start"), "start")
    end = optional_time(form.get("timestamp_end"), "end")
    if start is None or end is None:
        raise InvalidRequest("give both the start and the end of the window")
    if end <= start:
        raise InvalidRequest("the window must end after it starts")
    body = {"timestamp_start": start.isoformat(), "timestamp_end": end.isoformat(),
            "reason": reason(form.get("reason"))}
    await p.catalog_api.request("PATCH", f"/objects/{target}", json=body)
    cls = form.get("cls") or "CalFile"
    if cls not in calibration_classes():
        cls = "CalFile"
    back = timeline_url(cls, check_name(form.get("chip"), "chip"),
                        check_name(form.get("filter"), "filter"),
                        (form.get("start") or "").strip() or None,
                        (form.get("end") or "").strip() or None, edit=target, changed="1")
    return RedirectResponse(back + "#edit", status_code=303)


def _same(a: dt.datetime | None, b: dt.datetime | None) -> bool:
    return (a is None and b is None) or (a is not None and b is not None and a == b)


@router.get("/timeline/stale", summary="What a calibration made stale (a fragment)",
            **api.page())
async def stale_fragment(request: Request, p: Portal = Depends(portal),
                         calibration: str = Query(default="", alias="oid"),
                         wait: str | None = None,
                         look: int = Query(default=0, ge=0, le=MAX_LOOKS)) -> Response:
    """Which products of a calibration are stale now, and why (an htmx fragment)."""
    target = oid(calibration)
    found = await p.catalog.get_records([target])
    if target not in found:
        raise NotFound(f"no object {target} (or you may not see it)")
    record = found[target]
    graph = Graph.model_validate(await p.lineage.get(f"/lineage/{target}/downstream"))
    root = next((n for n in graph.nodes if n.oid == target), None)
    behind = root is None or not (_same(root.timestamp_start, record.timestamp_start)
                                  and _same(root.timestamp_end, record.timestamp_end))
    if wait and behind and look < MAX_LOOKS:
        again = "/timeline/stale?" + urlencode({"oid": target, "wait": "1", "look": look + 1})
        return render_fragment(request, "timeline_stale.html", {
            "waiting": True, "again": again, "poll_ms": POLL_MS, "record": record})
    context = await _stale(p, target, record, graph)
    context.update(waiting=False, behind=behind)
    return render_fragment(request, "timeline_stale.html", context)


async def _stale(p: Portal, target: str, record: ObjectOut, graph: Graph) -> dict[str, Any]:
    direct = sorted({e.src for e in graph.edges if e.dst == target})
    nodes = {n.oid: n for n in graph.nodes}
    asked = direct[:MAX_PRODUCTS]
    gate = asyncio.Semaphore(8)

    async def judge(product: str) -> Staleness | None:
        async with gate:
            try:
                return Staleness.model_validate(
                    await p.lineage.get(f"/lineage/{product}/staleness"))
            except AweError:  # gone or hidden since the graph was read: not ours to show
                return None

    verdicts = await asyncio.gather(*(judge(o) for o in asked))
    stale: list[dict[str, Any]] = []
    for product, s in zip(asked, verdicts, strict=True):
        if s is None:
            continue
        why = [r for e in s.edges if e.input == target for r in e.reasons]
        if why:
            node = nodes.get(product)
            stale.append({"oid": product, "type": s.type, "reasons": why,
                          "label": node_label(node) if node else ""})
    # what was made from a stale product is stale in turn
    children: dict[str, list[str]] = {}
    for e in graph.edges:
        children.setdefault(e.dst, []).append(e.src)
    seen: set[str] = set()
    todo = [s["oid"] for s in stale]
    while todo:
        for child in children.get(todo.pop(), []):
            if child not in seen:
                seen.add(child)
                todo.append(child)
    seen -= {s["oid"] for s in stale}
    by_class: dict[str, int] = {}
    for o in seen:
        kind = nodes[o].type if o in nodes else "?"
        by_class[kind] = by_class.get(kind, 0) + 1
    return {"record": record, "stale": stale, "products": len(direct),
            "unasked": max(len(direct) - len(asked), 0), "downstream": by_class,
            "downstream_total": len(seen)}
