"""SIA v2 queries over ObsCore: the standard's parameters as SQL conditions.

Each parameter may be given several times: values of one parameter are OR-ed, different
parameters AND-ed (SIA 2.0, section 2.1). Every value is bound (``$n``), never written into
the statement. POS is answered in two steps: in SQL, the image's bounding circle (s_ra,
s_dec, s_fov/2) must meet the region's bounding circle (cheap, no spherical extension);
then each candidate's footprint (s_region) is tested exactly against the region here. So
an image whose corner only comes near a circle is not returned.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from xml.sax.saxutils import escape

import asyncpg

from awecore.visibility import Viewer

from ..storage.dal import obscore_rows
from ..tables import OBSCORE, SourceSpec
from ..votable import VOError, VOParams, rows_bytes
from .footprints import INDEX
from .regions import Region, footprint_polygon, parse_interval, parse_pos

__all__ = ["SIA2_STANDARD", "SiaQuery", "Statement", "capabilities_xml", "parse_sia", "run_sia"]

SIA2_STANDARD = "ivo://ivoa.net/std/SIA#query-2.0"

_VOTABLE_FORMATS = ("votable", "application/x-votable+xml", "text/xml")
#: interval parameters: name -> ObsCore column(s) (low, high) they overlap
_INTERVALS: dict[str, tuple[str, str]] = {
    "BAND": ("em_min", "em_max"),
    "TIME": ("t_min", "t_max"),
    "FOV": ("s_fov", "s_fov"),
    "SPATRES": ("s_resolution", "s_resolution"),
    "EXPTIME": ("t_exptime", "t_exptime"),
    "TIMERES": ("t_resolution", "t_resolution"),
    "SPECRP": ("em_res_power", "em_res_power"),
}
#: equality parameters: name -> ObsCore column
_EQUALS: dict[str, str] = {
    "ID": "obs_publisher_did",
    "COLLECTION": "obs_collection",
    "FACILITY": "facility_name",
    "INSTRUMENT": "instrument_name",
    "DPTYPE": "dataproduct_type",
    "TARGET": "target_name",
    "FORMAT": "access_format",
}


class Statement:
    """Parameters of a statement being built: ``add(value)`` gives its placeholder."""

    def __init__(self, first: int = 1) -> None:
        self.params: list[Any] = []
        self.first = first

    def add(self, value: Any) -> str:
        self.params.append(value)
        return f"${self.first + len(self.params) - 1}"

    def bind(self, key: str, value: Any) -> str:
        """``awecore.visibility.Bind``-shaped (each call binds a new parameter)."""
        del key
        return self.add(value)


@dataclass
class SiaQuery:
    """A parsed SIA v2 query: conditions (each takes a Statement and gives SQL over the
    ObsCore row ``o``), the regions (any one must overlap), and MAXREC."""

    conditions: list[Callable[[Statement], str]] = field(default_factory=list)
    regions: list[Region] = field(default_factory=list)
    maxrec: int = 1000

    def where(self, st: Statement) -> str:
        parts = [c(st) for c in self.conditions]
        if self.regions:
            parts.append("(" + " OR ".join(_near(r, st) for r in self.regions) + ")")
        return " AND ".join(parts) if parts else "TRUE"

    def keep(self, s_region: Any) -> bool:
        """The exact test of a candidate row (its s_region) against the regions."""
        if not self.regions:
            return True
        corners = footprint_polygon(
            " ".join(map(str, s_region)) if isinstance(s_region, list | tuple) else s_region)
        if corners is None:
            return True  # no footprint: the bounding-circle test already held
        return any(r.overlaps(corners) for r in self.regions)


def _near(region: Region, st: Statement) -> str:
    ra, dec, radius = region.bounding_circle()
    a, d, r = st.add(ra), st.add(dec), st.add(radius)
    return (f"(o.s_ra IS NOT NULL AND degrees(2 * asin(sqrt(least(1.0, "
            f"sin(radians(o.s_dec - {d}::float8) / 2) ^ 2 + cos(radians(o.s_dec)) * "
            f"cos(radians({d}::float8)) * sin(radians(o.s_ra - {a}::float8) / 2) ^ 2)))) "
            f"<= {r}::float8 + coalesce(o.s_fov, 0) / 2)")


def _interval(name: str, lo: float, hi: float) -> Callable[[Statement], str]:
    low_col, high_col = _INTERVALS[name]

    def cond(st: Statement) -> str:
        parts = []
        if math.isfinite(hi):
            parts.append(f"o.{low_col} <= {st.add(hi)}::float8")
        if math.isfinite(lo):
            parts.append(f"o.{high_col} >= {st.add(lo)}::float8")
        if not parts:
            return f"o.{low_col} IS NOT NULL"
        return "(" + " AND ".join(parts) + ")"
    return cond


def _one_of(column: str, values: list[str]) -> Callable[[Statement], str]:
    return lambda st: f"o.{column} = ANY({st.add(values)}::text[])"


def _any_of(conds: list[Callable[[Statement], str]]) -> Callable[[Statement], str]:
    return lambda st: "(" + " OR ".join(c(st) for c in conds) + ")"


def parse_sia(params: VOParams, default_maxrec: int, hard_maxrec: int) -> SiaQuery:
    """The query a request's parameters ask for; 400 (``VOError``) for a malformed one."""
    q = SiaQuery()
    fmt = params.get("RESPONSEFORMAT")
    if fmt and fmt.strip().lower().split(";")[0] not in _VOTABLE_FORMATS:
        raise VOError(f"RESPONSEFORMAT {fmt!r} is not served: ask for votable")
    q.regions = [parse_pos(v) for v in params.getall("POS")]
    for name in _INTERVALS:
        values = params.getall(name)
        if values:
            q.conditions.append(_any_of([_interval(name, *parse_interval(v, name))
                                         for v in values]))
    for name, column in _EQUALS.items():
        values = [v.strip() for v in params.getall(name)]
        if values:
            q.conditions.append(_one_of(column, values))
    calibs = params.getall("CALIB")
    if calibs:
        try:
            levels = [int(v) for v in calibs]
        except ValueError:
            raise VOError(f"CALIB must be integers (0 to 4), got {calibs}") from None
        q.conditions.append(lambda st: f"o.calib_level = ANY({st.add(levels)}::int[])")
    if params.getall("POL"):
        # no product here has polarisation states: a POL constraint matches none
        q.conditions.append(lambda st: "o.pol_states IS NOT NULL")
    maxrec = params.integer("MAXREC", default_maxrec)
    assert maxrec is not None
    q.maxrec = min(maxrec, hard_maxrec)
    return q


