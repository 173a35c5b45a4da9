from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends

from awecore.errors import PayloadTooLarge
from awecore.model import (
    CurationUpdate,
    Field,
    ObjectIn,
    ObjectOut,
    Ref,
    Scalar,
    Struct,
    registry,
)
from awecore.records import CurationChange
from awecore.server import MAKES, READS

from ..factory import Factory
from ..models import BatchIn, BatchOut, Caller, GetManyIn, GetManyOut
from .deps import get_caller, get_factory, get_reader

router = APIRouter(tags=["objects"])


_TAKEN: dict[int | str, dict[str, Any]] = {
    409: {"description": "an object with this oid exists already"}}


@router.post("/objects", response_model=ObjectOut, status_code=201,
             summary="Register one object", responses=_TAKEN, openapi_extra=MAKES)
async def create_object(body: ObjectIn, caller: Caller = Depends(get_caller),
                        factory: Factory = Depends(get_factory)) -> ObjectOut:
    (created,) = await factory.objects().create([body], caller)
    factory.context.metrics.objects_created.labels(created.type).inc()
    return created


@router.post("/objects/batch", response_model=BatchOut, status_code=201,
             summary="Register many objects in one transaction (all or none)",
             responses=_TAKEN, openapi_extra=MAKES)
async def create_batch(body: BatchIn, caller: Caller = Depends(get_caller),
                       factory: Factory = Depends(get_factory)) -> BatchOut:
    limit = factory.context.settings.max_batch
    if len(body.objects) > limit:
        raise PayloadTooLarge(
            f"{len(body.objects)} objects in one batch; the limit is {limit}: split it")
    created = await factory.objects().create(body.objects, caller)
    for obj in created:
        factory.context.metrics.objects_created.labels(obj.type).inc()
    return BatchOut(oids=[o.oid for o in created])


@router.get("/objects/{oid}", response_model=ObjectOut, summary="One object by oid")
async def get_object(oid: str, caller: Caller = Depends(get_reader),
                     factory: Factory = Depends(get_factory)) -> ObjectOut:
    return await factory.objects().get(oid, caller)


@router.post("/objects/get", response_model=GetManyOut, openapi_extra=READS,
             summary="Many objects by oid (reference following is batched through this)")
async def get_many(body: GetManyIn, caller: Caller = Depends(get_reader),
                   factory: Factory = Depends(get_factory)) -> GetManyOut:
    found, missing = await factory.objects().get_many(body.oids, caller)
    return GetManyOut(objects=found, missing=missing)


@router.patch("/objects/{oid}", response_model=ObjectOut,
              summary="Curate: is_valid, validity window, privileges (only up), comments")
async def curate(oid: str, body: CurationUpdate, caller: Caller = Depends(get_caller),
                 factory: Factory = Depends(get_factory)) -> ObjectOut:
    return await factory.objects().curate(oid, body, caller)


@router.get("/objects/{oid}/history", response_model=list[CurationChange],
            summary="Every curation of an object, oldest first: who, when, where, why, "
                    "old and new values")
async def history(oid: str, caller: Caller = Depends(get_caller),
                  factory: Factory = Depends(get_factory)) -> list[CurationChange]:
    return await factory.objects().history(oid, caller)


def _describe(field: Field) -> dict[str, Any]:
    out: dict[str, Any] = {"kind": field.kind, "doc": field.doc}
    if isinstance(field, Scalar):
        out.update(type=field.type_name, unit=field.unit)
    elif isinstance(field, Ref):
        out.update(target=field.target_name, many=field.many)
    elif isinstance(field, Struct):
        out.update(fields={n: _describe(f) for n, f in field.struct.fields.items()})
    return out


@router.get("/counts", summary="How many objects of each class you may see",
            response_model=dict[str, int])
async def counts(caller: Caller = Depends(get_reader),
                 factory: Factory = Depends(get_factory)) -> dict[str, int]:
    """Each object counted once, by its own class (add a class's subclasses for the
    objects of a class): one statement, where a count per class would be one each."""
    return await factory.objects().counts(caller)


@router.get("/classes", summary="The object model: classes, bases and fields")
async def classes() -> dict[str, Any]:
    out: dict[str, Any] = {}
    for cls in registry:
        out[cls.__name__] = {
            "abstract": cls.abstract,
            "bases": [b.__name__ for b in cls.__mro__[1:] if b.__name__ in registry],
            "fields": {name: _describe(f) for name, f in cls.fields.items()},
        }
    return out
