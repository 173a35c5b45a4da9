"""The portal application: ``uvicorn awe_portal.main:create_app --factory``."""

from __future__ import annotations

from fastapi import FastAPI

from awecore.server import service_app

from .config import PortalSettings
from .errors import install_page_errors
from .factory import Factory, ProcessContext
from .handlers import router
from .middleware import PageHeaders, SessionCookie
from .openapi import install_openapi

__all__ = ["create_app"]


def create_app(settings: PortalSettings | None = None) -> FastAPI:
    settings = settings or PortalSettings()
    app = service_app(
        settings, service="portal", title="AWE portal",
        summary="Web pages over the services' APIs: objects, QC, timeline, target maker.",
        router=router, make_context=lambda kit: ProcessContext.create(settings, kit),
        factory=Factory)
    install_page_errors(app)
    install_openapi(app)
    app.add_middleware(SessionCookie)
    app.add_middleware(PageHeaders)
    return app
