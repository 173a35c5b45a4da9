"""The source table: loading a SourceList's sources once, DSL queries and cone searches."""

from __future__ import annotations

import asyncpg

from awecore.errors import Conflict, Forbidden, InvalidRequest
from awecore.model import SourceList, registry
from awecore.query import QuerySpec
from awecore.sources import SourceColumns, SourceConeRequest, SourcePage, SourceQueryPage
from awecore.visibility import Viewer, owns

from ..models import Caller
from ..storage.sources import SourceStore
from .objects import ObjectService

__all__ = ["SourceService"]


class SourceService:
    def __init__(self, pool: asyncpg.Pool) -> None:
        self.pool = pool

    async def query(self, spec: QuerySpec, caller: Caller, offset: int,
                    limit: int) -> SourceQueryPage:
        async with self.pool.acquire() as conn:
            return await SourceStore(conn).query(spec, caller, offset, limit)

    async def count(self, spec: QuerySpec, caller: Caller) -> int:
        async with self.pool.acquire() as conn:
            return await SourceStore(conn).count(spec, caller)

    async def cone(self, body: SourceConeRequest, caller: Caller) -> SourcePage:
        async with self.pool.acquire() as conn:
            rows = await SourceStore(conn).cone(body.ra, body.dec, body.radius, caller,
                                                body.limit, body.mag_max, body.query)
        return SourcePage(sources=[dict(r) for r in rows])

    async def load(self, oid: str, columns: SourceColumns, caller: Caller,
                   objects: ObjectService) -> int:
        """Load the sources of SourceList ``oid``: by its creator (or an admin), once."""
        sourcelist = await objects.get(oid, caller)
        if sourcelist.type not in registry.subclass_names(SourceList):
            raise InvalidRequest(f"{oid} is a {sourcelist.type}, not a SourceList")
        if not (caller.sees_all or owns(Viewer.of(caller), sourcelist)):
            raise Forbidden(f"only {sourcelist.owner} may load the sources of {oid}")
        async with self.pool.acquire() as conn, conn.transaction():
            store = SourceStore(conn)
            if await store.loaded(sourcelist.oid):
                raise Conflict(f"the sources of {oid} are loaded already")
            return await store.load(sourcelist.oid, columns.as_columns())
