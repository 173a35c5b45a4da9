from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends

from ..factory import Factory
from ..storage.graph import GraphStore
from .deps import get_factory

router = APIRouter(tags=["operations"])


@router.get("/health", summary="Liveness and how far the graph has followed the catalog")
async def health(factory: Factory = Depends(get_factory)) -> dict[str, Any]:
    context = factory.context
    async with context.pool.acquire() as conn:
        applied = await GraphStore(conn).last_applied()
    return {"status": "ok", "site": context.settings.site, "applied_sequence": applied,
            "events_applied": context.follower.applied,
            "duplicates_ignored": context.follower.duplicates}
