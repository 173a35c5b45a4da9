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
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Sequence
from typing import Any, NamedTuple

import asyncpg

from awecore.model import ObjectOut
from awecore.visibility import Columns, Viewer, binder, visible_sql

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


class CalibrationStore:
    def __init__(self, conn: asyncpg.Connection) -> None:
        self.conn = conn

    async def best(self, wanted: Sequence[Wanted], chip_types: Sequence[str],
                   filter_types: Sequence[str], caller: Caller) -> dict[int, ObjectOut]:
        """For each request number, the newest valid calibration over its rows (a chip
        name may stand for several chips, of several cameras; a class for its subclasses),
        in one statement: names are resolved to the visible chips' and filters' oids in it."""
        if not wanted:
            return {}
        params: list[Any] = []

        def param(value: Any) -> str:
            params.append(value)
            return f"${9 + len(params)}"

        viewer, bind = Viewer.of(caller), binder(param)
        vis, chip_vis, filter_vis = (visible_sql(viewer, bind, Columns.at(a))
                                     for a in ("o", "c", "f"))
        eligible = "o.governed" if viewer.name is None else \
            f"(o.governed OR o.creator = {param(viewer.name)})"
        rows = await self.conn.fetch(
            # the requests as rows; each chip (and filter) named resolved to the oids of the
            # visible ones of that name (an oid stands for itself); then one index probe each
            f"WITH r AS (SELECT * FROM unnest($1::int[], $2::text[], $3::text[], $4::bool[], "
            f"$5::text[], $6::bool[], $7::timestamptz[]) "
            f"AS r(i, rtype, rchip, rchip_oid, rfilter, rfilter_oid, rtime)), "
            # each name once (a planner asks thousands of look-ups for a few chips)
            f"cn AS (SELECT n.rchip, c.oid::text AS chip FROM (SELECT DISTINCT rchip FROM r "
            f"WHERE NOT rchip_oid) n JOIN objects c ON c.type = ANY($8::text[]) "
            f"AND (c.attributes ->> 'name') = n.rchip AND {chip_vis}), "
            f"fn AS (SELECT n.rfilter, f.oid::text AS filter FROM (SELECT DISTINCT rfilter "
            f"FROM r WHERE rfilter IS NOT NULL AND NOT rfilter_oid) n JOIN objects f "
            f"ON f.type = ANY($9::text[]) AND (f.attributes ->> 'name') = n.rfilter "
            f"AND {filter_vis}), "
            f"rc AS (SELECT r.*, r.rchip AS chip FROM r WHERE r.rchip_oid UNION ALL "
            f"SELECT r.*, cn.chip FROM r JOIN cn ON cn.rchip = r.rchip WHERE NOT r.rchip_oid), "
            f"rf AS (SELECT rc.*, NULL::text AS filter FROM rc WHERE rc.rfilter IS NULL "
            f"UNION ALL SELECT rc.*, rc.rfilter FROM rc WHERE rc.rfilter_oid UNION ALL "
            f"SELECT rc.*, fn.filter FROM rc JOIN fn ON fn.rfilter = rc.rfilter "
            f"WHERE NOT rc.rfilter_oid) "
            f"SELECT rf.i, {OBJECT_COLUMNS} FROM rf CROSS JOIN LATERAL ("
            f"SELECT o.* FROM objects o WHERE o.type = rf.rtype AND o.is_valid = 1 "
            f"AND (o.refs ->> 'chip') = rf.chip "
            f"AND o.timestamp_start <= rf.rtime AND o.timestamp_end >= rf.rtime "
            f"AND (rf.filter IS NULL OR (o.refs ->> 'filter') = rf.filter) AND {vis} "
            f"AND {eligible} "
            f"ORDER BY o.creation_date DESC, o.oid DESC LIMIT 1) o",
            [w.i for w in wanted], [w.type for w in wanted], [w.chip for w in wanted],
            [w.chip_oid for w in wanted], [w.filter for w in wanted],
            [w.filter_oid for w in wanted], [w.time for w in wanted], list(chip_types),
            list(filter_types), *params)
        best: dict[int, ObjectOut] = {}
        for row in rows:
            found = ObjectOut.model_validate({k: v for k, v in row.items() if k != "i"})
            have = best.get(row["i"])
            if have is None or (found.creation_date, uuid.UUID(found.oid)) > (
                    have.creation_date, uuid.UUID(have.oid)):
                best[row["i"]] = found
        return best
