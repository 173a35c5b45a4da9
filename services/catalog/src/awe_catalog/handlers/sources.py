from __future__ import annotations

from fastapi import APIRouter, Depends, Query

from awecore.query import QuerySpec
from awecore.server import MAKES, READS
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
                     factory: Factory = Depends(get_factory)) -> SourcePage:
    return await factory.sources().cone(body, caller)


@router.post("/sources/{oid}", status_code=201, openapi_extra=MAKES,
             summary="Load the sources of a SourceList (bulk COPY, once)")
async def load(oid: str, body: SourceColumns, caller: Caller = Depends(get_caller),
               factory: Factory = Depends(get_factory)) -> dict[str, int]:
    return {"loaded": await factory.sources().load(oid, body, caller, factory.objects())}


@router.get("/sources/cone", response_model=SourcePage,
            summary="Sources within a radius (degrees) of a position, nearest first")
async def cone(ra: float = Query(ge=0, lt=360), dec: float = Query(ge=-90, le=90),
               radius: float = Query(gt=0, le=10), limit: int = Query(default=10_000, ge=1,
                                                                       le=100_000),
               mag_max: float | None = Query(default=None, ge=-50, le=100),
               caller: Caller = Depends(get_reader),
               factory: Factory = Depends(get_factory)) -> SourcePage:
    return await factory.sources().cone(
        SourceConeRequest(ra=ra, dec=dec, radius=radius, limit=limit, mag_max=mag_max), caller)
