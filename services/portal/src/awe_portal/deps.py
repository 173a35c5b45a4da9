"""What a page handler gets: :class:`Portal`, the signed-in user and the services' clients.

Every client carries the user's own token, so each page is built from exactly what the APIs
let this user see and change (the portal has no account of its own to fall back on).
``Depends(portal)`` sends a visitor who has not signed in to the sign-in page.
``Depends(viewer)`` is for the pages that only read the world's objects (issue 15): a
visitor who has not signed in gets clients with no token at all, which send no
Authorization header, so the services answer them as the anonymous reader (privilege 5
only; everything else "not found"): the one privilege rule stays in the services.
"""

from __future__ import annotations

from dataclasses import dataclass

from fastapi import Request

from awecore.client import AsyncCatalogClient, AsyncStorageClient

from .clients import ServiceClient
from .config import PortalSettings
from .session import NotSignedIn, get_session

__all__ = ["Portal", "portal", "viewer"]


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

    #: None for an anonymous visitor (``viewer`` pages only): the clients send no token
    user: str | None
    token: str | None
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
    return _portal(request, session.user, session.token, session.csrf)


async def viewer(request: Request) -> Portal:
    """FastAPI dependency of the read-only pages of the world's objects: the signed-in
    user's :class:`Portal`, or an anonymous one (no user, no token: the services see a
    request without an Authorization header, never a token of the portal's own)."""
    session = get_session(request)
    if session.user and session.token:
        return _portal(request, session.user, session.token, session.csrf)
    return _portal(request, None, None, session.csrf)


def _portal(request: Request, user: str | None, token: str | None, csrf: str) -> Portal:
    context = request.app.state.context
    settings: PortalSettings = context.settings
    pool, timeout = context.pool, settings.api_timeout_seconds
    return Portal(
        user=user, token=token, csrf=csrf, settings=settings,
        catalog=AsyncCatalogClient(settings.catalog_url, token, timeout, transport=pool),
        storage=AsyncStorageClient(settings.storage_url, token, timeout, transport=pool),
        catalog_api=ServiceClient("the catalog", settings.catalog_url, token, pool, timeout),
        storage_api=ServiceClient("storage", settings.storage_url, token, pool, timeout),
        lineage=ServiceClient("lineage", settings.lineage_url, token, pool, timeout),
        compute=ServiceClient("compute", settings.compute_url, token, pool, timeout))