def capabilities_xml(base: str) -> str:
    """The VOSI capabilities of the SIA service: pyvo's ``SIA2Service`` reads the query
    endpoint from here."""
    b = escape(base)
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        '<vosi:capabilities xmlns:vosi="http://www.ivoa.net/xml/VOSICapabilities/v1.0" '
        'xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" '
        'xmlns:vr="http://www.ivoa.net/xml/VOResource/v1.0" '
        'xmlns:vs="http://www.ivoa.net/xml/VODataService/v1.1">\n'
        f'  <capability standardID="{SIA2_STANDARD}">\n'
        '    <interface xsi:type="vs:ParamHTTP" role="std" version="2.0">\n'
        f'      <accessURL use="base">{b}/sia/query</accessURL>\n'
        '    </interface>\n'
        '  </capability>\n'
        '  <capability standardID="ivo://ivoa.net/std/VOSI#capabilities">\n'
        '    <interface xsi:type="vs:ParamHTTP">\n'
        f'      <accessURL use="full">{b}/sia/capabilities</accessURL>\n'
        '    </interface>\n'
        '  </capability>\n'
        '  <capability standardID="ivo://ivoa.net/std/DataLink#links-1.0">\n'
        '    <interface xsi:type="vs:ParamHTTP">\n'
        f'      <accessURL use="base">{b}/datalink</accessURL>\n'
        '    </interface>\n'
        '  </capability>\n'
        '</vosi:capabilities>\n')


async def run_sia(conn: asyncpg.Connection, viewer: Viewer, base: str,
                  q: SiaQuery) -> bytes:
    """The ObsCore rows the query asks for as a VOTable (OVERFLOW marked): with POS, the
    images the footprint index finds near the regions, oldest first, tested exactly."""
    fields = OBSCORE.fields
    rows: list[tuple[Any, ...]] = []
    overflow = False
    candidates: list[str] | None = None
    if q.regions:
        # only images near a region can overlap it: the index says which (few)
        await INDEX.refresh(conn)
        candidates = sorted({oid for r in q.regions for oid in INDEX.near(*r.bounding_circle())})
    if q.maxrec > 0 and candidates != []:
        st = Statement()
        relation = OBSCORE.sql(SourceSpec(viewer, st.bind, base, oids=candidates))
        where = q.where(st)
        # without POS every row the database finds is an answer: it may stop early
        limit = None if q.regions else st.add(q.maxrec + 1)
        names = [f.name for f in fields]
        region_at = names.index("s_region")
        async for r in obscore_rows(conn, names, relation, where, st.params, limit):
            if q.keep(r[region_at]):
                if len(rows) == q.maxrec:
                    overflow = True
                    break
                rows.append(tuple(r))
    return rows_bytes(fields, rows, overflow=overflow, name="obscore")
