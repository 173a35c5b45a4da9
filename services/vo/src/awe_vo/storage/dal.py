"""The SQL of the data-access services (cone search, SIA, DataLink, SODA) over the
catalog's tables. Every statement's values are bind parameters ($n); what is formatted in
is column lists and conditions built here or by ``awecore.visibility`` and the table
definitions, never a caller's text. Every statement applies the privilege rule."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from typing import Any

import asyncpg

from awecore.server.cone import nearest, seen_page
from awecore.visibility import Columns, Viewer, visibility_clause

__all__ = ["cone_rows", "derived_rows", "input_rows", "obscore_rows", "target_rows"]

#: classes that describe the instrument, not data: never listed as an input
DESCRIPTIVE = ("Instrument", "Chip", "Filter")


async def cone_rows(conn: asyncpg.Connection, viewer: Viewer, columns: str, ra: float,
                    dec: float, radius: float, limit: int) -> list[asyncpg.Record]:
    """The ``limit`` sources ``s`` (with ``distance`` in degrees) nearest to (ra, dec) within
    ``radius`` whose source list the viewer may see, nearest first (then by source list and
    number): the rounds of growing radii of ``awecore.server.cone``, as the catalog's cone
    search runs them. The privilege rule is tested once per distinct source list of a
    round's rows, not once per row."""
    visible, extra = visibility_clause(viewer, Columns.at("l"), 6)
    return await nearest(conn, ra, dec, radius, limit,
                         lambda near: seen_page(near, columns, visible), params=extra)


async def obscore_rows(conn: asyncpg.Connection, columns: Sequence[str], relation: str,
                       where: str, params: list[Any],
                       limit: str | None) -> AsyncIterator[asyncpg.Record]:
    """Rows of ``relation`` (the ObsCore sub-select, privileges applied in it) passing
    ``where``, streamed (the caller stops when it has enough). With a ``limit`` they come
    in no particular order (ordering would compute every row first); without, oldest
    first."""
    sql = f"SELECT {', '.join('o.' + c for c in columns)} FROM ({relation}) AS o WHERE {where}"
    sql += " ORDER BY o.t_min, o.obs_id" if limit is None else f" LIMIT {limit}"
    async for r in conn.cursor(sql, *params, prefetch=200):
        yield r


async def target_rows(conn: asyncpg.Connection, viewer: Viewer,
                      oids: list[str]) -> list[asyncpg.Record]:
    """The objects among ``oids`` the viewer may see, with what links need of them."""
    visible, extra = visibility_clause(viewer, Columns.at("o"), 2)
    return list(await conn.fetch(
        "SELECT o.oid::text AS oid, o.type, o.site, o.filename, o.file_size, "
        "o.attributes ->> 'weight_filename' AS weight "
        f"FROM objects o WHERE o.oid = ANY($1::uuid[]) AND {visible}", oids, *extra))


async def input_rows(conn: asyncpg.Connection, viewer: Viewer,
                     oids: list[str]) -> list[asyncpg.Record]:
    """What each of ``oids`` references (its inputs) that the viewer may see, by
    reference name; the instrument's description (instrument, chip, filter) left out."""
    visible, extra = visibility_clause(viewer, Columns.at("d"), 3)
    return list(await conn.fetch(
        "SELECT r.src::text AS oid, r.name, d.oid::text AS other, d.type, d.site "
        "FROM object_refs r JOIN objects d ON d.oid = r.dst "
        f"WHERE r.src = ANY($1::uuid[]) AND d.type <> ALL($2::text[]) AND {visible} "
        "ORDER BY r.src, r.name, r.pos", oids, list(DESCRIPTIVE), *extra))


async def derived_rows(conn: asyncpg.Connection, viewer: Viewer, oids: list[str],
                       most: int) -> list[asyncpg.Record]:
    """What was made from each of ``oids`` (objects referencing it) that the viewer may
    see, the oldest ``most`` per object (a bias frame feeds thousands)."""
    visible, extra = visibility_clause(viewer, Columns.at("d"), 3)
    return list(await conn.fetch(
        "SELECT oid, name, other, type, site FROM ("
        "  SELECT r.dst::text AS oid, r.name, d.oid::text AS other, d.type, d.site, "
        "  row_number() OVER (PARTITION BY r.dst ORDER BY d.creation_date, d.oid) AS n "
        "  FROM object_refs r JOIN objects d ON d.oid = r.src "
        f"  WHERE r.dst = ANY($1::uuid[]) AND {visible}) x "
        "WHERE n <= $2 ORDER BY oid, n", oids, most, *extra))


#: where an image product's footprint is: its raw frame's (through the reduced frame a
#: regridded frame refers to), as ``awe_vo.tables``' ObsCore takes it
_FOOTPRINT = (
    "SELECT o.oid::text AS oid, coalesce(o.attributes ->> 'footprint', "
    "r.attributes ->> 'footprint') AS footprint "
    "FROM objects o "
    "LEFT JOIN objects rd ON rd.oid = (o.refs ->> 'reduced')::uuid "
    "LEFT JOIN objects r ON r.oid = coalesce(o.refs ->> 'raw', rd.refs ->> 'raw')::uuid "
    "WHERE o.type = ANY($1::text[]) AND o.filename IS NOT NULL")


async def last_change(conn: asyncpg.Connection) -> int:
    """The catalog's newest changelog sequence number (0 if none)."""
    return int(await conn.fetchval("SELECT coalesce(max(seq), 0) FROM changes"))


async def created_since(conn: asyncpg.Connection, seq: int,
                        most: int) -> list[asyncpg.Record]:
    """Objects created after changelog entry ``seq`` (oldest first, at most ``most``)."""
    return list(await conn.fetch(
        "SELECT seq, oid::text AS oid FROM changes WHERE seq > $1 AND kind = 'created' "
        "ORDER BY seq LIMIT $2", seq, most))


async def footprint_rows(conn: asyncpg.Connection, types: list[str],
                         oids: list[str] | None = None) -> list[asyncpg.Record]:
    """The footprints of image products of ``types`` (all, or those among ``oids``),
    whoever may see them: they only narrow a search that applies the privilege rule."""
    if oids is None:
        return list(await conn.fetch(_FOOTPRINT, types))
    return list(await conn.fetch(_FOOTPRINT + " AND o.oid = ANY($2::uuid[])", types, oids))
