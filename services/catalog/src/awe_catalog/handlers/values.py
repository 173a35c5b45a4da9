"""``POST /query/values``: a DSL query's results as rows of a few fields."""

from __future__ import annotations

from typing import Any

import orjson
from fastapi import APIRouter, Depends
from fastapi.responses import Response
from pydantic import BaseModel, ConfigDict, Field

from awecore.query import QuerySpec
from awecore.server import READS

from ..factory import Factory
from ..models import Caller
from ..services.values import query_many, query_values
from .deps import get_factory, get_reader

router = APIRouter(tags=["queries"])


class ValuesRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    query: QuerySpec
    fields: list[str] = Field(
        min_length=1, max_length=32,
        description="per object, in this order: a record field (oid, is_valid, "
                    "quality_flags, timestamp_start, ...), attributes.NAME[.KEY...] (null "
                    "where absent) or refs.NAME (an oid, a list of oids, or null)")
    offset: int = Field(default=0, ge=0, le=10**9)
    limit: int = Field(default=1000, ge=1, le=10_000)


class ValuesPageOut(BaseModel):
    """One page: a row per object, its values in the order of ``fields``."""

    fields: list[str]
    rows: list[list[Any]]
    offset: int
    limit: int
    next_offset: int | None


@router.post("/query/values", response_model=ValuesPageOut, openapi_extra=READS,
             summary="Run a DSL query, one page of chosen fields per object")
async def run_values(body: ValuesRequest, caller: Caller = Depends(get_reader),
                     factory: Factory = Depends(get_factory)) -> Response:
    """The query ``POST /query`` runs (visibility, order, paging alike), each object a row
    of the fields asked: what a chart of thousands of objects needs, at a tenth of the
    records' weight. References the caller may not see are the nil UUID, as in records."""
    page = await query_values(factory.context.pool, body.query, body.fields, caller,
                              body.offset, body.limit)
    return Response(orjson.dumps({"fields": body.fields, "rows": page.rows,
                                  "offset": body.offset, "limit": body.limit,
                                  "next_offset": page.next_offset}),
                    media_type="application/json")


class ValuesBatchIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    queries: list[ValuesRequest] = Field(min_length=1, max_length=32)


class ValuesBatchOut(BaseModel):
    """A page per query, in the order asked."""

    pages: list[ValuesPageOut]


@router.post("/query/values/batch", openapi_extra=READS, response_model=ValuesBatchOut,
             summary="Run several DSL queries, one page of chosen fields each, in one call")
async def run_values_batch(body: ValuesBatchIn, caller: Caller = Depends(get_reader),
                           factory: Factory = Depends(get_factory)) -> Response:
    """``POST /query/values`` for each query, answered together as ``{"pages": [...]}`` in
    the order asked: a page drawing several charts asks once, not once per chart."""
    pages = await query_many(factory.context.pool, [
        (q.query, q.fields, q.offset, q.limit) for q in body.queries], caller)
    return Response(orjson.dumps({"pages": [
        {"fields": q.fields, "rows": page.rows, "offset": q.offset, "limit": q.limit,
         "next_offset": page.next_offset} for q, page in zip(body.queries, pages, strict=True)]}),
        media_type="application/json")
