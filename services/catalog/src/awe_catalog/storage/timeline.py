"""The calibration timeline as one statement: the calibrations of some classes for a chip
(and filter) whose validity overlaps a span, each with its latest curation.

Hand-written rather than compiled from a query AST: the class may be an abstract base that
declares no chip (``CalFile``), and the latest curation comes from the history table.
"""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

import asyncpg

from awecore.model import Chip, DBObject, Filter, registry
from awecore.records import TimelineEntry
from awecore.visibility import Columns, Viewer, binder, visible_sql

from ..models import Caller
from .history import row_to_change

__all__ = ["TimelineStore"]


class _Params:
    def __init__(self) -> None:
        self.values: list[Any] = []

    def __call__(self, value: Any) -> str:
        self.values.append(value)
        return f"${len(self.values)}"


def _oid_or_none(value: str) -> uuid.UUID | None:
    try:
        return uuid.UUID(value)
    except ValueError:
        return None


class TimelineStore:
    def __init__(self, conn: asyncpg.Connection) -> None:
        self.conn = conn

    async def page(self, caller: Caller, types: list[str], chip: str, filter_name: str | None,
                   start: dt.datetime | None, end: dt.datetime | None, offset: int,
                   limit: int) -> list[TimelineEntry]:
        """Ordered by window start (then oid, so pages are stable); ``chip`` and
        ``filter_name`` are names or oids of objects the caller may see."""
        p = _Params()
        viewer = Viewer.of(caller)
        bind = binder(p)

        def ref(name: str, target: type[DBObject], value: str) -> str:
            """Row ``o`` references, as ``name``, a visible ``target`` by that name or oid
            (the type condition lets the (type, name) index find the chip first)."""
            oid = _oid_or_none(value)
            match = (f"x.oid = {p(oid)}" if oid is not None
                     else f"x.attributes ->> 'name' = {p(value)}")
            return (f"o.oid IN (SELECT r.src FROM object_refs r JOIN objects x "
                    f"ON x.oid = r.dst WHERE r.name = '{name}' AND {match} AND "
                    f"x.type = ANY({p(registry.subclass_names(target))}::text[]) AND "
                    f"{visible_sql(viewer, bind, Columns.at('x'))})")

        where = [f"o.type = ANY({p(types)}::text[])",
                 visible_sql(viewer, bind, Columns.at("o")), ref("chip", Chip, chip)]
        if filter_name is not None:
            where.append(ref("filter", Filter, filter_name))
        if start is not None:
            where.append(f"o.timestamp_end >= {p(start)}")
        if end is not None:
            where.append(f"o.timestamp_start <= {p(end)}")
        name = ("(SELECT n.attributes ->> 'name' FROM object_refs r JOIN objects n "
                "ON n.oid = r.dst WHERE r.src = o.oid AND r.name = '{}' LIMIT 1)")
        sql = (
            "SELECT o.oid::text AS oid, o.type, o.timestamp_start, o.timestamp_end, "
            "o.is_valid, o.quality_flags, o.creator, o.creation_date, o.site AS obj_site, "
            f"{name.format('chip')} AS chip, {name.format('filter')} AS filter, "
            "h.at, h.site, h.by_user, h.reason, h.changes "
            "FROM objects o LEFT JOIN LATERAL (SELECT * FROM curation_history h "
            "  WHERE h.oid = o.oid ORDER BY h.at DESC, h.site DESC LIMIT 1) h ON TRUE "
            f"WHERE {' AND '.join(w for w in where if w != 'TRUE')} "
            "ORDER BY o.timestamp_start NULLS LAST, o.oid "
            f"LIMIT {p(limit)} OFFSET {p(offset)}")
        rows = await self.conn.fetch(sql, *p.values)
        return [TimelineEntry(
            oid=r["oid"], type=r["type"], timestamp_start=r["timestamp_start"],
            timestamp_end=r["timestamp_end"], is_valid=r["is_valid"],
            quality_flags=r["quality_flags"], creator=r["creator"],
            creation_date=r["creation_date"], site=r["obj_site"], chip=r["chip"],
            filter=r["filter"],
            last_curation=row_to_change(r) if r["at"] is not None else None,
        ) for r in rows]
