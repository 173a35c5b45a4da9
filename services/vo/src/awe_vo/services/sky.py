"""Sky geometry the ADQL compiler needs: a cone around a polygon and the edges of a spherical
polygon (the HEALPix ranges covering a cone are the catalog's rule, ``awecore.healpix``)."""

from __future__ import annotations

import math

import numpy as np

__all__ = ["bounding_cone", "polygon_normals", "unit_vector"]


def unit_vector(ra: float, dec: float) -> np.ndarray:
    r, d = math.radians(ra), math.radians(dec)
    return np.array([math.cos(d) * math.cos(r), math.cos(d) * math.sin(r), math.sin(d)])


def bounding_cone(vertices: list[tuple[float, float]]) -> tuple[float, float, float]:
    """A cone (ra, dec, radius in degrees) that holds every vertex of a polygon smaller than
    a hemisphere (and so the whole convex polygon)."""
    vectors = np.array([unit_vector(ra, dec) for ra, dec in vertices])
    centre = vectors.sum(axis=0)
    norm = float(np.linalg.norm(centre))
    if norm < 1e-9:
        raise ValueError("the polygon is too large (it has no centre)")
    centre /= norm
    radius = max(math.degrees(math.acos(max(-1.0, min(1.0, float(v @ centre)))))
                 for v in vectors)
    ra = math.degrees(math.atan2(centre[1], centre[0])) % 360.0
    dec = math.degrees(math.asin(max(-1.0, min(1.0, float(centre[2])))))
    return ra, dec, radius + 1e-9


def polygon_normals(vertices: list[tuple[float, float]]) -> list[tuple[float, float, float]]:
    """The inward normals of a convex spherical polygon's edges (great circles): a position
    is inside when its unit vector has a non-negative dot product with each. Either
    winding is accepted; a polygon that is not convex (or has repeated vertices) is refused
    with ValueError, as the test would be wrong for it."""
    if len(vertices) < 3:
        raise ValueError("a polygon needs at least three vertices")
    vectors = [unit_vector(ra, dec) for ra, dec in vertices]
    centre = np.sum(vectors, axis=0)
    normals = []
    for a, b in zip(vectors, vectors[1:] + vectors[:1], strict=True):
        n = np.cross(a, b)
        length = float(np.linalg.norm(n))
        if length < 1e-12:
            raise ValueError("the polygon has two equal or opposite vertices in a row")
        normals.append(n / length)
    signs = {bool(float(n @ centre) > 0) for n in normals}
    if len(signs) != 1:
        raise ValueError("the polygon is not convex")
    flip = -1.0 if signs == {False} else 1.0
    out = [(float(n[0]) * flip, float(n[1]) * flip, float(n[2]) * flip) for n in normals]
    # every vertex must be inside every edge's half (convexity, with the edges' own ends)
    for edge in out:
        if any(float(np.dot(edge, v)) < -1e-9 for v in vectors):
            raise ValueError("the polygon is not convex")
    return out
