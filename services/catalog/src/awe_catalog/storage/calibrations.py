"""The best calibrations for many (class, chip, filter, time) at once, in one statement.

A planner asks for the calibrations of thousands of frames at a time; one statement answers
them all: the requests travel as arrays, ``unnest`` makes them rows, and for each row a
``LATERAL`` sub-query takes the newest valid calibration of the class for the chip (and
filter) whose window covers the time. The sub-query is one range scan of the index
``objects_best_calibration`` (0008): class, chip, start of validity, with the end in the key
so that windows ending before the time are skipped in the index, not fetched from the table.

Best calibrations are governed (0012): among those the viewer may see, only a *governed* one
(made by the site's pipeline, sent by a peer site, or approved by a calibration scientist:
``awecore.visibility.may_approve``) or the viewer's own is a candidate. So a user's
calibration, even shared with the whole site, is the best only in that user's own context
until it is approved.

A look-up may ask for a span of time instead of a moment (``Wanted.until``: a planner asks
once for the frames of a night rather than once per frame). The rule is the same, over the
span: the candidate is the newest eligible calibration whose window meets the span; when its
window covers the whole span, it is the best at every moment of it (any newer one would meet
the span too), and when none meets the span there is none at any moment. Otherwise the best
changes within the span: the request is reported as varying and asked again per moment. For a
moment (``until`` absent) this is the look-up above, word for word.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Sequence
from typing import Any, NamedTuple

import asyncpg

from awecore.model import ObjectOut
from awecore.visibility import Columns, Viewer, binder, owner_sql, visible_sql

from ..models import Caller
from .sql import OBJECT_COLUMNS

__all__ = ["CalibrationStore", "Wanted"]


class Wanted(NamedTuple):
    """One row of a look-up: request ``i`` for calibrations of ``type`` for chip ``chip``
    and, if given, filter ``filter`` (each a name, or an oid when ``*_oid``), covering
    ``time``. (A named tuple: a planner's request makes 10^4 of them.)"""

    i: int
    type: str
    chip: str
    filter: str | None
    time: dt.datetime
    chip_oid: bool = False
    filter_oid: bool = False
    #: the end of the span [time, until] to answer for at once (None: the moment ``time``)
    until: dt.datetime | None = None


class CalibrationStore:
    def __init__(self, conn: asyncpg.Connection) -> None:
        self.conn = conn

    async def best(self, wanted: Sequence[Wanted], chip_types: Sequence[str],
                   filter_types: Sequence[str], caller: Caller) -> dict[int, ObjectOut]:
        """For each request number, the newest valid calibration over its rows (a chip
        name may stand for several chips, of several cameras; a class for its subclasses),
        in one statement: names are resolved to the visible chips' and filters' oids in it."""
        return (await self.best_over(wanted, chip_types, filter_types, caller))[0]

    async def best_over(self, wanted: Sequence[Wanted], chip_types: Sequence[str],
                        filter_types: Sequence[str], caller: Caller
                        ) -> tuple[dict[int, ObjectOut], set[int]]:
        """:meth:`best`, where a row may ask for a span (``until``): the best for each
        request number that has the same best over its whole span (or at its moment), and
        the request numbers whose best changes within their span (none for them)."""
        if not wanted:
            return {}, set()
        params: list[Any] = []

        def param(value: Any) -> str:
            params.append(value)
            return f"${10 + len(params)}"

        viewer, bind = Viewer.of(caller), binder(param)
        vis, chip_vis, filter_vis = (visible_sql(viewer, bind, Columns.at(a))
                                     for a in ("o", "c", "f"))
        eligible = "o.governed" if viewer.name is None else \
            f"(o.governed OR {owner_sql(viewer, bind, Columns.at('o'))})"
        rows = await self.conn.fetch(
            # the requests as rows; each chip (and filter) named resolved to the oids of the
            # visible ones of that name (an oid stands for itself); then one index probe each
            f"WITH r AS (SELECT * FROM unnest($1::int[], $2::text[], $3::text[], $4::bool[], "
            f"$5::text[], $6::bool[], $7::timestamptz[], $8::timestamptz[]) "
            f"AS r(i, rtype, rchip, rchip_oid, rfilter, rfilter_oid, rtime, runtil)), "
            # each name once (a planner asks thousands of look-ups for a few chips)
            f"cn AS (SELECT n.rchip, c.oid::text AS chip FROM (SELECT DISTINCT rchip FROM r "
            f"WHERE NOT rchip_oid) n JOIN objects c ON c.type = ANY($9::text[]) "
            f"AND (c.attributes ->> 'name') = n.rchip AND {chip_vis}), "
            f"fn AS (SELECT n.rfilter, f.oid::text AS filter FROM (SELECT DISTINCT rfilter "
            f"FROM r WHERE rfilter IS NOT NULL AND NOT rfilter_oid) n JOIN objects f "
            f"ON f.type = ANY($10::text[]) AND (f.attributes ->> 'name') = n.rfilter "
            f"AND {filter_vis}), "
            f"rc AS (SELECT r.*, r.rchip AS chip FROM r WHERE r.rchip_oid UNION ALL "
            f"SELECT r.*, cn.chip FROM r JOIN cn ON cn.rchip = r.rchip WHERE NOT r.rchip_oid), "
            f"rf AS (SELECT rc.*, NULL::text AS filter FROM rc WHERE rc.rfilter IS NULL "
            f"UNION ALL SELECT rc.*, rc.rfilter FROM rc WHERE rc.rfilter_oid UNION ALL "
            f"SELECT rc.*, fn.filter FROM rc JOIN fn ON fn.rfilter = rc.rfilter "
            f"WHERE NOT rc.rfilter_oid) "
            # the newest whose window meets [rtime, rend] (for a moment: covers it), and
            # whether its window covers the whole span (for a moment: always)
            f"SELECT rf.i, o.timestamp_start <= rf.rtime AND o.timestamp_end >= rf.rend "
            f"AS whole, {OBJECT_COLUMNS} FROM (SELECT rf.*, coalesce(rf.runtil, rf.rtime) "
            f"AS rend FROM rf) rf CROSS JOIN LATERAL ("
            f"SELECT o.* FROM objects o WHERE o.type = rf.rtype AND o.is_valid = 1 "
            f"AND (o.refs ->> 'chip') = rf.chip "
            f"AND o.timestamp_start <= rf.rend AND o.timestamp_end >= rf.rtime "
            f"AND (rf.filter IS NULL OR (o.refs ->> 'filter') = rf.filter) AND {vis} "
            f"AND {eligible} "
            f"ORDER BY o.creation_date DESC, o.oid DESC LIMIT 1) o",
            [w.i for w in wanted], [w.type for w in wanted], [w.chip for w in wanted],
            [w.chip_oid for w in wanted], [w.filter for w in wanted],
            [w.filter_oid for w in wanted], [w.time for w in wanted],
            [w.until for w in wanted], list(chip_types),
            list(filter_types), *params)
        best: dict[int, ObjectOut] = {}
        varies: set[int] = set()
        for row in rows:
            if not row["whole"]:  # the best changes within the span: asked per moment
                varies.add(row["i"])
                continue
            found = ObjectOut.model_validate({k: v for k, v in row.items()
                                              if k not in ("i", "whole")})
            have = best.get(row["i"])
            if have is None or (found.creation_date, uuid.UUID(found.oid)) > (
                    have.creation_date, uuid.UUID(have.oid)):
                best[row["i"]] = found
        for i in varies:
            best.pop(i, None)
        return best, varies
