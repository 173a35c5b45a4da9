"""What a page handler gets: :class:`Portal`, the signed-in user and the services' clients.

Every client carries the user's own token, so each page is built from exactly what the APIs
let this user see and change (the portal has no account of its own to fall back on).
``Depends(portal)`` sends a visitor who has not signed in to the sign-in page.
"""

from __future__ import annotations

from dataclasses import dataclass

from fastapi import Request

from awecore.client import AsyncCatalogClient, AsyncStorageClient

from .clients import ServiceClient
from .config import PortalSettings
from .session import NotSignedIn, get_session

__all__ = ["Portal", "portal"]


@dataclass
class Portal:
    """Per request: who is signed in, and the services as that user.

    ``catalog`` and ``storage`` are awecore's async clients; ``lineage`` and ``compute``
    are :class:`~awe_portal.clients.ServiceClient` (``await portal.lineage.get(path,
    **params)``, ``await portal.compute.post(path, json=...)``), raising the services'
    problems as ``AweError``s, which the app turns into an error page with their status.
    ``catalog_api`` and ``storage_api`` are the same for catalog and storage calls the
    typed clients do not have (``await portal.catalog_api.get("/classes")``).
    """

    user: str
    token: str
    csrf: str
    settings: PortalSettings
    catalog: AsyncCatalogClient
    storage: AsyncStorageClient
    catalog_api: ServiceClient
    storage_api: ServiceClient
    lineage: ServiceClient
    compute: ServiceClient


async def portal(request: Request) -> Portal:
    """FastAPI dependency: the signed-in user's :class:`Portal` (else NotSignedIn, which
    the app answers with a redirect to /signin)."""
    session = get_session(request)
    if not session.user or not session.token:
        raise NotSignedIn()
    context = request.app.state.context
    settings: PortalSettings = context.settings
    pool, token, timeout = context.pool, session.token, settings.api_timeout_seconds
    return Portal(
        user=session.user, token=token, csrf=session.csrf, settings=settings,
        catalog=AsyncCatalogClient(settings.catalog_url, token, timeout, transport=pool),
        storage=AsyncStorageClient(settings.storage_url, token, timeout, transport=pool),
        catalog_api=ServiceClient("the catalog", settings.catalog_url, token, pool, timeout),
        storage_api=ServiceClient("storage", settings.storage_url, token, pool, timeout),
        lineage=ServiceClient("lineage", settings.lineage_url, token, pool, timeout),
        compute=ServiceClient("compute", settings.compute_url, token, pool, timeout))
