"""A DSL query's results as rows of a few chosen fields (``POST /query/values``): one
connection of the pool for the query and the check of its references (``storage.values``
says why a page wants this rather than records)."""

from __future__ import annotations

from collections.abc import Sequence

import asyncpg

from awecore.errors import InvalidQuery
from awecore.query import QuerySpec

from ..models import Caller
from ..storage.values import ValuesPage, select_values

__all__ = ["query_many", "query_values"]


async def query_values(pool: asyncpg.Pool, spec: QuerySpec, fields: Sequence[str],
                       caller: Caller, offset: int, limit: int) -> ValuesPage:
    """One page of the query's objects as rows of ``fields``, in the query's order."""
    async with pool.acquire() as conn:
        return await select_values(conn, spec, fields, caller, offset, limit)


async def query_many(pool: asyncpg.Pool,
                     queries: Sequence[tuple[QuerySpec, Sequence[str], int, int]],
                     caller: Caller) -> list[ValuesPage]:
    """Each (query, fields, offset, limit) as :func:`query_values`, on one connection, in
    the order given."""
    out = []
    async with pool.acquire() as conn:
        for i, (spec, fields, offset, limit) in enumerate(queries):
            try:
                out.append(await select_values(conn, spec, fields, caller, offset, limit))
            except InvalidQuery as exc:
                raise InvalidQuery(f"query {i}: {exc.detail}") from None
    return out
