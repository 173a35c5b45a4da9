"""The lineage application: ``uvicorn awe_lineage.main:create_app --factory``."""

from __future__ import annotations

from fastapi import FastAPI

from awecore.server import service_app

from .config import LineageSettings
from .factory import Factory, ProcessContext
from .handlers import router

__all__ = ["create_app"]


def create_app(settings: LineageSettings | None = None) -> FastAPI:
    settings = settings or LineageSettings()
    return service_app(
        settings, service="lineage", title="AWE lineage",
        summary="The provenance graph: upstream, downstream, impact, staleness.",
        router=router, make_context=lambda kit: ProcessContext.create(settings, kit),
        factory=Factory)
