"""Regions of the sky as DALI parameters give them (CIRCLE, POLYGON, RANGE), and what SIA,
SODA and cone search need of them: a bounding circle for an SQL prefilter, points on the
boundary for a pixel box, and an exact overlap test with an image's footprint.

Coordinates are ICRS degrees. Geometry is done on unit vectors (numpy), so it holds at the
poles and across RA = 0 without special cases; a polygon's edges are great circles, as in
DALI. A caller's mistake raises ``VOError`` (a DALI error document, 400).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ..votable import VOError

__all__ = ["Circle", "Polygon", "Range", "Region", "footprint_polygon", "parse_circle",
           "parse_interval", "parse_polygon", "parse_pos", "parse_range", "separation"]

#: the widest region any VO query may name (deg); a wider one is a mistake or a scrape
MAX_RADIUS = 90.0


def _numbers(name: str, text: str) -> list[float]:
    try:
        values = [float(v) for v in text.replace(",", " ").split()]
    except ValueError:
        raise VOError(f"{name}: expected numbers, got {text!r}") from None
    if not all(math.isfinite(v) for v in values):
        raise VOError(f"{name}: coordinates must be finite numbers")
    return values


def _check_dec(name: str, dec: float) -> None:
    if not -90.0 <= dec <= 90.0:
        raise VOError(f"{name}: declination {dec} is outside [-90, 90]")


def _vec(ra: np.ndarray | float, dec: np.ndarray | float) -> np.ndarray:
    """Unit vectors (..., 3) of ICRS positions in degrees."""
    a, d = np.radians(ra), np.radians(dec)
    return np.stack([np.cos(d) * np.cos(a), np.cos(d) * np.sin(a), np.sin(d)], axis=-1)


def _radec(v: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    v = v / np.linalg.norm(v, axis=-1, keepdims=True)
    ra = np.degrees(np.arctan2(v[..., 1], v[..., 0])) % 360.0
    dec = np.degrees(np.arcsin(np.clip(v[..., 2], -1.0, 1.0)))
    return ra, dec


def separation(ra1: float, dec1: float, ra2: np.ndarray | float,
               dec2: np.ndarray | float) -> np.ndarray:
    """Great-circle distance in degrees (haversine: exact for small angles too)."""
    p1, p2 = np.radians(dec1), np.radians(dec2)
    h = (np.sin((p2 - p1) / 2) ** 2
         + np.cos(p1) * np.cos(p2) * np.sin(np.radians(np.asarray(ra2) - ra1) / 2) ** 2)
    return np.asarray(np.degrees(2 * np.arcsin(np.sqrt(np.clip(h, 0.0, 1.0)))))


@dataclass(frozen=True)
class Circle:
    ra: float
    dec: float
    radius: float

    def bounding_circle(self) -> tuple[float, float, float]:
        return self.ra, self.dec, self.radius

    def boundary(self, n: int = 72) -> tuple[np.ndarray, np.ndarray]:
        """Points on the circle, and its centre (a pixel box must hold all of them)."""
        pa = np.radians(np.linspace(0.0, 360.0, n, endpoint=False))
        d, r = np.radians(self.dec), np.radians(self.radius)
        dec = np.arcsin(np.sin(d) * np.cos(r) + np.cos(d) * np.sin(r) * np.cos(pa))
        ra = np.radians(self.ra) + np.arctan2(np.sin(pa) * np.sin(r) * np.cos(d),
                                              np.cos(r) - np.sin(d) * np.sin(dec))
        return (np.append(np.degrees(ra) % 360.0, self.ra),
                np.append(np.degrees(dec), self.dec))

    def overlaps(self, corners: np.ndarray) -> bool:
        """Whether the circle meets the convex-or-not polygon of (n, 2) corners."""
        poly = Polygon(tuple(map(tuple, corners)))
        if poly.contains(self.ra, self.dec):
            return True
        c = _vec(self.ra, self.dec)
        return bool(min(_arc_distance(c, a, b) for a, b in poly.edges()) <= self.radius)


@dataclass(frozen=True)
class Polygon:
    vertices: tuple[tuple[float, float], ...]

    def _vectors(self) -> np.ndarray:
        v = np.array(self.vertices, dtype=float)
        return _vec(v[:, 0], v[:, 1])

    def edges(self) -> list[tuple[np.ndarray, np.ndarray]]:
        v = self._vectors()
        return [(v[i], v[(i + 1) % len(v)]) for i in range(len(v))]

    def bounding_circle(self) -> tuple[float, float, float]:
        v = self._vectors()
        ra, dec = _radec(v.sum(axis=0))
        vra, vdec = _radec(v)
        return float(ra), float(dec), float(separation(float(ra), float(dec), vra, vdec).max())

    def boundary(self, per_edge: int = 16) -> tuple[np.ndarray, np.ndarray]:
        """Points along every edge (great circles), so a distorted WCS's box holds it."""
        points = []
        t = np.linspace(0.0, 1.0, per_edge, endpoint=False)[:, None]
        for a, b in self.edges():
            points.append(a * (1 - t) + b * t)  # the chord's points project onto the arc
        ra, dec = _radec(np.concatenate(points))
        return ra, dec

    def contains(self, ra: float, dec: float) -> bool:
        """Point in polygon by the winding number of the edges seen from the point, in the
        point's tangent plane (the polygon must be smaller than a hemisphere)."""
        p = _vec(ra, dec)
        if any(np.dot(p, v) <= 0 for v in self._vectors()):
            return False  # a vertex 90 deg or more away: not a small polygon around p
        # gnomonic projection about p: great circles become straight lines
        east = np.cross([0.0, 0.0, 1.0], p)
        if np.linalg.norm(east) < 1e-12:
            east = np.array([0.0, 1.0, 0.0])
        east /= np.linalg.norm(east)
        north = np.cross(p, east)
        v = self._vectors()
        proj = v / (v @ p)[:, None]
        x, y = proj @ east, proj @ north
        angle = 0.0
        for i in range(len(x)):
            j = (i + 1) % len(x)
            angle += math.atan2(x[i] * y[j] - y[i] * x[j], x[i] * x[j] + y[i] * y[j])
        return abs(angle) > math.pi

    def overlaps(self, corners: np.ndarray) -> bool:
        other = Polygon(tuple(map(tuple, corners)))
        if any(other.contains(ra, dec) for ra, dec in self.vertices):
            return True
        if any(self.contains(ra, dec) for ra, dec in other.vertices):
            return True
        return any(_arcs_cross(a, b, c, d) for a, b in self.edges() for c, d in other.edges())


