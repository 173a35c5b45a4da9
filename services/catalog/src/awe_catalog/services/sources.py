"""The source table: loading a SourceList's sources once, DSL queries and cone searches."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import asyncpg
import numpy as np

from awecore.errors import Conflict, Forbidden, InvalidRequest
from awecore.model import SourceList, registry
from awecore.query import QuerySpec
from awecore.sources import SourceConeRequest, SourceQueryPage
from awecore.visibility import Viewer, owns

from ..models import Caller
from ..storage.sources import SourceStore
from .objects import ObjectService

__all__ = ["SourceService"]

#: the class of the advisory locks that make loads of one source list one after the other
#: (the two-key form: the key is the list's hashtext)
LOAD_LOCK = 7_031_017


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

    async def cone(self, body: SourceConeRequest, caller: Caller) -> list[dict[str, Any]]:
        """The rows as the database gives them (a SourcePage's ``sources``): the handler
        writes them out without a model per row (10^3 rows a page, 10^5 at most)."""
        async with self.pool.acquire() as conn:
            rows = await SourceStore(conn).cone(body.ra, body.dec, body.radius, caller,
                                                body.limit, body.mag_max, body.query)
        return [dict(r) for r in rows]

    async def load(self, oid: str, columns: Mapping[str, np.ndarray], caller: Caller,
                   objects: ObjectService) -> int:
        """Load checked columns (``awecore.source_columns.checked``) as the sources of
        SourceList ``oid``: by its creator (or an admin), once.

        Two loads of one list at once are one after the other: the second waits on a lock
        of the list (for the first's transaction), then finds its rows and is a Conflict;
        if the first failed, the second loads."""
        sourcelist = await objects.get(oid, caller)
        if sourcelist.type not in registry.subclass_names(SourceList):
            raise InvalidRequest(f"{oid} is a {sourcelist.type}, not a SourceList")
        if not (caller.sees_all or owns(Viewer.of(caller), sourcelist)):
            raise Forbidden(f"only {sourcelist.owner} may load the sources of {oid}")
        try:
            async with self.pool.acquire() as conn, conn.transaction():
                await conn.execute("SELECT pg_advisory_xact_lock($1, hashtext($2))",
                                   LOAD_LOCK, sourcelist.oid)
                store = SourceStore(conn)
                if await store.loaded(sourcelist.oid):
                    raise Conflict(f"the sources of {oid} are loaded already")
                return await store.load(sourcelist.oid, columns)
        except asyncpg.UniqueViolationError:
            # rows the lock did not order: a 409 only if the list's rows are there (checked
            # after the rollback, on a connection of its own); otherwise the error stands
            async with self.pool.acquire() as conn:
                if await SourceStore(conn).loaded(sourcelist.oid):
                    raise Conflict(f"the sources of {oid} are loaded already") from None
            raise
