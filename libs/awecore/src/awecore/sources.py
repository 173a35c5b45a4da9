"""Sources of source lists: the catalogue data, kept in the catalog's source table.

    awe.Source.cone(150.0, -30.0, 0.05)       # an astropy Table of the sources in the cone
    q = (Source.mag < 20) & (Source.sourcelist.frame.chip.name == 'ccd53')
    rows = list(q)                            # SourceRow objects, paged from the catalog

``Source``'s attributes are query paths like those of the object model's classes: its
columns, and ``sourcelist``, a reference into the object model. Queries travel as the same
JSON AST (with ``cls="Source"``) and the catalog compiles them for the source table.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Annotated, Any, ClassVar

import numpy as np
from astropy.table import Table
from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, model_validator

from .errors import AweError, InvalidQuery
from .model import Field as ModelField
from .model import Query, Ref, Scalar, add_query_root, session
from .query import QuerySpec
from .source_columns import MAX_SOURCES, checked

if TYPE_CHECKING:
    from astropy.coordinates import SkyCoord
    from astropy.units import Quantity

__all__ = ["MAX_SOURCES", "MAX_SOURCE_PAGE", "Source", "SourceColumns", "SourceConeRequest",
           "SourcePage", "SourceQuery", "SourceQueryPage", "SourceQueryRequest", "SourceRow"]

#: rows per page of a source query (the catalog's cap)
MAX_SOURCE_PAGE = 10_000
OPTIONAL = ("x", "y", "flux", "flux_err", "mag", "mag_err", "snr", "flag")
_Flag = Annotated[int, Field(ge=-(2**31), le=2**31 - 1)]


class SourceColumns(BaseModel):
    """Columns of equal length: ra and dec (degrees) and what photometry measured (null
    where not measured). The JSON form of a load; clients send the same columns as a FITS
    binary table (``awecore.source_columns``), and both keep the rules of ``checked``."""

    model_config = ConfigDict(extra="forbid")

    ra: list[float] = Field(min_length=1, max_length=MAX_SOURCES)
    dec: list[float] = Field(min_length=1, max_length=MAX_SOURCES)
    x: list[float | None] | None = None
    y: list[float | None] | None = None
    flux: list[float | None] | None = None
    flux_err: list[float | None] | None = None
    mag: list[float | None] | None = None
    mag_err: list[float | None] | None = None
    snr: list[float | None] | None = None
    flag: list[_Flag] | None = None
    _arrays: dict[str, np.ndarray] = PrivateAttr(default_factory=dict)

    @model_validator(mode="after")
    def _consistent(self) -> SourceColumns:
        given = {k: v for k in ("ra", "dec", *OPTIONAL) if (v := getattr(self, k)) is not None}
        try:
            self._arrays = checked({k: np.asarray(v, dtype=np.int64 if k == "flag" else
                                                  np.float64) for k, v in given.items()})
        except AweError as exc:
            raise ValueError(exc.detail) from None
        return self

    def arrays(self) -> dict[str, np.ndarray]:
        """The columns as checked numpy arrays (None is NaN: not measured)."""
        return self._arrays

class SourcePage(BaseModel):
    sources: list[dict[str, Any]]


class SourceRow(BaseModel):
    """One source: its source list's oid, its number in that list, position and photometry."""

    model_config = ConfigDict(frozen=True)

    sourcelist: str
    seq: int
    ra: float
    dec: float
    x: float | None = None
    y: float | None = None
    flux: float | None = None
    flux_err: float | None = None
    mag: float | None = None
    mag_err: float | None = None
    snr: float | None = None
    flag: int = 0


