"""DataLink: ``/datalink?ID=...`` (one or more IDs), and the files its links point to.

The files are served here, read from storage as the caller (their token forwarded), so a
DataLink client needs to reach only this service and the privilege rule applies to the
bytes exactly as to the metadata.
"""

from __future__ import annotations

import asyncio

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response

from ..factory import Factory
from ..services.datalink import DATALINK_TYPE, Target, datalink_document, find_links, target
from ..services.preview import preview_png
from ..tables import parse_did
from ..votable import VOError, votable_bytes
from .deps import Caller, VOParams, get_caller, get_factory, get_params

router = APIRouter(tags=["DataLink"])

#: most identifiers one DataLink request may name
MAX_IDS = 1000
_VOTABLE_FORMATS = ("votable", "application/x-votable+xml", "text/xml")


async def links(request: Request, params: VOParams = Depends(get_params),
                caller: Caller = Depends(get_caller),
                factory: Factory = Depends(get_factory)) -> Response:
    ids = [i for i in params.getall("ID") if i.strip()]
    if not ids:
        raise VOError("UsageError: ID is required (one or more)")
    if len(ids) > MAX_IDS:
        raise VOError(f"UsageError: at most {MAX_IDS} IDs per request")
    fmt = params.get("RESPONSEFORMAT")
    if fmt and fmt.strip().lower().split(";")[0] not in _VOTABLE_FORMATS:
        raise VOError(f"UsageError: RESPONSEFORMAT {fmt!r} is not served: ask for votable")
    base = factory.base_url(request)
    async with factory.read_only() as conn:
        found, soda = await find_links(conn, caller.viewer, ids, base)
    return Response(votable_bytes(datalink_document(found, soda, base)),
                    media_type=DATALINK_TYPE)


# one route per method: each its own OpenAPI operation (DataLink allows both)
for _method in ("GET", "POST"):
    router.add_api_route("/datalink", links, methods=[_method], response_class=Response,
                         operation_id=f"datalink_{_method.lower()}",
                         responses={200: {"content": {DATALINK_TYPE: {}}}},
                         summary="What can be had of each ID: file, cutouts, preview, inputs")


async def _target(factory: Factory, caller: Caller, oid: str) -> Target:
    value = parse_did(oid)
    if value is None:
        raise VOError(f"UsageError: {oid!r} is not an object id")
    async with factory.read_only() as conn:
        t = await target(conn, caller.viewer, value)
    if t is None:
        raise VOError(f"NotFoundFault: {oid}", status=404)
    return t


def _file(data: bytes, name: str) -> Response:
    kind = "application/fits" if ".fit" in name.lower() else "application/octet-stream"
    return Response(data, media_type=kind, headers={
        "Content-Disposition": f'attachment; filename="{name.rsplit("/", 1)[-1]}"'})


@router.get("/datalink/file/{oid}", response_class=Response,
            summary="The object's file (#this)")
async def this_file(oid: str, caller: Caller = Depends(get_caller),
                    factory: Factory = Depends(get_factory)) -> Response:
    t = await _target(factory, caller, oid)
    if not t.filename:
        raise VOError(f"NotFoundFault: {oid} has no file", status=404)
    return _file(await factory.fetch_file(t.filename, caller.token), t.filename)


@router.get("/datalink/weight/{oid}", response_class=Response,
            summary="The object's weight map (#weight)")
async def weight_file(oid: str, caller: Caller = Depends(get_caller),
                      factory: Factory = Depends(get_factory)) -> Response:
    t = await _target(factory, caller, oid)
    if not t.weight:
        raise VOError(f"NotFoundFault: {oid} has no weight map", status=404)
    return _file(await factory.fetch_file(t.weight, caller.token), t.weight)


@router.get("/datalink/preview/{oid}", response_class=Response,
            responses={200: {"content": {"image/png": {}}}},
            summary="A PNG preview of the image (#preview)")
async def preview(oid: str, caller: Caller = Depends(get_caller),
                  factory: Factory = Depends(get_factory)) -> Response:
    t = await _target(factory, caller, oid)
    if not (t.image and t.filename):
        raise VOError(f"NotFoundFault: {oid} is not an image", status=404)
    data = await factory.fetch_file(t.filename, caller.token)
    return Response(await asyncio.to_thread(preview_png, data), media_type="image/png")
