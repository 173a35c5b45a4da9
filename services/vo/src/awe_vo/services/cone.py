"""Cone search on the source table: HEALPix ranges first, then the exact distance
(the statement is ``awe_vo.storage.dal.cone_rows``).

The catalog indexes every source by its HEALPix pixel (nested, nside 2^14; migration
0004_sources.sql), so a cone becomes a few index ranges found at a coarser level where the
cone covers few pixels, and the exact great-circle distance (haversine) is computed only on
the rows of those ranges. This is the catalog's own cone search
(``awe_catalog.storage.sources``), restated here because one service does not import
another; both must agree (``tests/test_vo_dal.py`` checks it).
"""

from __future__ import annotations

import math

import numpy as np
from astropy import units as u
from astropy_healpix import HEALPix

__all__ = ["LEVEL", "ranges_for_cone"]

#: the catalog's HEALPix level for sources
LEVEL = 14


def ranges_for_cone(ra: float, dec: float, radius: float) -> tuple[list[int], list[int]]:
    """Index ranges at LEVEL that cover a cone, found at a coarser level with few pixels."""
    level = int(min(LEVEL, max(0, math.floor(math.log2(175.8 / max(radius, 1e-6))))))
    coarse = HEALPix(nside=2**level, order="nested")
    pixels = np.sort(coarse.cone_search_lonlat(ra * u.deg, dec * u.deg, radius * u.deg))
    shift = 4 ** (LEVEL - level)
    lo: list[int] = []
    hi: list[int] = []
    for p in pixels.tolist():  # merge neighbours into ranges
        if lo and p * shift == hi[-1] + 1:
            hi[-1] = (p + 1) * shift - 1
        else:
            lo.append(p * shift)
            hi.append((p + 1) * shift - 1)
    return lo, hi

