"""HTTP routes of the lineage service."""

from fastapi import APIRouter

from . import health, lineage

__all__ = ["router"]

router = APIRouter()
router.include_router(health.router)
router.include_router(lineage.router)
