"""Cone search on the source table, nearest first, reading little more than the answer: the
rounds that the catalog's cone search and the VO service's Simple Cone Search both run.

Why not one statement over the whole cone: at survey density a 0.5 deg cone holds ~10^5
sources while a page asks for ~10^3; computing the distance of every source in the cone,
joining each to its source list for the privilege rule and sorting them all cost ~0.3 s at
10^7 sources (0.7 s at 3x10^7). The nearest sources all lie in a smaller cone, so the search
runs on growing radii instead:

1. a probe counts the index rows of the HEALPix ranges that cover two smaller cones around
   the centre (index-only scans, no distances): the sky density there;
2. the search runs on the radius that holds ``limit`` sources at that density (with a
   margin); if fewer than ``limit`` rows pass every condition (privileges, ``mag_max``, a
   query), the radius grows by what that round found to be missing, up to the cone's own.
   (At 10^7 sources, a 0.5 deg cone and ``limit`` 1,000: one round in ~95 of 100 cones.)

The answer is exactly the full cone's: every source within radius ``rho`` is nearer than any
source beyond it, so once ``limit`` rows within ``rho`` pass, they are the nearest ``limit`` of
the cone; and the last possible round is the cone itself. Ties are broken by (distance,
source list, number), so the order is the same whichever round answers. Each round's rows
(``near``) are cheap to find: the distance is computed only for rows in the box of
declination and right ascension around the cone (comparisons, never wrong: see ``_ra_band``;
the angle between two points is at least their difference in declination).

The rounds are separate statements: each answers from its own snapshot, and the last one's
answer is exact for its snapshot (the argument above holds within it).

Every round's statement takes the same parameters: $1 ra, $2 dec, $3 the round's radius,
$4 ``mag_max`` (NULL: any), $5 ``limit``, then the caller's own (privileges, query) from $6.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import asyncpg

from ..healpix import LEVEL, ranges_for_cone

__all__ = ["GROWTH", "MARGIN", "PAGE", "PROBES", "first_radius", "near", "nearest",
           "next_radius", "radius_for", "seen_page"]

#: the probe's cones, as fractions of the cone's radius
PROBES = (1 / 16, 1 / 4)
#: each estimated radius is widened by this much (area 2.25x): rounds that come short cost
#: more than the rows the margin reads (measured on the clumpy sky of bench/scale.py)
MARGIN = 1.5
#: a round grows the radius at most this much (a count of a few rows says little)
GROWTH = 2.5
#: when an estimate comes this close to the cone's radius, the cone itself is searched
WHOLE = 0.8
#: the order and page of every round's answer over rows ``s`` of ``near``
PAGE = "ORDER BY s.distance, s.sourcelist, s.seq LIMIT $5"
#: square degrees of one pixel of the source table's index (HEALPix, LEVEL)
_PIXEL_DEG2 = 4 * math.pi * (180 / math.pi) ** 2 / (12 * 4**LEVEL)
_SR_DEG2 = (180 / math.pi) ** 2
#: slack of the box around the cone, degrees: it must never be narrower than the distance
#: test by a rounding error
_SLACK = 1e-9
#: the exact distance (degrees), haversine, of row ``s`` from ($1, $2)
_DISTANCE = ("degrees(2 * asin(sqrt(least(1.0, sin(radians(s.dec - $2) / 2) ^ 2 + "
             "cos(radians(s.dec)) * cos(radians($2)) * sin(radians(s.ra - $1) / 2) ^ 2))))")


def radius_for(count: float, density: float) -> float:
    """The radius (degrees) of the cone (a spherical cap) that holds ``count`` sources at
    ``density`` per square degree."""
    cos = 1 - count / (density * 2 * math.pi * _SR_DEG2)
    return 180.0 if cos <= -1 else math.degrees(math.acos(cos))


def _whole(rho: float, radius: float) -> float:
    """``rho``, or the cone itself when ``rho`` comes close to it, or is no radius at all
    (a radius of a few denormals has fractions that round to 0)."""
    return radius if rho >= WHOLE * radius or not rho > 0 else rho


def next_radius(tried: float, found: int, limit: int, radius: float) -> float:
    """The radius of the next round after ``found`` < ``limit`` rows passed within
    ``tried``: the one that holds ``limit`` at the density found, grown at most GROWTH
    times (also when nothing was found); the cone itself if that comes close to it."""
    grown = tried * GROWTH if found == 0 else \
        tried * min(GROWTH, math.sqrt(limit / found) * MARGIN)
    # a radius that no longer grows (rounding at the smallest floats) ends in the cone
    return _whole(grown, radius) if grown > tried else radius


def _ra_band(ra: float, dec: float, rho: float) -> str:
    """A condition on ``s.ra`` that every row within ``rho`` of (ra, dec) passes, free to
    test: the longitudes of a cone span +-asin(sin rho / cos dec) around its centre's
    (wrapped at 0/360 deg, where stored right ascensions are); TRUE for a cone over a
    pole. Widened by a relative and an absolute slack against rounding."""
    if abs(dec) + rho >= 89.0:
        return "TRUE"
    half = math.degrees(math.asin(min(1.0, math.sin(math.radians(rho)) /
                                      math.cos(math.radians(dec)))))
    half = half * (1 + 1e-9) + _SLACK
    if half >= 180:
        return "TRUE"
    lo, hi = ra - half, ra + half
    if lo < 0:
        return f"(s.ra >= {lo + 360!r} OR s.ra <= {hi!r})"
    if hi >= 360:
        return f"(s.ra >= {lo!r} OR s.ra <= {hi - 360!r})"
    return f"s.ra BETWEEN {lo!r} AND {hi!r}"


def _ranges(lo: list[int], hi: list[int]) -> str:
    """HEALPix ranges as integer literals (ours, from the cone, never the caller's text),
    so that the planner estimates each range from the index's statistics: as parameters
    it guesses each at a ninth of the table and prefers a parallel scan of the whole
    table."""
    return "(" + " OR ".join(f"s.healpix BETWEEN {int(a)} AND {int(b)}"
                             for a, b in zip(lo, hi, strict=True)) + ")"


async def first_radius(conn: asyncpg.Connection, ra: float, dec: float, radius: float,
                       limit: int) -> float:
    """The radius expected to hold ``limit`` sources (with MARGIN), from counts of the
    index rows that cover cones of PROBES of the radius (index-only, no distances). The
    density is taken at the smallest probe whose rows would suffice: the sky is clumpy
    (a source list is a chip's footprint), and a density measured at the scale of the
    answer predicts it best."""
    probes = [ranges_for_cone(ra, dec, radius * f) for f in PROBES]
    # a count per range: each an index-only scan (an OR of ranges reads the table's pages)
    counts = await conn.fetchrow("SELECT " + ", ".join(
        " + ".join(f"(SELECT count(*) FROM sources s WHERE s.healpix BETWEEN {int(a)} AND "
                   f"{int(b)})" for a, b in zip(lo, hi, strict=True)) for lo, hi in probes))
    needed = limit * MARGIN**2
    below = 0.0
    for f, (lo, hi), count in zip(PROBES, probes, counts, strict=True):
        if count >= needed or f == PROBES[-1]:
            if not count:
                return _whole(radius * f * GROWTH, radius)
            area = sum(b - a + 1 for a, b in zip(lo, hi, strict=True)) * _PIXEL_DEG2
            # never below a probe that had too few rows, even in its wider ranges
            return _whole(max(below, radius_for(needed, count / area)), radius)
        below = radius * f
    raise AssertionError("unreachable")  # pragma: no cover


def near(ra: float, dec: float, rho: float) -> str:
    """The rows ``s`` (every column of ``sources``, and ``distance`` in degrees) within
    ``rho`` ($3) of ($1, $2) with ``mag`` <= $4 (when not NULL). The distance is computed
    once, for each row of the HEALPix ranges inside the box around the cone (OFFSET 0 keeps
    the planner from computing it again in the distance test, and from walking the table in
    any order to satisfy an ORDER BY ... LIMIT around it)."""
    lo, hi = ranges_for_cone(ra, dec, rho)
    return (f"SELECT * FROM (SELECT s.*, {_DISTANCE} AS distance"
            f"  FROM sources s WHERE {_ranges(lo, hi)}"
            f"  AND s.dec BETWEEN $2::float8 - $3::float8 - {_SLACK}"
            f"  AND $2::float8 + $3::float8 + {_SLACK} AND {_ra_band(ra, dec, rho)}"
            f"  AND ($4::real IS NULL OR s.mag <= $4::real) OFFSET 0) s WHERE s.distance <= $3")


def seen_page(near: str, columns: str, where: str) -> str:
    """One round's answer for a caller who may not see everything: the rows of ``near``
    kept (``hit``, MATERIALIZED), ``where`` (the privilege rule over source lists ``l``)
    tested once on each of their distinct source lists, not once per row, and the
    ``columns`` of the rows whose list passes, in PAGE."""
    return (f"WITH hit AS MATERIALIZED ({near}), "
            f"seen AS MATERIALIZED (SELECT l.oid FROM objects l "
            f"  WHERE l.oid IN (SELECT DISTINCT sourcelist FROM hit) AND {where}) "
            f"SELECT {columns} FROM hit s WHERE s.sourcelist IN (SELECT oid FROM seen) {PAGE}")


async def nearest(conn: asyncpg.Connection, ra: float, dec: float, radius: float, limit: int,
                  statement: Callable[[str], str], mag_max: float | None = None,
                  params: Sequence[Any] = ()) -> list[asyncpg.Record]:
    """The answer of ``statement`` on the rounds' rows: ``statement(near)`` is one round's
    SQL, given that round's ``near`` rows; it must keep the rows that pass the caller's
    conditions (``params`` from $6) and end in PAGE. Rounds grow until ``limit`` rows pass
    or the cone itself (``radius``) was searched."""
    rho = await first_radius(conn, ra, dec, radius, limit)
    while True:
        rows = await conn.fetch(statement(near(ra, dec, rho)), ra, dec, rho, mag_max, limit,
                                *params)
        if len(rows) >= limit or rho >= radius:
            return list(rows)
        rho = next_radius(rho, len(rows), limit, radius)
