from __future__ import annotations

from fastapi import APIRouter, Depends, Query

from awecore.errors import Conflict, Forbidden, InvalidRequest
from awecore.query import QuerySpec
from awecore.sources import (
    SourceColumns,
    SourceConeRequest,
    SourcePage,
    SourceQueryPage,
    SourceQueryRequest,
)

from ..factory import Factory
from ..models import Caller, CountOut
from ..storage.sources import SourceStore
from .deps import get_caller, get_factory

router = APIRouter(tags=["sources"])


# declared before POST /sources/{oid}, which would otherwise take "query" and "cone" for oids
@router.post("/sources/query", response_model=SourceQueryPage,
             summary="Run a DSL query on Source (cls 'Source'), one page of rows")
async def query(body: SourceQueryRequest, caller: Caller = Depends(get_caller),
                factory: Factory = Depends(get_factory)) -> SourceQueryPage:
    async with factory.context.pool.acquire() as conn:
        return await SourceStore(conn).query(body.query, caller, body.offset, body.limit)


@router.post("/sources/query/count", response_model=CountOut,
             summary="Count a DSL query's source rows")
async def count(body: QuerySpec, caller: Caller = Depends(get_caller),
                factory: Factory = Depends(get_factory)) -> CountOut:
    async with factory.context.pool.acquire() as conn:
        return CountOut(count=await SourceStore(conn).count(body, caller))


@router.post("/sources/cone", response_model=SourcePage,
             summary="Sources within a radius of a position that match a DSL query")
async def cone_where(body: SourceConeRequest, caller: Caller = Depends(get_caller),
                     factory: Factory = Depends(get_factory)) -> SourcePage:
    async with factory.context.pool.acquire() as conn:
        rows = await SourceStore(conn).cone(body.ra, body.dec, body.radius, caller,
                                            body.limit, body.mag_max, body.query)
    return SourcePage(sources=[dict(r) for r in rows])


@router.post("/sources/{oid}", status_code=201,
             summary="Load the sources of a SourceList (bulk COPY, once)")
async def load(oid: str, body: SourceColumns, caller: Caller = Depends(get_caller),
               factory: Factory = Depends(get_factory)) -> dict[str, int]:
    sourcelist = await factory.objects().get(oid, caller)
    if sourcelist.type != "SourceList":
        raise InvalidRequest(f"{oid} is a {sourcelist.type}, not a SourceList")
    if not (caller.sees_all or sourcelist.creator == caller.name):
        raise Forbidden(f"only {sourcelist.creator} may load the sources of {oid}")
    async with factory.context.pool.acquire() as conn, conn.transaction():
        if await conn.fetchval("SELECT 1 FROM sources WHERE sourcelist = $1::uuid LIMIT 1",
                               sourcelist.oid):
            raise Conflict(f"the sources of {oid} are loaded already")
        n = await SourceStore(conn).load(sourcelist.oid, body.as_columns())
    return {"loaded": n}


@router.get("/sources/cone", response_model=SourcePage,
            summary="Sources within a radius (degrees) of a position, nearest first")
async def cone(ra: float = Query(ge=0, lt=360), dec: float = Query(ge=-90, le=90),
               radius: float = Query(gt=0, le=10), limit: int = Query(default=10_000, ge=1,
                                                                       le=100_000),
               mag_max: float | None = Query(default=None, ge=-50, le=100),
               caller: Caller = Depends(get_caller),
               factory: Factory = Depends(get_factory)) -> SourcePage:
    async with factory.context.pool.acquire() as conn:
        rows = await SourceStore(conn).cone(ra, dec, radius, caller, limit, mag_max)
    return SourcePage(sources=[dict(r) for r in rows])
