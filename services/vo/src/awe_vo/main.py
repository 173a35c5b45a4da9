"""The VO application: ``uvicorn awe_vo.main:create_app --factory``."""

from __future__ import annotations

from fastapi import FastAPI

from awecore.server import service_app

from .config import VOSettings
from .factory import Factory, ProcessContext
from .handlers import router
from .openapi import install_vo_openapi
from .votable import install_vo_errors

__all__ = ["create_app"]


def create_app(settings: VOSettings | None = None) -> FastAPI:
    settings = settings or VOSettings()
    app = service_app(
        settings, service="vo", title="AWE Virtual Observatory",
        summary="TAP/ADQL, cone search, SIA v2, DataLink and SODA over the catalog.",
        router=router, make_context=lambda kit: ProcessContext.create(settings, kit),
        factory=Factory)
    install_vo_errors(app)
    install_vo_openapi(app)
    return app
