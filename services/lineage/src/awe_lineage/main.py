"""The lineage application: ``uvicorn awe_lineage.main:create_app --factory``."""

from __future__ import annotations

from fastapi import FastAPI

from awecore.web import service_app

from .config import LineageSettings
from .factory import ProcessContext
from .handlers import router

__all__ = ["create_app"]


def create_app(settings: LineageSettings | None = None) -> FastAPI:
    settings = settings or LineageSettings()
    return service_app(
        "lineage", "AWE lineage", "The provenance graph: upstream, downstream, impact, staleness.",
        settings.log_level, lambda: ProcessContext.create(settings), router)
