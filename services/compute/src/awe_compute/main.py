"""The compute application: ``uvicorn awe_compute.main:create_app --factory``."""

from __future__ import annotations

from fastapi import FastAPI

from awecore.server import service_app

from .config import ComputeSettings
from .factory import Factory, ProcessContext
from .handlers import router

__all__ = ["create_app"]


def create_app(settings: ComputeSettings | None = None) -> FastAPI:
    settings = settings or ComputeSettings()
    return service_app(
        settings, service="compute", title="AWE compute",
        summary="Targets planned into jobs; workers make them.",
        router=router, make_context=lambda kit: ProcessContext.create(settings, kit),
        factory=Factory)