class SourceQueryRequest(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    query: QuerySpec
    offset: int = Field(default=0, ge=0, le=10**9)
    limit: int = Field(default=1000, ge=1, le=MAX_SOURCE_PAGE)


class SourceQueryPage(BaseModel):
    """One page of source rows; ``next_offset`` is None on the last page."""

    sources: list[SourceRow]
    offset: int
    limit: int
    next_offset: int | None


class SourceConeRequest(BaseModel):
    """A cone search with an optional DSL condition (its where and scope; no order_by)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    ra: float = Field(ge=0, lt=360)
    dec: float = Field(ge=-90, le=90)
    radius: float = Field(gt=0, le=10)
    limit: int = Field(default=10_000, ge=1, le=100_000)
    mag_max: float | None = None
    query: QuerySpec | None = None


def _table(rows: Sequence[Mapping[str, Any]], names: Sequence[str]) -> Table:
    """Columns with units; missing numbers become NaN so numeric columns stay numeric."""
    table = Table()
    for name in names:
        values = [row.get(name) for row in rows]
        field = Source.fields.get(name)
        if isinstance(field, Scalar):
            kind, unit = field.type_name, field.unit
        else:
            kind, unit = ("float", "deg") if name == "distance" else ("str", None)
        if kind == "float":
            table[name] = [math.nan if v is None else float(v) for v in values]
            table[name].unit = unit
        elif kind == "int":
            table[name] = [0 if v is None else int(v) for v in values]
        else:
            table[name] = ["" if v is None else str(v) for v in values]
    return table


class SourceQuery(Query[Any]):
    """A query on the source table: iterating yields SourceRow, pages of up to 10 000."""

    def _iterate(self) -> Iterator[SourceRow]:
        rows: Iterator[SourceRow] = self._client().iter_sources(self.spec(), limit=self.limit_n)
        return rows

    def _fetch(self, spec: QuerySpec, offset: int, count: int) -> list[SourceRow]:
        rows: list[SourceRow] = self._client().fetch_sources(spec, offset, count)
        return rows

    def _count(self) -> int:
        n: int = self._client().count_sources(self.spec())
        return n

    def __iter__(self) -> Iterator[SourceRow]:
        return self._iterate()

    def oids(self) -> list[str]:
        raise InvalidQuery("sources are rows, not objects: each row has .sourcelist and .seq")

    def to_table(self, columns: Sequence[str] | None = None) -> Table:
        """Results as an astropy Table with units (default: every column of SourceRow)."""
        names = list(columns) if columns is not None else list(SourceRow.model_fields)
        unknown = [n for n in names if n not in SourceRow.model_fields]
        if unknown:
            raise InvalidQuery(f"sources have no column(s) {unknown}; "
                               f"they have {list(SourceRow.model_fields)}")
        return _table([row.model_dump() for row in self], names)


class Source:
    """The source table. On the class, attributes are query paths (``Source.mag < 20``)."""

    fields: ClassVar[dict[str, ModelField]] = {}

    sourcelist = Ref("SourceList", "the source list the source belongs to")
    seq = Scalar(int, "number of the source in its source list")
    ra = Scalar(float, "right ascension (ICRS)", unit="deg")
    dec = Scalar(float, "declination (ICRS)", unit="deg")
    x = Scalar(float, "centroid column, 0-based", unit="pix")
    y = Scalar(float, "centroid row, 0-based", unit="pix")
    flux = Scalar(float, "aperture flux", unit="adu")
    flux_err = Scalar(float, "error of the aperture flux", unit="adu")
    mag = Scalar(float, "calibrated magnitude", unit="mag")
    mag_err = Scalar(float, "error of the magnitude", unit="mag")
    snr = Scalar(float, "signal-to-noise ratio of the aperture flux")
    flag = Scalar(int, "extraction flags (SEP)")

    @classmethod
    def select(cls) -> SourceQuery:
        """Every source of every source list visible to you."""
        return SourceQuery(cls)

    @staticmethod
    def cone(ra: float | Quantity | SkyCoord, dec: float | Quantity | None = None,
             radius: float | Quantity | None = None, limit: int = 10_000,
             mag_max: float | None = None, where: Query[Any] | None = None) -> Table:
        """Sources within ``radius`` of (ra, dec), nearest first.

        The centre is two numbers in degrees (ICRS) or one astropy ``SkyCoord`` (any frame:
        ``Source.cone(SkyCoord.from_name('M 31'), 2 * u.arcmin)``); the radius degrees or an
        angle ``Quantity``. ``where`` narrows them with a Source query, e.g.
        ``where=Source.sourcelist.frame.chip.name == 'ccd53'``.
        """
        ra, dec, radius = _cone_centre(ra, dec, radius)
        params: dict[str, Any] = {"ra": ra, "dec": dec, "radius": radius, "limit": limit}
        if mag_max is not None:
            params["mag_max"] = mag_max
        if where is None:
            got = session().request("GET", "/sources/cone", params=params)
        else:
            if not isinstance(where, SourceQuery):
                raise InvalidQuery(f"where= takes a query on Source, not on {where.root.__name__}")
            if where.limit_n is not None:
                params["limit"] = min(limit, where.limit_n)
            body = SourceConeRequest(**params, query=where.spec())
            got = (where._session or session()).request(
                "POST", "/sources/cone", json=body.model_dump(mode="json"))
        page = SourcePage.model_validate(got)
        return _table(page.sources, [*SourceRow.model_fields, "distance"])


def _degrees(value: float | Quantity, what: str) -> float:
    """An angle in degrees: a number is taken as degrees, a Quantity is converted."""
    from astropy import units as u

    if isinstance(value, u.Quantity):
        try:
            return float(value.to_value(u.deg))
        except (u.UnitsError, TypeError):
            raise InvalidQuery(f"{what} must be an angle (e.g. 1 * u.arcmin), not "
                               f"{value}") from None
    try:
        return float(value)
    except (TypeError, ValueError):
        raise InvalidQuery(f"{what} must be a number of degrees or an angle, not "
                           f"{value!r}") from None


def _cone_centre(ra: Any, dec: Any, radius: Any) -> tuple[float, float, float]:
    """(ra, dec, radius) in degrees from either (ra, dec, radius) or (SkyCoord, radius)."""
    if hasattr(ra, "transform_to"):  # a SkyCoord (or a frame): the centre in one
        if radius is None:
            radius, dec = dec, None
        if dec is not None:
            raise InvalidQuery("give the centre as a SkyCoord or as ra and dec, not both")
        centre = ra.transform_to("icrs")
        if not centre.isscalar:
            raise InvalidQuery("a cone has one centre: the SkyCoord holds several")
        ra, dec = centre.ra, centre.dec
    if dec is None or radius is None:
        raise InvalidQuery("a cone needs a centre (ra and dec, or a SkyCoord) and a radius")
    return (_degrees(ra, "ra") % 360.0, _degrees(dec, "dec"), _degrees(radius, "radius"))


Source.fields = {name: value for name, value in vars(Source).items()
                 if isinstance(value, ModelField)}
add_query_root(Source)
