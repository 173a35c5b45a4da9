"""Sources of source lists: the catalogue data, kept in the catalog's source table.

    awe.Source.cone(150.0, -30.0, 0.05)       # an astropy Table of the sources in the cone
"""

from __future__ import annotations

import math
from typing import Any

from astropy.table import Table
from pydantic import BaseModel, ConfigDict, Field, model_validator

__all__ = ["MAX_SOURCES", "Source", "SourceColumns", "SourcePage"]

MAX_SOURCES = 1_000_000
OPTIONAL = ("x", "y", "flux", "flux_err", "mag", "mag_err", "snr", "flag")


class SourceColumns(BaseModel):
    """Columns of equal length: ra and dec (degrees) and what photometry measured."""

    model_config = ConfigDict(extra="forbid")

    ra: list[float] = Field(min_length=1, max_length=MAX_SOURCES)
    dec: list[float] = Field(min_length=1, max_length=MAX_SOURCES)
    x: list[float] | None = None
    y: list[float] | None = None
    flux: list[float] | None = None
    flux_err: list[float] | None = None
    mag: list[float | None] | None = None
    mag_err: list[float | None] | None = None
    snr: list[float] | None = None
    flag: list[int] | None = None

    @model_validator(mode="after")
    def _consistent(self) -> SourceColumns:
        n = len(self.ra)
        for name in ("dec", *OPTIONAL):
            col = getattr(self, name)
            if col is not None and len(col) != n:
                raise ValueError(f"column {name} has {len(col)} values; ra has {n}")
        for name, col, lo, hi in (("ra", self.ra, 0.0, 360.0), ("dec", self.dec, -90.0, 90.0)):
            bad = next((v for v in col if not (math.isfinite(v) and lo <= v <= hi)), None)
            if bad is not None:
                raise ValueError(f"{name} {bad} is outside [{lo}, {hi}]")
        return self

    def as_columns(self) -> dict[str, list[Any]]:
        return {k: v for k, v in self.model_dump().items() if v is not None}


class SourcePage(BaseModel):
    sources: list[dict[str, Any]]


class Source:
    """Client access to the source table."""

    @staticmethod
    def cone(ra: float, dec: float, radius: float, limit: int = 10_000,
             mag_max: float | None = None) -> Table:
        """Sources within ``radius`` degrees of (ra, dec), nearest first."""
        from .client import current

        params: dict[str, Any] = {"ra": ra, "dec": dec, "radius": radius, "limit": limit}
        if mag_max is not None:
            params["mag_max"] = mag_max
        page = SourcePage.model_validate(current().request("GET", "/sources/cone",
                                                           params=params))
        return Table(rows=[tuple(s.values()) for s in page.sources],
                     names=list(page.sources[0]) if page.sources else ["ra", "dec"])
