"""Routes for calibration scientists: the calibration timeline (Astro-WISE's CalTS)."""

from __future__ import annotations

import datetime as dt

from fastapi import APIRouter, Depends, Query

from awecore.records import TimelinePage

from ..factory import Factory
from ..models import Caller
from .deps import get_factory, get_reader

router = APIRouter(tags=["calibrations"])


@router.get("/calibrations/{cls}/timeline", response_model=TimelinePage,
            summary="The calibrations of a class (and its subclasses) for a chip whose "
                    "validity overlaps [start, end], by window start, with their latest "
                    "curation")
async def timeline(
    cls: str,
    chip: str = Query(description="chip name or oid", max_length=100),
    filter: str | None = Query(default=None, description="filter name or oid",
                               max_length=100),
    start: dt.datetime | None = Query(default=None,
                                      description="ISO 8601, UTC if no zone; open if absent"),
    end: dt.datetime | None = Query(default=None,
                                    description="ISO 8601, UTC if no zone; open if absent"),
    offset: int = Query(default=0, ge=0, le=10**9),
    limit: int = Query(default=100, ge=1, le=1000),
    caller: Caller = Depends(get_reader),
    factory: Factory = Depends(get_factory),
) -> TimelinePage:
    return await factory.objects().timeline(cls, chip, caller, filter, start, end, offset,
                                            limit)
