"""Every route of the portal: the static files, sign-in, and each page module's router.

A page module ``awe_portal/pages/<name>.py`` defines ``router = APIRouter()``; the modules
listed in :data:`PAGES` are included here (one that is not written yet is left out, so the
pages can be added one at a time).
"""

from __future__ import annotations

import importlib
import importlib.util

from fastapi import APIRouter

from .static import router as static_router

__all__ = ["PAGES", "router"]

PAGES = ("auth", "objects", "qc", "timeline", "make")

#: the pages are in the OpenAPI document (``awe_portal.openapi`` says how); the static files,
#: the pages' assets, are not
router = APIRouter()
router.include_router(static_router, include_in_schema=False)
for _name in PAGES:
    _module = f"awe_portal.pages.{_name}"
    if importlib.util.find_spec(_module) is not None:
        router.include_router(importlib.import_module(_module).router)
