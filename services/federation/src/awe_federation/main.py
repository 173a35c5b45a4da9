"""The federation application: ``uvicorn awe_federation.main:create_app --factory``."""

from __future__ import annotations

from fastapi import FastAPI

from awecore.server import service_app

from .config import FederationSettings
from .factory import Factory, ProcessContext
from .handlers import router

__all__ = ["create_app"]


def create_app(settings: FederationSettings | None = None) -> FastAPI:
    settings = settings or FederationSettings()
    return service_app(
        settings, service="federation", title="AWE federation",
        summary="Replicates catalog metadata between sites.",
        router=router, make_context=lambda kit: ProcessContext.create(settings, kit),
        factory=Factory)
