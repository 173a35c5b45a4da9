"""SODA sync parameters: which dataset (ID) and which part of it (CIRCLE, POLYGON or POS).

One region per request: SODA allows several (one cutout each, in a multi-part answer), but
a client asking for one file gets one file here, and several regions are a 400 that says so.
No region at all gives the whole file, as SODA says.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..tables import parse_did
from ..votable import VOError, VOParams
from .regions import Region, parse_circle, parse_polygon, parse_pos

__all__ = ["SodaQuery", "parse_soda"]

_FITS = ("application/fits", "image/fits", "fits")


@dataclass(frozen=True)
class SodaQuery:
    id: str
    oid: str
    region: Region | None


def parse_soda(params: VOParams) -> SodaQuery:
    ids = params.getall("ID")
    if len(ids) != 1:
        raise VOError("UsageError: give exactly one ID" if ids else "UsageError: ID is required")
    oid = parse_did(ids[0])
    if oid is None:
        raise VOError(f"UsageError: {ids[0]!r} is not an identifier of this service "
                      "(ivo://awe.<site>/obj?<oid> or an oid)")
    fmt = params.get("RESPONSEFORMAT")
    if fmt and fmt.strip().lower() not in _FITS:
        raise VOError(f"UsageError: RESPONSEFORMAT {fmt!r} is not served: cutouts are FITS")
    regions: list[Region] = [parse_circle(v) for v in params.getall("CIRCLE")]
    regions += [parse_polygon(v) for v in params.getall("POLYGON")]
    regions += [parse_pos(v) for v in params.getall("POS")]
    if len(regions) > 1:
        raise VOError("UsageError: one CIRCLE, POLYGON or POS per request (one cutout)")
    for name in ("BAND", "TIME", "POL"):
        if params.getall(name):
            raise VOError(f"UsageError: {name} is not supported: images here have no "
                          f"{name.lower()} axis to cut")
    return SodaQuery(ids[0], oid, regions[0] if regions else None)