@dataclass(frozen=True)
class Range:
    """RA and Dec intervals (SIA's RANGE); RA may wrap (ra_min > ra_max)."""

    ra_min: float
    ra_max: float
    dec_min: float
    dec_max: float

    def as_polygon(self) -> Polygon:
        """Edges of constant Dec are not great circles: sampled finely enough to hold."""
        span = (self.ra_max - self.ra_min) % 360.0 or 360.0
        ras = self.ra_min + np.linspace(0.0, span, 17)
        top = [(float(r) % 360.0, self.dec_max) for r in ras]
        bottom = [(float(r) % 360.0, self.dec_min) for r in ras[::-1]]
        return Polygon(tuple(top + bottom))

    def bounding_circle(self) -> tuple[float, float, float]:
        return self.as_polygon().bounding_circle()

    def boundary(self, per_edge: int = 16) -> tuple[np.ndarray, np.ndarray]:
        return self.as_polygon().boundary(per_edge)

    def overlaps(self, corners: np.ndarray) -> bool:
        return self.as_polygon().overlaps(corners)


Region = Circle | Polygon | Range


def _arc_distance(p: np.ndarray, a: np.ndarray, b: np.ndarray) -> float:
    """Degrees from point p to the great-circle arc a-b."""
    n = np.cross(a, b)
    norm = np.linalg.norm(n)
    if norm > 1e-15:
        n = n / norm
        foot = p - np.dot(p, n) * n
        if np.linalg.norm(foot) > 1e-15:
            foot = foot / np.linalg.norm(foot)
            # the foot lies on the arc if it is between a and b
            if np.dot(np.cross(a, foot), n) >= 0 and np.dot(np.cross(foot, b), n) >= 0:
                return math.degrees(math.asin(min(1.0, abs(float(np.dot(p, n))))))
    return math.degrees(min(_angle(p, a), _angle(p, b)))


def _angle(u: np.ndarray, v: np.ndarray) -> float:
    return math.atan2(float(np.linalg.norm(np.cross(u, v))), float(np.dot(u, v)))


def _arcs_cross(a: np.ndarray, b: np.ndarray, c: np.ndarray, d: np.ndarray) -> bool:
    """Whether great-circle arcs a-b and c-d (each under 180 deg) cross."""
    n1, n2 = np.cross(a, b), np.cross(c, d)
    x = np.cross(n1, n2)
    norm = np.linalg.norm(x)
    if norm < 1e-15:
        return False
    x = x / norm
    for candidate in (x, -x):
        if (np.dot(np.cross(a, candidate), n1) >= 0 and np.dot(np.cross(candidate, b), n1) >= 0
                and np.dot(np.cross(c, candidate), n2) >= 0
                and np.dot(np.cross(candidate, d), n2) >= 0):
            return True
    return False


