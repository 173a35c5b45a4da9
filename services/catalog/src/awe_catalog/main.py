"""The catalog application: ``uvicorn awe_catalog.main:create_app --factory``."""

from __future__ import annotations

from fastapi import FastAPI

from awecore.server import service_app

from .config import CatalogSettings, weak_admin_token
from .factory import Factory, ProcessContext
from .handlers import router

__all__ = ["create_app"]


def create_app(settings: CatalogSettings | None = None) -> FastAPI:
    settings = settings or CatalogSettings()
    # CatalogSettings refuses a weak admin token; settings made without validation
    # (model_construct) are checked here, before anything starts
    if settings.admin_token is not None and (
            why := weak_admin_token(settings.admin_token.get_secret_value())):
        raise ValueError(f"the catalog refuses to start: {why}")
    return service_app(
        settings, service="catalog", title="AWE catalog",
        summary="Every persistent object of AWE: registration, queries, validity look-ups, "
                "curation, users and the changelog.",
        router=router, make_context=lambda kit: ProcessContext.create(settings, kit),
        factory=Factory, max_body_bytes=settings.max_body_bytes)
