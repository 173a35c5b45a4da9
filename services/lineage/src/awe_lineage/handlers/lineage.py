from __future__ import annotations

import datetime as dt
import json
from typing import Any

from fastapi import APIRouter, Depends, Query

from awecore.lineage import Graph, Impact, Path, Staleness
from awecore.server import Identity

from ..factory import Factory
from ..services.lineage import MAX_DEPTH, openlineage_events, prov_document
from .deps import get_caller, get_factory

router = APIRouter(prefix="/lineage", tags=["lineage"])
Depth = Query(default=MAX_DEPTH, ge=0, le=MAX_DEPTH, description="how many steps to follow")
At = Query(default=None, description=(
    "the graph as it was at this time (ISO 8601, UTC if no zone): what existed then, with "
    "validity, is_valid and privileges as they were; 404 if the object did not exist yet"))


@router.get("/path", response_model=Path, summary="A chain of references between two objects")
async def path(src: str, dst: str, caller: Identity = Depends(get_caller),
               factory: Factory = Depends(get_factory)) -> Path:
    return await factory.lineage().path(src, dst, caller)


@router.get("/{oid}/upstream", response_model=Graph,
            summary="Where it came from, down to the raw data")
async def upstream(oid: str, depth: int = Depth, at: dt.datetime | None = At,
                   caller: Identity = Depends(get_caller),
                   factory: Factory = Depends(get_factory)) -> Graph:
    return await factory.lineage().graph(oid, caller, down=False, depth=depth, at=at)


@router.get("/{oid}/downstream", response_model=Graph, summary="What was made from it")
async def downstream(oid: str, depth: int = Depth, at: dt.datetime | None = At,
                     caller: Identity = Depends(get_caller),
                     factory: Factory = Depends(get_factory)) -> Graph:
    return await factory.lineage().graph(oid, caller, down=True, depth=depth, at=at)


@router.get("/{oid}/impact", response_model=Impact,
            summary="Everything an invalidation would make stale, grouped by class")
async def impact(oid: str, caller: Identity = Depends(get_caller),
                 factory: Factory = Depends(get_factory)) -> Impact:
    return await factory.lineage().impact(oid, caller)


@router.get("/{oid}/staleness", response_model=Staleness,
            summary="Whether it is out of date, and why, per input")
async def staleness(oid: str, caller: Identity = Depends(get_caller),
                    factory: Factory = Depends(get_factory)) -> Staleness:
    return await factory.lineage().staleness(oid, caller)


@router.get("/{oid}/prov", summary="Upstream lineage as W3C PROV-JSON")
async def prov(oid: str, down: bool = False, depth: int = Depth,
               caller: Identity = Depends(get_caller),
               factory: Factory = Depends(get_factory)) -> dict[str, Any]:
    graph = await factory.lineage().graph(oid, caller, down=down, depth=depth)
    return dict(json.loads(prov_document(graph).serialize(format="json") or "{}"))


@router.get("/{oid}/openlineage", summary="Upstream lineage as OpenLineage run events")
async def openlineage(oid: str, depth: int = Depth, caller: Identity = Depends(get_caller),
                      factory: Factory = Depends(get_factory)) -> list[dict[str, Any]]:
    graph = await factory.lineage().graph(oid, caller, down=False, depth=depth)
    return openlineage_events(graph, factory.context.settings.site)
