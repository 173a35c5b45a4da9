from __future__ import annotations

from fastapi import APIRouter, Depends, Request, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from ..factory import Factory
from ..models import Health
from .deps import get_factory

router = APIRouter(tags=["operations"])


@router.get("/health", response_model=Health, summary="Liveness and database reachability")
async def health(factory: Factory = Depends(get_factory)) -> Health:
    async with factory.context.pool.acquire() as conn:
        await conn.fetchval("SELECT 1")
    return Health(status="ok", site=factory.context.settings.site, database="ok",
                  version="0.1.0")


@router.get("/metrics", summary="Prometheus metrics", response_class=Response)
async def metrics(request: Request) -> Response:
    registry = request.app.state.context.metrics.registry
    return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)
