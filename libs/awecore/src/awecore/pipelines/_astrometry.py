"""Astrometric calibration: match sources to a reference catalogue, fit a TAN WCS."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from astropy import units as u
from astropy.coordinates import SkyCoord
from astropy.table import Table
from astropy.wcs import WCS
from astropy.wcs.utils import fit_wcs_from_points

__all__ = ["AstrometricSolution", "fit_astrometry", "match_sources"]


@dataclass
class AstrometricSolution:
    wcs: WCS
    rms_arcsec: float
    n_matched: int


def match_sources(sources: Table, wcs: WCS, ra: np.ndarray, dec: np.ndarray,
                  radius_arcsec: float) -> tuple[np.ndarray, np.ndarray]:
    """Indices (source, reference) of pairs closer than ``radius_arcsec`` on the sky."""
    if len(sources) == 0 or len(ra) == 0:
        return np.array([], dtype=int), np.array([], dtype=int)
    measured = wcs.pixel_to_world(sources["x"], sources["y"])
    reference = SkyCoord(ra * u.deg, dec * u.deg)
    idx, sep2d, _ = measured.match_to_catalog_sky(reference)
    ok = sep2d.arcsec < radius_arcsec
    return np.flatnonzero(ok), idx[ok]


def fit_astrometry(sources: Table, initial: WCS, ra: np.ndarray, dec: np.ndarray,
                   radius_arcsec: float = 6.0, min_snr: float = 15.0,
                   final_radius_arcsec: float = 1.0) -> AstrometricSolution:
    """Fit a TAN WCS to bright sources matched to the reference catalogue.

    Matching starts wide (the pointing may be off by arcseconds) and tightens after each fit,
    so chance pairs among faint stars drop out."""
    bright = sources[(sources["snr"] >= min_snr) & (sources["flag"] == 0)]
    wcs = initial
    for radius in (radius_arcsec, 2 * final_radius_arcsec, final_radius_arcsec):
        src, ref = match_sources(bright, wcs, ra, dec, radius)
        if len(src) < 6:
            raise ValueError(f"only {len(src)} sources matched the reference catalogue within "
                             f"{radius} arcsec; at least 6 are needed for a WCS fit")
        world = SkyCoord(ra[ref] * u.deg, dec[ref] * u.deg)
        xy = (np.asarray(bright["x"][src]), np.asarray(bright["y"][src]))
        wcs = fit_wcs_from_points(xy, world, projection=wcs)
    residual = wcs.pixel_to_world(*xy).separation(world).arcsec
    return AstrometricSolution(wcs, float(np.sqrt(np.mean(residual**2))), len(src))
