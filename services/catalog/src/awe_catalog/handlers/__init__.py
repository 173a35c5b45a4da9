"""HTTP routes: a few lines each, delegating to services."""

from fastapi import APIRouter

from . import changes, objects, query, replication, sources, users

__all__ = ["router"]

router = APIRouter()
for _module in (objects, query, changes, replication, sources, users):
    router.include_router(_module.router)
