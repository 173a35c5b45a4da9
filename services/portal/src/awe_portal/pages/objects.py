"""The object viewer: classes with counts, the DSL query box, one object's page, and what
that page links to (its preview, its file, its lineage as PROV-JSON and OpenLineage).

Every call is made as the signed-in user, or for a visitor who has not signed in as the
anonymous reader, with no token at all (``Depends(viewer)``, issue 15: the world's objects,
privilege 5, are read without signing in, as with the API): an object the visitor may not
see is a 404 page here exactly as it is a 404 at the catalog.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from typing import Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import JSONResponse, Response, StreamingResponse

from awecore.errors import AweError, InvalidQuery, NotFound
from awecore.files import url_path
from awecore.model import DBObject, default_columns
from awecore.query import QueryPage
from awecore.sources import Source, SourceQueryPage, SourceRow

from .. import openapi as api
from ..deps import Portal, viewer
from ..render import NoPixels, lineage_svg
from ..services.objects import (
    class_rows,
    lineage_view,
    object_view,
    parse,
    read_record,
    resolve_refs,
    row_values,
)
from ..templating import render

__all__ = ["router"]

router = APIRouter()

PAGE_SIZES = (25, 50, 100, 200)
#: a small picture that says why there is none (answered with 404: an <img> shows it)
_NO_PIXELS = ('<svg xmlns="http://www.w3.org/2000/svg" width="360" height="60">'
              '<rect width="100%" height="100%" fill="#f3f4f6"/>'
              '<text x="12" y="36" font-family="sans-serif" font-size="14" fill="#5b6577">'
              '{text}</text></svg>')
_SAFE_NAME = re.compile(r"[^A-Za-z0-9._-]+")


def _page(**kwargs: Any) -> dict[str, Any]:
    """A route of the viewer: open to anonymous visitors (no sign-in redirect for them)."""
    return api.page(public=True, **kwargs)


@router.get("/objects", summary="The classes, with counts", **_page())
async def classes(request: Request, p: Portal = Depends(viewer),
                  counts: bool = False) -> Response:
    """The classes at once; their counts follow (htmx asks /objects/counts as the page
    loads; ``?counts=true`` renders them in the page, for a browser without scripts)."""
    rows = await class_rows(p, counted=counts)
    return render(request, "objects.html", {"title": "Objects", "rows": rows,
                                            "counted": counts})


@router.get("/objects/counts", summary="The classes' counts (a fragment)", **_page())
async def class_counts(request: Request, p: Portal = Depends(viewer)) -> Response:
    """The classes' table body with how many objects of each the user may see now (the
    catalogue counts every class in one statement: nothing is kept between requests)."""
    return render(request, "objects_rows.html", {"rows": await class_rows(p),
                                                 "counted": True})


@router.get("/query", summary="A DSL query, one page", **_page())
async def query(request: Request, p: Portal = Depends(viewer),
                q: str = Query(default="", max_length=10_000),
                offset: int = Query(default=0, ge=0, le=10**9),
                limit: int = Query(default=50, ge=1, le=1000)) -> Response:
    """A DSL expression, as ``awe query`` takes it, one page at a time."""
    context: dict[str, Any] = {"title": "Query", "q": q, "offset": offset, "limit": limit,
                               "sizes": PAGE_SIZES, "error": None, "columns": [], "rows": [],
                               "total": None, "next_offset": None, "kind": "objects"}
    if not q.strip():
        return render(request, "query.html", context)
    try:
        parsed = await parse(p, q)
        try:
            spec = parsed.spec()
        except (ValueError, TypeError) as exc:
            raise InvalidQuery(f"not a query this language takes: {exc}") from None
        if parsed.root is Source:
            body = {"query": spec.model_dump(mode="json"), "offset": offset, "limit": limit}
            got, counted = await asyncio.gather(
                p.catalog_api.post("/sources/query", json=body),
                p.catalog_api.post("/sources/query/count", json=spec.model_dump(mode="json")))
            page = SourceQueryPage.model_validate(got)
            total = counted["count"]
            context.update(kind="sources", columns=list(SourceRow.model_fields),
                           rows=[r.model_dump() for r in page.sources], total=total,
                           next_offset=page.next_offset)
        else:
            cls: type[DBObject] = parsed.root
            objects: QueryPage
            objects, total = await asyncio.gather(p.catalog.query_page(spec, offset, limit),
                                                  p.catalog.count(spec))
            linked = await resolve_refs(p, objects.objects)
            columns = default_columns(cls)
            context.update(columns=columns, rows=row_values(objects.objects, columns, linked),
                           total=total, next_offset=objects.next_offset)
    except InvalidQuery as exc:
        context["error"] = exc.detail
        return render(request, "query.html", context, status_code=400)
    except AweError as exc:
        if exc.status_code >= 500:
            raise
        context["error"] = exc.detail
        return render(request, "query.html", context, status_code=exc.status_code)
    return render(request, "query.html", context)


@router.get("/objects/{oid}", summary="An object", **_page())
async def object_page(request: Request, oid: str, p: Portal = Depends(viewer)) -> Response:
    """The object: its values and references at once; its lineage part follows (htmx
    asks /objects/{oid}/lineage as the page loads)."""
    view = await object_view(p, oid)
    return render(request, "object.html", {
        "title": f"{view.record.type} {view.record.oid}", "v": view, "r": view.record,
        "has_file": bool(view.record.filename)})


@router.get("/objects/{oid}/lineage", summary="An object's lineage", **_page())
async def object_lineage(request: Request, oid: str, p: Portal = Depends(viewer)) -> Response:
    """The lineage part of the object page: why it is stale, the flags its inputs pass on,
    the graph up and down (a piece of a page, or a page of its own without htmx)."""
    view = await lineage_view(p, oid)
    graph = lineage_svg(view.record.oid, view.upstream, view.downstream) \
        if view.upstream or view.downstream else None
    template = "object_lineage.html" if request.headers.get("HX-Request") else \
        "object_lineage_page.html"
    return render(request, template, {"title": f"Lineage of {view.record.oid}", "l": view,
                                      "r": view.record, "graph": graph})


def _no_pixels(text: str) -> Response:
    return Response(_NO_PIXELS.format(text=text), status_code=404,
                    media_type="image/svg+xml")


@router.get("/objects/{oid}/preview.png", summary="A product's pixels as PNG",
            **_page(media={"image/png": {"schema": {"type": "string", "format": "binary"}}},
                       also={404: {"image/svg+xml": {"schema": {"type": "string"}}}}))
async def preview(request: Request, oid: str, p: Portal = Depends(viewer)) -> Response:
    """The product's pixels as a PNG (zscale, WCS grid), rendered once per file version.
    The user's own read of the object comes first: the cache never answers for an object
    the user may not see."""
    record = await read_record(p, oid)
    if not record.filename:
        return _no_pixels("this object has no file")
    filename = record.filename

    async def load() -> bytes:
        return await p.storage.get(filename, sha256=record.checksum, size=record.file_size)

    previews = request.app.state.context.previews
    try:
        png = await previews.png(record.oid, record.checksum, load)
    except NoPixels:
        return _no_pixels("no image in this file")
    return Response(png, media_type="image/png",
                    headers={"Cache-Control": "private, max-age=3600"})


@router.get("/objects/{oid}/download", summary="An object's file",
            **_page(media={"application/fits": {"schema": {"type": "string",
                                                                "format": "binary"}}}))
async def download(oid: str, p: Portal = Depends(viewer)) -> Response:
    """The object's file, streamed from storage with the user's token (storage checks that
    the user may read it, by its object)."""
    record = await read_record(p, oid)
    if not record.filename:
        raise NotFound(f"{record.type} {record.oid} has no file")
    stack = AsyncExitStack()
    try:
        upstream = await stack.enter_async_context(
            p.storage_api.stream(f"/files/{url_path(record.filename)}"))
    except BaseException:
        await stack.aclose()
        raise

    async def body() -> AsyncIterator[bytes]:
        try:
            async for chunk in upstream.aiter_bytes(1 << 20):
                yield chunk
        finally:
            await stack.aclose()

    name = _SAFE_NAME.sub("_", record.filename.rsplit("/", 1)[-1]) or f"{record.oid}.fits"
    headers = {"Content-Disposition": f'attachment; filename="{name}"'}
    for key in ("content-length", "x-checksum-sha256", "etag"):
        if key in upstream.headers:
            headers[key] = upstream.headers[key]
    return StreamingResponse(body(), media_type="application/fits", headers=headers)


@router.get("/objects/{oid}/prov.json", summary="Lineage as W3C PROV-JSON",
            **_page(media={"application/json": {"schema": {"type": "object"}}}))
async def prov(oid: str, p: Portal = Depends(viewer), down: bool = False) -> Response:
    """Upstream (or downstream) lineage as W3C PROV-JSON, from the lineage service."""
    record = await read_record(p, oid)
    doc = await p.lineage.get(f"/lineage/{record.oid}/prov", down=str(down).lower())
    return JSONResponse(doc, headers={
        "Content-Disposition": f'inline; filename="{record.oid}.prov.json"'})


@router.get("/objects/{oid}/openlineage.json", summary="Lineage as OpenLineage run events",
            **_page(media={"application/json": {"schema": {"type": "array"}}}))
async def openlineage(oid: str, p: Portal = Depends(viewer)) -> Response:
    """Upstream lineage as OpenLineage run events, from the lineage service."""
    record = await read_record(p, oid)
    events = await p.lineage.get(f"/lineage/{record.oid}/openlineage")
    return JSONResponse(events, headers={
        "Content-Disposition": f'inline; filename="{record.oid}.openlineage.json"'})
