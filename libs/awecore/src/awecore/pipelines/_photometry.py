"""Photometric calibration: the zeropoint from a standard-star field."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from astropy.stats import sigma_clipped_stats
from astropy.table import Table
from astropy.wcs import WCS

from ._astrometry import match_sources

__all__ = ["Zeropoint", "fit_zeropoint"]


@dataclass
class Zeropoint:
    zeropoint: float  # mag giving 1 e-/s above the atmosphere
    error: float
    n_stars: int


def fit_zeropoint(sources: Table, wcs: WCS, ra: np.ndarray, dec: np.ndarray,
                  mag: np.ndarray, exptime: float, gain: float, airmass: float,
                  extinction: float, min_snr: float = 50.0,
                  radius_arcsec: float = 1.0) -> Zeropoint:
    """ZP = m + k X + 2.5 log10(flux gain / t), sigma-clipped over bright standards."""
    if exptime <= 0:
        raise ValueError("a zeropoint needs a positive exposure time")
    bright = sources[(sources["snr"] >= min_snr) & (sources["flag"] == 0)]
    src, ref = match_sources(bright, wcs, ra, dec, radius_arcsec)
    if len(src) < 3:
        raise ValueError(f"only {len(src)} standard stars matched; at least 3 are needed")
    zp = (mag[ref] + extinction * airmass
          + 2.5 * np.log10(np.asarray(bright["flux"][src]) * gain / exptime))
    _mean, median, stdev = sigma_clipped_stats(zp, sigma=3.0)
    return Zeropoint(float(median), float(stdev / np.sqrt(len(zp))), len(src))
