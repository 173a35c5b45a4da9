"""HTTP routes of the storage service."""

from fastapi import APIRouter

from . import files, health

__all__ = ["router"]

router = APIRouter()
router.include_router(health.router)
router.include_router(files.router)
