from __future__ import annotations

import datetime as dt

from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel

from awecore.dimensions import BestCalibrationsIn
from awecore.model import ObjectOut
from awecore.query import QueryPage, QueryRequest, QuerySpec
from awecore.server import READS

from ..factory import Factory
from ..models import Caller, CountOut
from .deps import get_factory, get_reader

router = APIRouter(tags=["queries"])


@router.post("/query", response_model=QueryPage, summary="Run a DSL query, one page",
             openapi_extra=READS)
async def run_query(body: QueryRequest, caller: Caller = Depends(get_reader),
                    factory: Factory = Depends(get_factory)) -> QueryPage:
    return await factory.objects().query(body.query, caller, body.offset, body.limit,
                                         body.after)


@router.post("/query/count", response_model=CountOut, summary="Count a DSL query's results",
             openapi_extra=READS)
async def count(body: QuerySpec, caller: Caller = Depends(get_reader),
                factory: Factory = Depends(get_factory)) -> CountOut:
    return CountOut(count=await factory.objects().count(body, caller))


@router.get("/calibrations/{cls}/best", response_model=ObjectOut,
            summary="The best calibration of a class for a chip (and filter) at a time")
async def best(
    cls: str,
    chip: str = Query(description="chip name or oid", max_length=100),
    time: dt.datetime = Query(description="ISO 8601, UTC if no zone"),
    filter: str | None = Query(default=None, description="filter name or oid", max_length=100),
    caller: Caller = Depends(get_reader),
    factory: Factory = Depends(get_factory),
) -> ObjectOut:
    return await factory.objects().best(cls, chip, time, caller, filter)


class BestCalibrationsOut(BaseModel):
    """One object or null per request, in the order asked; ``varies``: the requests for a
    span (``until``) whose best changes within it (null in ``objects``: ask per moment)."""

    objects: list[ObjectOut | None]
    varies: list[int] = []


@router.post("/calibrations/best", response_model=BestCalibrationsOut, openapi_extra=READS,
             summary="The best calibrations for many (class, chip, filter, time) at once")
async def best_many(body: BestCalibrationsIn, caller: Caller = Depends(get_reader),
                    factory: Factory = Depends(get_factory)) -> BestCalibrationsOut:
    """Each the valid calibration of its class for the chip (and filter) whose validity
    window covers the time, the newest; null where none does. One SQL statement for all
    (what a planner asks for the frames of a night). A request for a span is answered
    with the best at every moment of it, or listed in ``varies`` when that changes."""
    objects, varies = await factory.objects().best_over(body.requests, caller)
    return BestCalibrationsOut(objects=objects, varies=varies)
