"""HTTP routes of the VO service: TAP (with VOSI) here; SCS, SIA, DataLink and SODA each in
their own module, included below."""

from fastapi import APIRouter

from . import datalink, scs, sia, soda, tap

__all__ = ["router"]

router = APIRouter()
router.include_router(tap.router)
router.include_router(scs.router)
router.include_router(sia.router)
router.include_router(datalink.router)
router.include_router(soda.router)
