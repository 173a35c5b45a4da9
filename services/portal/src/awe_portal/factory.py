"""Process context: the settings, one connection pool for every call to the services, and
the sealer of session cookies. The portal has no database: it holds no data."""

from __future__ import annotations

import secrets
from dataclasses import dataclass

import structlog

from awecore.server import Kit, ServiceContext

from .clients import ServiceClient, SharedPool
from .config import PortalSettings
from .render import PreviewCache
from .session import Sealer

__all__ = ["Factory", "ProcessContext"]

log = structlog.get_logger("awe.portal")


@dataclass
class ProcessContext(ServiceContext):
    settings: PortalSettings
    pool: SharedPool
    sealer: Sealer
    #: preview PNGs on disk, by oid and checksum (served only after the user's own read of
    #: the object has succeeded)
    previews: PreviewCache

    @classmethod
    async def create(cls, settings: PortalSettings, kit: Kit) -> ProcessContext:
        secret = settings.secret_key.get_secret_value() if settings.secret_key else None
        if secret is None:
            log.warning("AWE_PORTAL_SECRET_KEY is not set: sessions last until a restart")
            secret = secrets.token_urlsafe(32)
        settings.cache_dir.mkdir(parents=True, exist_ok=True)
        sealer = Sealer(secret, int(settings.session_hours * 3600), settings.secure_cookies)
        return cls(settings, SharedPool(), sealer, PreviewCache(settings.cache_dir / "previews"))

    async def checks(self) -> dict[str, str]:
        """Ready when the catalog answers (sign-in asks it; every page is built from it)."""
        catalog = ServiceClient("the catalog", self.settings.catalog_url, None, self.pool, 5.0)
        try:
            await catalog.get("/livez")
        finally:
            await catalog.aclose()
        return {"catalog": "ok"}

    async def aclose(self) -> None:
        await self.pool.close()


class Factory:
    """Handlers use :func:`awe_portal.deps.portal`; this keeps the kit's shape."""

    def __init__(self, context: ProcessContext) -> None:
        self.context = context
