"""HTTP routes of the federation service."""

from fastapi import APIRouter

from . import federation

__all__ = ["router"]

router = APIRouter()
router.include_router(federation.router)
