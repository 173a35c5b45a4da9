"""HTTP routes: a few lines each, delegating to services."""

from fastapi import APIRouter

from . import calibrations, changes, classes, objects, query, replication, sources, users, values

__all__ = ["router"]

router = APIRouter()
for _module in (objects, query, values, calibrations, changes, replication, sources, users,
                classes):
    router.include_router(_module.router)
