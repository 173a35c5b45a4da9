"""The sky index of the source table: HEALPix, nested, order 14 (nside 2^14, pixels of about
13 arcsec), and the index ranges that cover a cone.

Why here: the catalog writes the index (migration 0004_sources.sql) and reads it for its cone
search, and the VO service reads the same table for SCS and ADQL; the rule must be one, or a
cone would silently miss sources. A cone becomes a few index ranges found at a coarser level
where the cone covers few pixels (merged where neighbours touch), so it costs a few dozen
index range scans; the exact distance is then computed only on the rows of those ranges.

``astropy_healpix`` is imported inside the functions: the services that call them declare it
(catalog, vo), and the light client, which imports every module of awecore, does without.
"""

from __future__ import annotations

import math
from functools import cache
from typing import Any

import numpy as np
from astropy import units as u

__all__ = ["LEVEL", "NSIDE", "healpix_of", "ranges_for_cone"]

#: the order of the source table's HEALPix index (nested)
LEVEL = 14
NSIDE = 2**LEVEL


@cache
def _index(nside: int) -> Any:
    from astropy_healpix import HEALPix

    return HEALPix(nside=nside, order="nested")


def healpix_of(ra: np.ndarray, dec: np.ndarray) -> np.ndarray:
    """The index (nested, LEVEL) of each position, degrees in."""
    return np.asarray(_index(NSIDE).lonlat_to_healpix(ra * u.deg, dec * u.deg), dtype=np.int64)


def ranges_for_cone(ra: float, dec: float, radius: float) -> tuple[list[int], list[int]]:
    """Index ranges ``[lo[i], hi[i]]`` at LEVEL that cover a cone (degrees), found at a coarser
    level with few pixels."""
    level = int(min(LEVEL, max(0, math.floor(math.log2(175.8 / max(radius, 1e-6))))))
    pixels = np.sort(_index(2**level).cone_search_lonlat(ra * u.deg, dec * u.deg,
                                                         radius * u.deg))
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
