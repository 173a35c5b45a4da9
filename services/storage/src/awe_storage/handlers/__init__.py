"""HTTP routes of the storage service."""

from fastapi import APIRouter

from . import files

__all__ = ["router"]

router = APIRouter()
router.include_router(files.router)
