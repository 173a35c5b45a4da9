"""Automatic quality control: each product gets a bitmask of what looked wrong.

The flags inform; they do not reject. A calibration scientist curates is_valid, and queries
can filter on ``quality_flags`` (e.g. ``BiasFrame.quality_flags == 0``).
"""

from __future__ import annotations

from enum import IntFlag

import numpy as np
from astropy.stats import sigma_clipped_stats

__all__ = ["QC", "qc_astrometry", "qc_bias", "qc_flat", "qc_photometry", "qc_pixel_map",
           "qc_reduced", "qc_sources"]


class QC(IntFlag):
    NOISY = 1  # rms well above what the read noise allows
    STRUCTURED = 2  # large-scale gradients beyond the usual
    MANY_BAD_PIXELS = 4  # more than 1% of the pixels flagged
    LOW_SIGNAL = 8  # a flat with too little light, a frame with no sky
    FEW_SOURCES = 16  # fewer sources than a science frame should have
    SATURATED = 32  # more than 1% of the pixels saturated
    POOR_ASTROMETRY = 64  # a WCS fit with a large residual or few matched stars
    POOR_PHOTOMETRY = 128  # a zeropoint from few standards or with a large scatter


def qc_bias(bias: np.ndarray, read_noise: float, frames: int) -> QC:
    flags = QC(0)
    expected = read_noise / np.sqrt(max(frames, 1))
    # clipped: hot pixels are the hot-pixel map's business, not noise
    _, _, stdev = sigma_clipped_stats(bias, sigma=3.0, maxiters=5)
    if stdev > 3 * expected + 2:
        flags |= QC.NOISY
    halves = (np.nanmedian(bias[:, : bias.shape[1] // 2]),
              np.nanmedian(bias[:, bias.shape[1] // 2:]))
    if abs(halves[0] - halves[1]) > 10:
        flags |= QC.STRUCTURED
    return flags


def qc_pixel_map(mask: np.ndarray) -> QC:
    return QC.MANY_BAD_PIXELS if mask.mean() > 0.01 else QC(0)


def qc_flat(flat: np.ndarray, raw_level: float | None = None) -> QC:
    flags = QC(0)
    _, _, stdev = sigma_clipped_stats(flat, sigma=3.0, maxiters=5)
    if stdev > 0.2:
        flags |= QC.STRUCTURED
    if raw_level is not None and raw_level < 1000:
        flags |= QC.LOW_SIGNAL
    return flags


def qc_reduced(raw: np.ndarray, weight: np.ndarray, saturation: float = 65000.0) -> QC:
    """``saturation`` in the units of ``raw`` (less the overscan level, if subtracted)."""
    flags = QC(0)
    if np.mean(raw >= saturation) > 0.01:
        flags |= QC.SATURATED
    if np.mean(weight <= 0) > 0.01:
        flags |= QC.MANY_BAD_PIXELS
    return flags


def qc_sources(n_sources: int, least: int = 5) -> QC:
    return QC.FEW_SOURCES if n_sources < least else QC(0)


def qc_astrometry(rms_arcsec: float, uncertainty_arcsec: float, max_rms: float = 0.3,
                  max_uncertainty: float = 0.1) -> QC:
    """Poor when the stars scatter widely about the solution, or when the solution itself
    is uncertain (too few pairs for what was fitted, see AstrometricSolution): the measured
    uncertainty decides, not a count of stars (5 well-measured stars pin a pointing)."""
    poor = rms_arcsec > max_rms or not uncertainty_arcsec <= max_uncertainty
    return QC.POOR_ASTROMETRY if poor else QC(0)


def qc_photometry(error: float, n_stars: int, max_error: float = 0.03, least: int = 5) -> QC:
    return QC.POOR_PHOTOMETRY if error > max_error or n_stars < least else QC(0)
