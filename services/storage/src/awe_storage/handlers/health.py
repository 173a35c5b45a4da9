from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from ..factory import Factory
from .deps import get_factory

router = APIRouter(tags=["operations"])


@router.get("/health", summary="Liveness")
async def health(factory: Factory = Depends(get_factory)) -> dict[str, Any]:
    s = factory.context.settings
    return {"status": "ok", "site": s.site, "backend": s.backend,
            "peers": [p.site for p in s.peers],
            "events_not_published": factory.context.events.failures}


@router.get("/metrics", summary="Prometheus metrics", response_class=Response)
async def metrics(request: Request) -> Response:
    return Response(generate_latest(request.app.state.metrics.registry),
                    media_type=CONTENT_TYPE_LATEST)