# -- parsing ------------------------------------------------------------------------------

def parse_circle(text: str, name: str = "CIRCLE") -> Circle:
    """DALI circle: ``ra dec radius`` in degrees."""
    v = _numbers(name, text)
    if len(v) != 3:
        raise VOError(f"{name}: a circle is 'ra dec radius' (3 numbers), got {len(v)}")
    ra, dec, radius = v
    _check_dec(name, dec)
    if not 0.0 < radius <= MAX_RADIUS:
        raise VOError(f"{name}: the radius must be in (0, {MAX_RADIUS}] degrees")
    return Circle(ra % 360.0, dec, radius)


def parse_polygon(text: str, name: str = "POLYGON") -> Polygon:
    """DALI polygon: ``ra1 dec1 ra2 dec2 ra3 dec3 ...`` (at least three vertices)."""
    v = _numbers(name, text)
    if len(v) < 6 or len(v) % 2:
        raise VOError(f"{name}: a polygon is at least 3 'ra dec' pairs (an even count of "
                      f"6 numbers or more), got {len(v)} numbers")
    vertices = tuple((v[i] % 360.0, v[i + 1]) for i in range(0, len(v), 2))
    for _, dec in vertices:
        _check_dec(name, dec)
    poly = Polygon(vertices)
    if poly.bounding_circle()[2] > MAX_RADIUS:
        raise VOError(f"{name}: the polygon is wider than {MAX_RADIUS} degrees")
    return poly


def parse_range(text: str, name: str = "RANGE") -> Range:
    """SIA's ``ra_min ra_max dec_min dec_max`` (degrees; -Inf/+Inf for open ends)."""
    try:
        v = [float(x) for x in text.split()]
    except ValueError:
        raise VOError(f"{name}: expected numbers, got {text!r}") from None
    if len(v) != 4 or any(math.isnan(x) for x in v):
        raise VOError(f"{name}: a range is 'ra_min ra_max dec_min dec_max'")
    ra_lo, ra_hi = (0.0, 360.0) if math.isinf(v[0]) or math.isinf(v[1]) else (v[0], v[1])
    dec_lo, dec_hi = max(v[2], -90.0), min(v[3], 90.0)
    if dec_lo > dec_hi:
        raise VOError(f"{name}: the declination interval is empty")
    if not (math.isinf(v[0]) or math.isinf(v[1])) and ra_hi - ra_lo >= 360.0:
        ra_lo, ra_hi = 0.0, 360.0
    return Range(ra_lo % 360.0 if ra_hi - ra_lo < 360.0 else 0.0,
                 ra_hi % 360.0 if ra_hi - ra_lo < 360.0 else 360.0, dec_lo, dec_hi)


def parse_pos(text: str) -> Region:
    """SIA v2's POS: ``CIRCLE ...``, ``RANGE ...`` or ``POLYGON ...``."""
    shape, _, rest = text.strip().partition(" ")
    kind = shape.upper()
    if kind == "CIRCLE":
        return parse_circle(rest, "POS")
    if kind == "POLYGON":
        return parse_polygon(rest, "POS")
    if kind == "RANGE":
        return parse_range(rest, "POS")
    raise VOError(f"POS: expected CIRCLE, RANGE or POLYGON, got {shape!r}")


def parse_interval(text: str, name: str) -> tuple[float, float]:
    """A DALI interval ``lo hi`` (-Inf/+Inf for an open end), or one value (lo = hi)."""
    try:
        v = [float(x) for x in text.split()]
    except ValueError:
        raise VOError(f"{name}: expected 'low high' numbers, got {text!r}") from None
    if len(v) == 1:
        v = v * 2
    if len(v) != 2 or any(math.isnan(x) for x in v):
        raise VOError(f"{name}: an interval is 'low high' (two numbers)")
    if v[0] > v[1]:
        raise VOError(f"{name}: the interval's low end {v[0]} is above its high end {v[1]}")
    return v[0], v[1]


def footprint_polygon(text: str | None) -> np.ndarray | None:
    """The (n, 2) corners of a footprint written as numbers (the catalogue's
    'ra dec;ra dec;...' or an s_region 'POLYGON [ICRS] ra dec ...'); None if unreadable."""
    if not text:
        return None
    words = text.replace(";", " ").replace(",", " ").split()
    numbers: list[float] = []
    for w in words:
        try:
            numbers.append(float(w))
        except ValueError:
            continue
    if len(numbers) < 6 or len(numbers) % 2:
        return None
    return np.array(numbers, dtype=float).reshape(-1, 2)
