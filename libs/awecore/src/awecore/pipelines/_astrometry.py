"""Astrometric calibration: match sources to a reference catalogue, fit a TAN WCS."""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
from astropy import units as u
from astropy.coordinates import SkyCoord
from astropy.table import Table
from astropy.wcs import WCS
from astropy.wcs.utils import fit_wcs_from_points

__all__ = ["AstrometricSolution", "fit_astrometry", "match_sources", "wcs_attributes",
           "wcs_from_attributes"]


@dataclass
class AstrometricSolution:
    wcs: WCS
    rms_arcsec: float
    n_matched: int
    #: parameters fitted: 2 (the pointing alone) or 6 (the whole linear WCS)
    n_params: int = 6

    @property
    def uncertainty_arcsec(self) -> float:
        """How far the solution itself may be off (not one star): the residual rms, with
        as many degrees of freedom as pairs beyond the parameters, spread over the fitted
        parameters. Infinite when the pairs cannot measure it (no more pairs than
        parameters)."""
        dof = self.n_matched - self.n_params
        if dof <= 0:
            return float("inf")
        return float(self.rms_arcsec * np.sqrt(self.n_params / dof))


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
                   final_radius_arcsec: float = 1.0,
                   least_for_fit: int = 12) -> AstrometricSolution:
    """Fit a TAN WCS to bright sources matched to the reference catalogue.

    Matching starts wide (the pointing may be off by arcseconds), where only the pointing is
    corrected, by the median offset (chance pairs cannot pull it); then it tightens and the
    whole WCS is fitted. With fewer than ``least_for_fit`` pairs (a sparse field; twice the
    six parameters, so that the fit's own uncertainty is measured) only the pointing is
    corrected: the camera's scale and rotation are kept."""
    bright = sources[(sources["snr"] >= min_snr) & (sources["flag"] == 0)]
    wcs = _voted(bright, initial, ra, dec, radius_arcsec)
    n_params = 2
    for step, radius in enumerate((radius_arcsec, 2 * final_radius_arcsec,
                                   final_radius_arcsec)):
        src, ref = match_sources(bright, wcs, ra, dec, radius)
        if len(src) < 2:
            raise ValueError(f"only {len(src)} sources matched the reference catalogue within "
                             f"{radius} arcsec; at least 2 are needed to correct the pointing")
        world = SkyCoord(ra[ref] * u.deg, dec[ref] * u.deg)
        xy = (np.asarray(bright["x"][src]), np.asarray(bright["y"][src]))
        if step == 0 or len(src) < least_for_fit:
            wcs = _shifted(wcs, xy, world)
            n_params = 2
            continue
        n_params = 6
        with warnings.catch_warnings():  # astropy resets cdelt where a CD matrix is given
            warnings.filterwarnings("ignore", "cdelt will be ignored", RuntimeWarning)
            wcs = fit_wcs_from_points(xy, world, projection=wcs)
    residual = wcs.pixel_to_world(*xy).separation(world).arcsec
    return AstrometricSolution(wcs, float(np.sqrt(np.mean(residual**2))), len(src), n_params)


def _voted(bright: Table, wcs: WCS, ra: np.ndarray, dec: np.ndarray, radius: float,
           tolerance: float = 1.0) -> WCS:
    """The WCS moved by the pointing offset most pairs agree on: every source paired with
    every catalogue star within ``radius``, each pair's offset a vote, the offset with the
    most votes within ``tolerance`` arcsec taken (their median). Nearest-neighbour pairs
    alone fail where cosmic rays or a dense catalogue pair most sources with the wrong star;
    the true offset is still the one most pairs share. Unchanged when fewer than 2 pairs."""
    if len(bright) == 0 or len(ra) == 0:
        return wcs
    measured = wcs.pixel_to_world(np.asarray(bright["x"]), np.asarray(bright["y"]))
    ref = SkyCoord(ra * u.deg, dec * u.deg)
    i_ref, i_src, _, _ = measured.search_around_sky(ref, radius * u.arcsec)
    if len(i_src) < 2:
        return wcs
    east, north = measured[i_src].spherical_offsets_to(ref[i_ref])
    e, n = east.arcsec, north.arcsec
    near = np.hypot(e[:, None] - e[None, :], n[:, None] - n[None, :]) < tolerance \
        if len(e) <= 4000 else None
    if near is None:  # very many pairs: vote on a grid instead
        cells = np.round(np.stack([e, n]) / tolerance).astype(int)
        _, inverse, counts = np.unique(cells, axis=1, return_inverse=True, return_counts=True)
        best = np.asarray(inverse).ravel() == int(np.argmax(counts))
    else:
        best = near[int(np.argmax(near.sum(axis=1)))]
    out = wcs.deepcopy()
    centre = SkyCoord(*out.wcs.crval, unit="deg").spherical_offsets_by(
        float(np.median(e[best])) * u.arcsec, float(np.median(n[best])) * u.arcsec)
    out.wcs.crval = [centre.ra.deg, centre.dec.deg]
    return out


def _shifted(wcs: WCS, xy: tuple[np.ndarray, np.ndarray], world: SkyCoord) -> WCS:
    """The WCS with its reference point moved by the median offset of the pairs."""
    measured = wcs.pixel_to_world(*xy)
    east, north = measured.spherical_offsets_to(world)
    out = wcs.deepcopy()
    centre = SkyCoord(*out.wcs.crval, unit="deg").spherical_offsets_by(
        np.median(east.to(u.deg)), np.median(north.to(u.deg)))
    out.wcs.crval = [centre.ra.deg, centre.dec.deg]
    return out


def wcs_attributes(wcs: WCS) -> dict[str, float]:
    """A TAN WCS as the scalar attributes an AstrometricParameters records."""
    cd = wcs.pixel_scale_matrix
    (ra, dec), (px, py) = wcs.wcs.crval, wcs.wcs.crpix
    return {"crval1": float(ra), "crval2": float(dec), "crpix1": float(px),
            "crpix2": float(py), "cd1_1": float(cd[0, 0]), "cd1_2": float(cd[0, 1]),
            "cd2_1": float(cd[1, 0]), "cd2_2": float(cd[1, 1])}


def wcs_from_attributes(attributes: dict[str, object]) -> WCS:
    """The WCS an AstrometricParameters records, back as an astropy WCS."""
    def value(key: str) -> float:
        return float(attributes[key])  # type: ignore[arg-type]

    wcs = WCS(naxis=2)
    wcs.wcs.ctype = ["RA---TAN", "DEC--TAN"]
    wcs.wcs.crval = [value("crval1"), value("crval2")]
    wcs.wcs.crpix = [value("crpix1"), value("crpix2")]
    wcs.wcs.cd = [[value("cd1_1"), value("cd1_2")], [value("cd2_1"), value("cd2_2")]]
    return wcs
