"""Source detection and aperture photometry with SEP (Source Extractor as a library)."""

from __future__ import annotations

from types import ModuleType

import numpy as np
from astropy.table import Table

from ..errors import ServiceUnavailable

__all__ = ["extract_sources"]


def extract_sources(image: np.ndarray, weight: np.ndarray, threshold: float = 3.0,
                    radius: float = 5.0, minarea: int = 5, gain: float | None = None,
                    variance: np.ndarray | None = None) -> Table:
    """Sources above ``threshold`` x the background rms, with circular-aperture fluxes (ADU).

    Columns: x, y (0-based pixels), flux, fluxerr, snr, flag; ``meta`` holds the background,
    its rms and the image's FWHM in pixels (``fwhm``, NaN without 3 bright stars: the
    seeing a source list records). Pixels of weight 0 are masked
    from detection and flagged in photometry. With the frame's ``gain`` (e-/ADU) the flux
    error holds the source's own photon noise beside the background's; without it a bright
    star's error is only the sky's, several times too small. ``variance`` (per pixel, e.g.
    1 / a coadd's inverse-variance weights) replaces the background's global rms in the flux
    errors: a resampled image's pixel rms understates the noise of an aperture, whose pixels
    are correlated, and its depth varies across it."""
    sep = _sep()
    data = np.ascontiguousarray(image, dtype=np.float64)
    mask = np.ascontiguousarray(weight <= 0)
    background = sep.Background(data, mask=mask)
    subtracted = data - background.back()
    found = sep.extract(subtracted, threshold, err=background.globalrms, mask=mask,
                        minarea=minarea)
    err: float | np.ndarray = background.globalrms
    if variance is not None:
        err = np.ascontiguousarray(np.sqrt(np.clip(variance, 0, None)), dtype=np.float64)
    flux, fluxerr, flag = sep.sum_circle(subtracted, found["x"], found["y"], radius,
                                         err=err, mask=mask, gain=gain)
    table = Table({"x": found["x"], "y": found["y"], "flux": flux, "fluxerr": fluxerr,
                   "flag": flag | found["flag"]})
    table["snr"] = np.where(fluxerr > 0, flux / np.where(fluxerr > 0, fluxerr, 1), 0.0)
    table.meta["background"] = float(background.globalback)
    table.meta["background_rms"] = float(background.globalrms)
    table.meta["fwhm"] = _fwhm(sep, subtracted, table, mask, radius)
    return table


#: a star measures the seeing when this far above the noise in its aperture
FWHM_SNR = 20.0


def _fwhm(sep: ModuleType, data: np.ndarray, table: Table, mask: np.ndarray,
          radius: float) -> float:
    """The image's FWHM in pixels: twice the median half-light radius of the bright,
    unflagged sources (exact for a Gaussian star, and needing no PSF model); NaN with
    fewer than 3 such. A cosmic ray or a blend moves a median little."""
    good = (np.asarray(table["flag"]) == 0) & (np.asarray(table["snr"]) > FWHM_SNR)
    if good.sum() < 3:
        return float("nan")
    x, y = np.asarray(table["x"])[good], np.asarray(table["y"])[good]
    half, flag = sep.flux_radius(data, x, y, np.full(len(x), 3 * radius), 0.5, mask=mask,
                                 subpix=5)
    # a masked pixel (hot, cold) inside the circle is left out of the sums, which is fine;
    # a circle cut by the edge of the image, or all masked, measures nothing
    ok = ((flag & (sep.APER_TRUNC | sep.APER_ALLMASKED)) == 0) & np.isfinite(half) & (half > 0)
    return float(2 * np.median(half[ok])) if ok.sum() >= 3 else float("nan")


def _sep() -> ModuleType:
    """SEP, from the science extra: the light client plans and submits without it."""
    try:
        import sep  # type: ignore[import-untyped,unused-ignore]
    except ImportError:
        raise ServiceUnavailable("making source lists here needs the science extra: "
                                 "pip install 'awecore[science]'") from None
    module: ModuleType = sep
    return module
