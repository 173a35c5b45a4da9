"""The federation application: ``uvicorn awe_federation.main:create_app --factory``."""

from __future__ import annotations

from fastapi import FastAPI

from awecore.web import service_app

from .config import FederationSettings
from .factory import ProcessContext
from .handlers import router

__all__ = ["create_app"]


def create_app(settings: FederationSettings | None = None) -> FastAPI:
    settings = settings or FederationSettings()
    return service_app(
        "federation", "AWE federation", "Replicates catalog metadata between sites.",
        settings.log_level, lambda: ProcessContext.create(settings), router)
