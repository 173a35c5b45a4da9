from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request, Response
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Gauge, generate_latest

from awecore.web import Identity, get_identity

from ..factory import Factory
from ..services.status import SiteStatus

router = APIRouter()


def get_factory(request: Request) -> Factory:
    return Factory(request.app.state.context)


get_caller = get_identity


@router.get("/health", tags=["operations"], summary="Liveness")
async def health(factory: Factory = Depends(get_factory)) -> dict[str, Any]:
    s = factory.context.settings
    return {"status": "ok", "site": s.site, "peers": [p.site for p in s.peers]}


@router.get("/federation/status", response_model=SiteStatus, tags=["federation"],
            summary="Per peer: applied sequence, lag in changes and seconds, errors; digest")
async def status(caller: Identity = Depends(get_caller),
                 factory: Factory = Depends(get_factory)) -> SiteStatus:
    return await factory.status().status()


@router.get("/metrics", tags=["operations"], summary="Prometheus metrics",
            response_class=Response)
async def metrics(factory: Factory = Depends(get_factory)) -> Response:
    registry = CollectorRegistry()
    applied = Gauge("awe_federation_applied_sequence", "peer sequence applied here", ["peer"],
                    registry=registry)
    events = Gauge("awe_federation_events_applied", "peer changes applied since start",
                   ["peer"], registry=registry)
    for site, follower in factory.context.followers.items():
        applied.labels(site).set(await follower.cursor())
        events.labels(site).set(follower.applied)
    return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)


@router.post("/federation/catch-up", tags=["federation"],
             summary="Read every peer's changelog now (after a partition, say)")
async def catch_up(caller: Identity = Depends(get_caller),
                   factory: Factory = Depends(get_factory)) -> dict[str, int]:
    return {site: await f.catch_up() for site, f in factory.context.followers.items()}
