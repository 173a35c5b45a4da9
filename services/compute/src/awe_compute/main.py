"""The compute application: ``uvicorn awe_compute.main:create_app --factory``."""

from __future__ import annotations

from fastapi import FastAPI

from awecore.web import service_app

from .config import ComputeSettings
from .factory import ProcessContext
from .handlers import router

__all__ = ["create_app"]


def create_app(settings: ComputeSettings | None = None) -> FastAPI:
    settings = settings or ComputeSettings()
    return service_app(
        "compute", "AWE compute", "Targets planned into jobs; workers make them.",
        settings.log_level, lambda: ProcessContext.create(settings), router)
