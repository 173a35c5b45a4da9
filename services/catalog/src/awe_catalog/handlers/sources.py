from __future__ import annotations

import asyncio
from typing import Any

import numpy as np
import orjson
from fastapi import APIRouter, Depends, Query, Request, Response
from fastapi.exceptions import RequestValidationError
from pydantic import ValidationError
from starlette.requests import ClientDisconnect

from awecore.errors import AweError, InvalidRequest
from awecore.query import QuerySpec
from awecore.server import MAKES, READS
from awecore.source_columns import FITS_MEDIA_TYPES, MEDIA_TYPE, checked, decode_fits
from awecore.sources import (
    SourceColumns,
    SourceConeRequest,
    SourcePage,
    SourceQueryPage,
    SourceQueryRequest,
)

from ..factory import Factory
from ..models import Caller, CountOut
from .deps import get_caller, get_factory, get_reader

router = APIRouter(tags=["sources"])

#: bodies decoded on the event loop; a bigger one is decoded in a worker thread
_INLINE_BYTES = 1 << 20
_BODY: dict[str, Any] = {"required": True, "content": {
    "application/json": {"schema": SourceColumns.model_json_schema()},
    MEDIA_TYPE: {"schema": {"type": "string", "format": "binary",
                            "description": "a FITS file whose first binary table has the "
                                           "columns (ra and dec required), one row a source"}}}}
_LOAD_ANSWERS: dict[int | str, dict[str, Any]] = {
    409: {"description": "the sources of this list are loaded already"},
    413: {"description": "a body over the limit, or more than 1,000,000 sources"},
    415: {"description": "a body neither JSON nor FITS"}}


class UnsupportedMediaType(AweError):
    error = "unsupported_media_type"
    status_code = 415
    title = "Unsupported media type"


def _decode(media: str, body: bytes) -> dict[str, np.ndarray]:
    """The checked columns of a body, JSON or FITS (the same rules for both)."""
    if media in FITS_MEDIA_TYPES:
        return checked(decode_fits(body))
    try:
        return SourceColumns.model_validate_json(body).arrays()
    except ValidationError as exc:
        raise RequestValidationError([{**e, "loc": ("body", *e["loc"])}
                                      for e in exc.errors()]) from None


async def _columns(request: Request) -> dict[str, np.ndarray]:
    """The body's columns, decoded (and checked) in a worker thread if it is big."""
    media = request.headers.get("content-type", "application/json").split(";")[0]
    media = media.strip().lower()
    if media not in FITS_MEDIA_TYPES and media != "application/json" and not media.endswith(
            "+json"):
        raise UnsupportedMediaType(f"a load is JSON (application/json) or a FITS binary "
                                   f"table ({MEDIA_TYPE}), not {media or 'no content type'}")
    try:
        body = await request.body()
    except ClientDisconnect:
        raise InvalidRequest("the body stopped before its end; nothing was loaded") from None
    if len(body) <= _INLINE_BYTES:
        return _decode(media, body)
    return await asyncio.to_thread(_decode, media, body)


# declared before POST /sources/{oid}, which would otherwise take "query" and "cone" for oids
@router.post("/sources/query", response_model=SourceQueryPage, openapi_extra=READS,
             summary="Run a DSL query on Source (cls 'Source'), one page of rows")
async def query(body: SourceQueryRequest, caller: Caller = Depends(get_reader),
                factory: Factory = Depends(get_factory)) -> SourceQueryPage:
    return await factory.sources().query(body.query, caller, body.offset, body.limit)


@router.post("/sources/query/count", response_model=CountOut, openapi_extra=READS,
             summary="Count a DSL query's source rows")
async def count(body: QuerySpec, caller: Caller = Depends(get_reader),
                factory: Factory = Depends(get_factory)) -> CountOut:
    return CountOut(count=await factory.sources().count(body, caller))


@router.post("/sources/cone", response_model=SourcePage, openapi_extra=READS,
             summary="Sources within a radius of a position that match a DSL query")
async def cone_where(body: SourceConeRequest, caller: Caller = Depends(get_reader),
                     factory: Factory = Depends(get_factory)) -> Response:
    return _page(await factory.sources().cone(body, caller))


@router.post("/sources/{oid}", status_code=201, openapi_extra={**MAKES, "requestBody": _BODY},
             summary="Load the sources of a SourceList (bulk COPY, once): a FITS binary "
                     "table (application/fits) or JSON arrays of its columns",
             responses=_LOAD_ANSWERS)
async def load(oid: str, request: Request, caller: Caller = Depends(get_caller),
               factory: Factory = Depends(get_factory)) -> dict[str, int]:
    columns = await _columns(request)
    return {"loaded": await factory.sources().load(oid, columns, caller, factory.objects())}


@router.get("/sources/cone", response_model=SourcePage,
            summary="Sources within a radius (degrees) of a position, nearest first")
async def cone(ra: float = Query(ge=0, lt=360), dec: float = Query(ge=-90, le=90),
               radius: float = Query(gt=0, le=10), limit: int = Query(default=10_000, ge=1,
                                                                       le=100_000),
               mag_max: float | None = Query(default=None, ge=-50, le=100),
               caller: Caller = Depends(get_reader),
               factory: Factory = Depends(get_factory)) -> Response:
    return _page(await factory.sources().cone(
        SourceConeRequest(ra=ra, dec=dec, radius=radius, limit=limit, mag_max=mag_max), caller))


def _page(rows: list[dict[str, Any]]) -> Response:
    """A SourcePage written by orjson straight from the rows: through the response model
    (a validation and the standard library's encoder) it cost ~8 ms per 10^3 rows, as much
    as finding them. The rows are the database's: oids, numbers and nulls."""
    return Response(orjson.dumps({"sources": rows}), media_type="application/json")
