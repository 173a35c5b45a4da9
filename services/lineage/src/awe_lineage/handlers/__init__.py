"""HTTP routes of the lineage service."""

from fastapi import APIRouter

from . import lineage

__all__ = ["router"]

router = APIRouter()
router.include_router(lineage.router)
