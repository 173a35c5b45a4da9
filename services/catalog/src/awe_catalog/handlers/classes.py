"""Users' own classes: register a class schema (versioned), read one back."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Path, Response

from awecore.model import CLASS_NAME, ClassInfo, ClassSchema

from ..factory import Factory
from ..models import Caller
from .deps import get_caller, get_factory

router = APIRouter(tags=["classes"])


@router.post(
    "/classes", response_model=ClassInfo, status_code=201,
    summary="Register a class of your own (a user's product), or a new version of one",
    description="201: registered, or a new version (it may only add fields). 200: this very "
                "schema is registered already (idempotent; `superseded` if a newer version "
                "exists). 409: a name of awecore's own classes, the same version with another "
                "schema, an older version, or a new version that changes or removes a field. "
                "Any user may register a new class; a new version only its first registrant, "
                "an admin or a service account.",
    responses={200: {"model": ClassInfo, "description": "registered already: unchanged"}})
async def register(body: ClassSchema, response: Response, caller: Caller = Depends(get_caller),
                   factory: Factory = Depends(get_factory)) -> ClassInfo:
    info = await factory.classes().register(body, caller)
    if info.outcome in ("unchanged", "superseded"):
        response.status_code = 200
    return info


@router.get("/classes/{name}", response_model=ClassInfo,
            summary="One class: its schema (awecore's own, or registered: versions, by whom)")
async def describe(name: str = Path(pattern=CLASS_NAME),
                   factory: Factory = Depends(get_factory)) -> ClassInfo:
    return await factory.classes().describe(name)
