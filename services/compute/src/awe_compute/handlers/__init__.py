"""HTTP routes of the compute service."""

from fastapi import APIRouter

from . import jobs

__all__ = ["router"]

router = APIRouter()
router.include_router(jobs.router)
