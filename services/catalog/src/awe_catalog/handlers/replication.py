from __future__ import annotations

import uuid

from fastapi import APIRouter, Depends, Query

from awecore.errors import InvalidRequest
from awecore.events import ObjectCurated
from awecore.visibility import REPLICATED_FROM

from ..factory import Factory
from ..models import Caller, Digest, ReplicateIn, ReplicateOut
from .deps import get_caller, get_factory

router = APIRouter(tags=["federation"])


@router.post("/replicate", response_model=ReplicateOut,
             summary="Apply changes made at another site (service accounts only)")
async def replicate(body: ReplicateIn, caller: Caller = Depends(get_caller),
                    factory: Factory = Depends(get_factory)) -> ReplicateOut:
    for event in body.events:  # the ids a batch names are oids, or nothing is applied
        oids = [event.subject] + ([event.data.oid] if isinstance(event.data, ObjectCurated)
                                  else [])
        for oid in oids:
            try:
                uuid.UUID(oid)
            except ValueError:
                raise InvalidRequest(f"event {event.id!r}: {oid!r} is not an oid") from None
    return await factory.replication().apply(body.events, caller)


@router.get("/digest", response_model=Digest,
            summary="A hash over the shared objects and their curation state")
async def digest(min_privileges: int = Query(default=REPLICATED_FROM, ge=1, le=5),
                 caller: Caller = Depends(get_caller),
                 factory: Factory = Depends(get_factory)) -> Digest:
    return await factory.replication().digest(caller, min_privileges)
