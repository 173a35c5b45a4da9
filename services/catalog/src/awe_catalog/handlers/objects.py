from __future__ import annotations

import contextlib
import email.message
import gc
import itertools
import json
from collections import Counter
from collections.abc import Iterator
from typing import Any

import orjson
from fastapi import APIRouter, Depends, HTTPException, Request
from fastapi.exceptions import RequestValidationError
from pydantic import ValidationError

from awecore.errors import PayloadTooLarge
from awecore.model import (
    CurationUpdate,
    Field,
    ObjectIn,
    ObjectOut,
    Ref,
    Scalar,
    Struct,
    check_batch,
    registry,
)
from awecore.records import CurationChange
from awecore.server import MAKES, READS

from ..factory import Factory
from ..models import BATCH_BODY, BatchIn, BatchOut, Caller, GetManyIn, GetManyOut
from ..services.objects import NotChecked
from .deps import get_caller, get_factory, get_reader

router = APIRouter(tags=["objects"])


#: objects validated at a time in a batch: the database stores one part while the next is
#: validated (a part's rows are some 300 kB of COPY data)
PART = 1000

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
             responses=_TAKEN, openapi_extra={**MAKES, "requestBody": BATCH_BODY})
async def create_batch(request: Request, caller: Caller = Depends(get_caller),
                       factory: Factory = Depends(get_factory)) -> BatchOut:
    """The body is read here rather than by FastAPI (which would make an ObjectIn per object
    and then validate each against its class): a batch ``check_batch`` takes is validated in
    one pass per class; any other goes the exact path, with FastAPI's own answers."""
    limit = factory.context.settings.max_batch
    service = factory.objects()
    raw = await request.body()  # before the pause: a slow client sends it at its pace
    with collector_paused():
        data = _batch_json(raw, request.headers.get("content-type"))
        objects = data.get("objects") if type(data) is dict and len(data) == 1 else None
        records = None
        if type(objects) is list and 0 < len(objects) <= limit:
            first = check_batch(objects[:PART])  # the rest as the database stores the first
            if first is not None:
                rest = (check_batch(objects[i:i + PART]) for i in range(PART, len(objects), PART))
                with contextlib.suppress(NotChecked):  # then the exact path, below
                    records = await service.register(itertools.chain([first], rest), caller)
        if records is None:
            body = _batch_in(data)
            _within(limit, len(body.objects))
            records = await service.register([service.prepare(body.objects)], caller)
    for name, n in Counter(r["type"] for r in records).items():
        factory.context.metrics.objects_created.labels(name).inc(n)
    return BatchOut(oids=[r["oid"] for r in records])


def _batch_json(raw: bytes, content_type: str | None) -> Any:
    """The body as FastAPI would give it to BatchIn: JSON decoded (by orjson; what orjson
    refuses, by the standard library as FastAPI does, which words the error), the raw bytes
    for a body that does not say it is JSON. Every refusal is FastAPI's own (a 4xx)."""
    if not raw:
        raise RequestValidationError([{"type": "missing", "loc": ("body",),
                                       "msg": "Field required", "input": None}])
    if content_type is None:
        return raw
    message = email.message.Message()
    message["content-type"] = content_type
    subtype = message.get_content_subtype()
    if message.get_content_maintype() != "application" or not (
            subtype == "json" or subtype.endswith("+json")):
        return raw
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError:
        pass
    try:
        return json.loads(raw)
    except json.JSONDecodeError as exc:
        raise RequestValidationError([{
            "type": "json_invalid", "loc": ("body", exc.pos), "msg": "JSON decode error",
            "input": {}, "ctx": {"error": exc.msg}}]) from None
    except Exception as exc:  # bytes that are no text at all: FastAPI's answer
        raise HTTPException(status_code=400,
                            detail="There was an error parsing the body") from exc


def _batch_in(data: Any) -> BatchIn:
    """The body validated as FastAPI validates a BatchIn parameter, errors and all."""
    try:
        return BatchIn.model_validate(data)
    except ValidationError as exc:
        raise RequestValidationError(
            [{**e, "loc": ("body", *e["loc"])} for e in exc.errors(include_url=False)]
        ) from None


_pausing = 0


@contextlib.contextmanager
def collector_paused() -> Iterator[None]:
    """Python's cycle collector off while a batch is registered (for every request of the
    process meanwhile; back on when the last batch ends). A batch of 5 000 objects makes
    some 10^5 containers (decoded JSON, records, COPY rows, events) that live until its
    answer: the collector moved them to its oldest generation and then ran a full
    collection over them at nearly every batch (25 full collections, 4.8 s of the 17 s
    that 10^5 objects took). None of them is part of a cycle: reference counting frees
    them when the request ends. A collector someone else turned off stays off."""
    global _pausing
    if not _pausing and not gc.isenabled():
        yield
        return
    _pausing += 1
    gc.disable()
    try:
        yield
    finally:
        _pausing -= 1
        if not _pausing:
            gc.enable()


def _within(limit: int, n: int) -> None:
    if n > limit:
        raise PayloadTooLarge(f"{n} objects in one batch; the limit is {limit}: split it")


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
