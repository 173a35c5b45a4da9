from __future__ import annotations

from fastapi import APIRouter, Depends, Query

from awecore.events import ChangePage

from ..factory import Factory
from ..models import Caller
from .deps import get_caller, get_factory

router = APIRouter(tags=["changes"])


@router.get("/changes", response_model=ChangePage,
            summary="The changelog after a sequence number (catch-up path of consumers)")
async def changes(
    after: int = Query(default=0, ge=0),
    limit: int = Query(default=500, ge=1, le=5000),
    caller: Caller = Depends(get_caller),
    factory: Factory = Depends(get_factory),
) -> ChangePage:
    return await factory.changes().page(after, limit, caller)
