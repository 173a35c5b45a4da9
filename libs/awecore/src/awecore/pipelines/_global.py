"""Global solutions over a sky tile: one astrometric and one photometric solution for every
chip-exposure that overlaps it, from the stars they share.

Why: per-chip solutions are each fitted to the reference catalogue alone, so the same star
lands on slightly different positions (and magnitudes) on two overlapping exposures, and a
coadd blurs it. Solved together, each chip-exposure is pulled onto its neighbours as well as
onto the reference (the way KiDS was processed in Astro-WISE, and the spirit of ubercal).

Both problems have one shape: per chip-exposure a few parameters ``theta``, per star one
unknown true value ``s``, and a measurement ``y + J theta = s`` for each detection (the
reference catalogue's entries are detections with no parameters). The star unknowns are
eliminated exactly (each appears in its own detections only), which leaves a small dense
system in the chips' parameters: ``M theta = b`` with ``M = J'WJ - U'D U`` (``U``: the
weighted design summed per star, ``D``: one over each star's total weight). A few hundred
chips give a few hundred unknowns; tens of thousands of stars cost a sparse product.

Stars are found by friends-of-friends: detections of different chips within the match
radius are one star; a group holding two detections of one chip is ambiguous (a blend) and
left out. Matching is redone once the solution moved the chips, and outliers (a variable
star, a bad match) are clipped, twice.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from astropy.wcs import WCS

__all__ = ["AstrometrySolution", "ChipAstrometry", "ChipCatalog", "ChipZeropoint",
           "PhotometrySolution", "global_astrometry", "global_photometry"]

ARCSEC = 1.0 / 3600.0
#: prior on each chip's astrometric correction (arcsec at the chip's edge): weak, it only
#: keeps a chip with few stars where its own solution put it
PRIOR_ARCSEC = 1.0
#: a centroid's error: sqrt(floor**2 + (CENTROID_ARCSEC / snr)**2)
CENTROID_FLOOR_ARCSEC = 0.01
CENTROID_ARCSEC = 0.6
#: a magnitude's error floor (flat fields, aperture corrections)
MAG_FLOOR = 0.003


@dataclass
class ChipCatalog:
    """The sources of one chip-exposure (a SourceList) with what a global solution needs.

    ``key`` names the chip-exposure (e.g. the reduced frame's oid); x, y are 0-based pixels;
    ``wcs`` the chip's own fitted TAN WCS, the starting point; exptime, gain and airmass
    give instrumental magnitudes ``-2.5 log10(flux gain / exptime)``."""

    key: str
    x: np.ndarray
    y: np.ndarray
    flux: np.ndarray
    flux_err: np.ndarray
    wcs: WCS
    exptime: float = 1.0
    gain: float = 1.0
    airmass: float = 1.0

    def __post_init__(self) -> None:
        self.x = np.asarray(self.x, dtype=float)
        self.y = np.asarray(self.y, dtype=float)
        self.flux = np.asarray(self.flux, dtype=float)
        self.flux_err = np.asarray(self.flux_err, dtype=float)
        n = {a.shape for a in (self.x, self.y, self.flux, self.flux_err)}
        if len(n) != 1 or self.x.ndim != 1:
            raise ValueError(f"chip {self.key}: x, y, flux, flux_err must be 1-d and of one "
                             f"length, not {sorted(n)}")
        if self.exptime <= 0 or self.gain <= 0:
            raise ValueError(f"chip {self.key}: exptime and gain must be positive")

    @property
    def snr(self) -> np.ndarray:
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.where(self.flux_err > 0, self.flux / self.flux_err, 0.0)


@dataclass
class ChipAstrometry:
    """One chip-exposure's share of the global astrometric solution."""

    #: the corrected WCS: a TAN WCS fitted to the corrected positions of a grid over the
    #: chip (CRPIX kept, CRVAL and CD adjusted)
    wcs: WCS
    #: the correction at the chip's centre (east, north), arcsec
    shift_arcsec: tuple[float, float]
    n_overlap: int
    n_reference: int
    rms_overlap: float
    rms_reference: float


@dataclass
class AstrometrySolution:
    """The joint solution: per chip its corrected WCS; the residuals on the overlaps (the
    same star on two chips) and to the reference, with the per-chip WCS (before) and the
    joint one; QC flags (empty: good)."""

    chips: dict[str, ChipAstrometry]
    centre: tuple[float, float]
    rms_overlap_before: float
    rms_overlap: float
    rms_reference_before: float
    rms_reference: float
    n_pairs: int
    n_reference_pairs: int
    flags: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.flags

    @property
    def poor(self) -> bool:
        """QC: the joint solution is not to be trusted (any flag)."""
        return bool(self.flags)

    @property
    def wcs(self) -> dict[str, WCS]:
        return {key: chip.wcs for key, chip in self.chips.items()}


@dataclass
class ChipZeropoint:
    """One chip-exposure's zeropoint: ``m = -2.5 log10(flux gain / exptime) + zeropoint``
    (at its airmass: the atmosphere included, as the anchor is)."""

    zeropoint: float
    error: float
    anchor: float
    residual_rms: float
    n_stars: int


@dataclass
class PhotometrySolution:
    chips: dict[str, ChipZeropoint]
    #: rms of the magnitude residuals of stars seen on several chip-exposures
    rms: float
    n_stars: int
    #: groups of chip-exposures linked by shared stars (each anchored on its own)
    n_components: int
    flags: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.flags

    @property
    def poor(self) -> bool:
        return bool(self.flags)

    @property
    def zeropoints(self) -> dict[str, float]:
        return {key: chip.zeropoint for key, chip in self.chips.items()}

    @property
    def errors(self) -> dict[str, float]:
        return {key: chip.error for key, chip in self.chips.items()}


# -- astrometry -------------------------------------------------------------------------

def global_astrometry(chips: Sequence[ChipCatalog], ref_ra: np.ndarray, ref_dec: np.ndarray,
                      *, match_radius_arcsec: float = 1.5,
                      centre: tuple[float, float] | None = None,
                      ref_error_arcsec: float = 0.1, min_snr: float = 5.0,
                      clip: float = 5.0, max_rms_arcsec: float = 0.15,
                      iterations: int = 3) -> AstrometrySolution:
    """One affine correction per chip-exposure on the tangent plane about ``centre`` (the
    tile's; default the detections' mean), fitted so that each star lands on one position
    on every chip that sees it and on the reference catalogue's where it has one.

    Flags: ``poor_overlap_rms`` (rms on the overlaps above ``max_rms_arcsec``),
    ``worse_than_per_chip`` (the joint solution does not beat the per-chip ones),
    ``no_overlaps``, ``no_reference``."""
    _check_keys(chips)
    if not chips:
        raise ValueError("a global astrometric solution needs at least one chip")
    ref_ra = np.atleast_1d(np.asarray(ref_ra, dtype=float))
    ref_dec = np.atleast_1d(np.asarray(ref_dec, dtype=float))
    used = [c.snr >= min_snr for c in chips]
    chip_of = np.concatenate([np.full(int(u.sum()), k) for k, u in enumerate(used)])
    ra_parts, dec_parts, snr_parts = [], [], []
    for c, u in zip(chips, used, strict=True):
        r, d = c.wcs.pixel_to_world_values(c.x[u], c.y[u])
        ra_parts.append(np.atleast_1d(r))
        dec_parts.append(np.atleast_1d(d))
        snr_parts.append(c.snr[u])
    ra, dec = np.concatenate(ra_parts), np.concatenate(dec_parts)
    if centre is None:
        centre = _mean_position(ra, dec)
    xi0, eta0 = _gnomonic(ra, dec, centre)  # arcsec
    ref_xi, ref_eta = _gnomonic(ref_ra, ref_dec, centre)
    sigma = np.hypot(CENTROID_FLOOR_ARCSEC, CENTROID_ARCSEC / np.concatenate(snr_parts))
    n_chips = len(chips)

    # the design: per chip [1, (xi - c)/h, (eta - c)/h], the same for both axes
    centres = np.zeros((n_chips, 2))
    half = np.ones(n_chips)
    for k in range(n_chips):
        sel = chip_of == k
        if sel.any():
            centres[k] = xi0[sel].mean(), eta0[sel].mean()
            half[k] = max(1.0, float(np.max(np.hypot(xi0[sel] - centres[k, 0],
                                                     eta0[sel] - centres[k, 1]))))
    columns = np.stack([np.ones_like(xi0), (xi0 - centres[chip_of, 0]) / half[chip_of],
                        (eta0 - centres[chip_of, 1]) / half[chip_of]], axis=1)
    theta = np.zeros((3 * n_chips, 2))
    clipped = np.zeros(xi0.size, dtype=bool)
    groups = np.full(xi0.size, -1)
    ref_of_group = np.zeros(0, dtype=int)
    for _ in range(max(1, iterations)):
        xi, eta = _apply(xi0, eta0, columns, chip_of, theta)
        groups = _friends(np.column_stack([xi, eta]), chip_of, match_radius_arcsec,
                          ~clipped)
        ref_of_group = _match_groups(xi, eta, groups, ref_xi, ref_eta, match_radius_arcsec)
        theta = _solve_astrometry(xi0, eta0, columns, chip_of, sigma, groups, ref_of_group,
                                  ref_xi, ref_eta, ref_error_arcsec, n_chips)
        xi, eta = _apply(xi0, eta0, columns, chip_of, theta)
        clipped |= _outliers(xi, eta, sigma, groups, ref_of_group, ref_xi, ref_eta,
                             ref_error_arcsec, clip)

    keep = ~clipped & (groups >= 0)
    groups = np.where(keep, groups, -1)
    xi, eta = _apply(xi0, eta0, columns, chip_of, theta)
    pair_a, pair_b = _pairs(groups)
    ref_det = np.flatnonzero((groups >= 0) & (ref_of_group[np.maximum(groups, 0)] >= 0))
    ref_idx = ref_of_group[groups[ref_det]]

    def overlap_rms(x: np.ndarray, y: np.ndarray, sel: np.ndarray | None = None) -> float:
        a, b = (pair_a, pair_b) if sel is None else (pair_a[sel], pair_b[sel])
        return _rms(np.hypot(x[a] - x[b], y[a] - y[b]))

    def reference_rms(x: np.ndarray, y: np.ndarray, sel: np.ndarray | None = None) -> float:
        d, r = (ref_det, ref_idx) if sel is None else (ref_det[sel], ref_idx[sel])
        return _rms(np.hypot(x[d] - ref_xi[r], y[d] - ref_eta[r]))

    result: dict[str, ChipAstrometry] = {}
    for k, chip in enumerate(chips):
        in_pairs = (chip_of[pair_a] == k) | (chip_of[pair_b] == k)
        in_ref = chip_of[ref_det] == k
        t = theta[3 * k:3 * k + 3]
        result[chip.key] = ChipAstrometry(
            wcs=_corrected_wcs(chip, centre, centres[k], half[k], t),
            shift_arcsec=(float(t[0, 0]), float(t[0, 1])),
            n_overlap=int(in_pairs.sum()), n_reference=int(in_ref.sum()),
            rms_overlap=overlap_rms(xi, eta, in_pairs),
            rms_reference=reference_rms(xi, eta, in_ref))
    solution = AstrometrySolution(
        chips=result, centre=(float(centre[0]), float(centre[1])),
        rms_overlap_before=overlap_rms(xi0, eta0), rms_overlap=overlap_rms(xi, eta),
        rms_reference_before=reference_rms(xi0, eta0), rms_reference=reference_rms(xi, eta),
        n_pairs=int(pair_a.size), n_reference_pairs=int(ref_det.size))
    if solution.n_pairs == 0:
        solution.flags.append("no_overlaps")
    if solution.n_reference_pairs == 0:
        solution.flags.append("no_reference")
    if solution.rms_overlap > max_rms_arcsec:
        solution.flags.append("poor_overlap_rms")
    if solution.n_pairs and solution.rms_overlap > solution.rms_overlap_before:
        solution.flags.append("worse_than_per_chip")
    return solution


def _apply(xi0: np.ndarray, eta0: np.ndarray, columns: np.ndarray, chip_of: np.ndarray,
           theta: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Corrected plane positions: each detection moved by its chip's affine."""
    t = theta.reshape(-1, 3, 2)[chip_of]  # (n, 3, 2)
    shift = np.einsum("nk,nka->na", columns, t)
    return xi0 + shift[:, 0], eta0 + shift[:, 1]


def _solve_astrometry(xi0: np.ndarray, eta0: np.ndarray, columns: np.ndarray,
                      chip_of: np.ndarray, sigma: np.ndarray, groups: np.ndarray,
                      ref_of_group: np.ndarray, ref_xi: np.ndarray, ref_eta: np.ndarray,
                      ref_error: float, n_chips: int) -> np.ndarray:
    """theta (3 n_chips, 2): both axes share one design and one normal matrix."""
    from scipy import sparse

    det = np.flatnonzero(groups >= 0)
    with_ref = np.flatnonzero(ref_of_group >= 0)
    n_det, n_ref, n_par = det.size, with_ref.size, 3 * n_chips
    rows = np.repeat(np.arange(n_det), 3)
    cols = (3 * chip_of[det][:, None] + np.arange(3)[None, :]).ravel()
    design = sparse.csr_matrix((columns[det].ravel(), (rows, cols)),
                               shape=(n_det + n_ref, n_par))
    y = np.column_stack([np.concatenate([xi0[det], ref_xi[ref_of_group[with_ref]]]),
                         np.concatenate([eta0[det], ref_eta[ref_of_group[with_ref]]])])
    w = np.concatenate([1.0 / sigma[det] ** 2, np.full(n_ref, 1.0 / ref_error**2)])
    star = np.concatenate([groups[det], with_ref])
    prior = np.full(n_par, 1.0 / PRIOR_ARCSEC**2)
    # a chip with fewer than 3 stars to go by keeps its scale and rotation
    counts = np.bincount(chip_of[det], minlength=n_chips)
    for k in np.flatnonzero(counts < 3):
        prior[3 * k + 1:3 * k + 3] = 1e6
    matrix, rhs = _eliminated(design, y, w, star)
    matrix[np.diag_indices(n_par)] += prior
    return np.asarray(np.linalg.solve(matrix, rhs))


def _outliers(xi: np.ndarray, eta: np.ndarray, sigma: np.ndarray, groups: np.ndarray,
              ref_of_group: np.ndarray, ref_xi: np.ndarray, ref_eta: np.ndarray,
              ref_error: float, clip: float) -> np.ndarray:
    """Detections further than ``clip`` (robust) sigma from their star's mean position."""
    det = groups >= 0
    if not det.any():
        return np.zeros(xi.size, dtype=bool)
    g = np.where(det, groups, 0)
    n_groups = int(g.max()) + 1
    w = np.where(det, 1.0 / sigma**2, 0.0)
    has_ref = ref_of_group[:n_groups] >= 0
    w_ref = np.where(has_ref, 1.0 / ref_error**2, 0.0)
    pick = np.maximum(ref_of_group[:n_groups], 0)
    rx: np.ndarray = np.where(has_ref, ref_xi[pick], 0.0) if ref_xi.size else np.zeros(n_groups)
    ry: np.ndarray = np.where(has_ref, ref_eta[pick], 0.0) if ref_eta.size else np.zeros(n_groups)
    total = np.bincount(g, w, n_groups) + w_ref
    mx = (np.bincount(g, w * xi, n_groups) + w_ref * rx) / np.where(total > 0, total, 1)
    my = (np.bincount(g, w * eta, n_groups) + w_ref * ry) / np.where(total > 0, total, 1)
    n_in = np.bincount(g, det.astype(float), n_groups) + has_ref
    informative = det & (n_in[g] >= 2)
    pull = np.hypot(xi - mx[g], eta - my[g]) / sigma
    if not informative.any():
        return np.zeros(xi.size, dtype=bool)
    # the median of a 2-d pull (Rayleigh) is 1.1774 times the sigma of each axis
    scale = max(1.0, float(np.median(pull[informative])) / 1.1774)
    return np.asarray(informative & (pull > clip * scale), dtype=bool)


def _corrected_wcs(chip: ChipCatalog, centre: tuple[float, float], chip_centre: np.ndarray,
                   half: float, theta: np.ndarray) -> WCS:
    """The chip's WCS with the correction: a TAN WCS (same CRPIX) whose CRVAL is the
    corrected position of CRPIX and whose CD matrix is fitted to the corrected positions of
    a grid over the chip (the affine on the common plane is affine on the chip's own plane
    to a few milli-arcsec over a chip)."""
    w = chip.wcs
    if w.pixel_shape is not None:
        nx, ny = w.pixel_shape
        xs, ys = np.linspace(0, nx - 1, 7), np.linspace(0, ny - 1, 7)
    elif chip.x.size:
        xs = np.linspace(float(chip.x.min()), float(chip.x.max()) + 1.0, 7)
        ys = np.linspace(float(chip.y.min()), float(chip.y.max()) + 1.0, 7)
    else:
        xs = ys = np.linspace(0.0, 100.0, 7)
    mesh_x, mesh_y = np.meshgrid(xs, ys)
    px, py = w.wcs.crpix[0] - 1.0, w.wcs.crpix[1] - 1.0
    gx = np.append(mesh_x.ravel(), px)
    gy = np.append(mesh_y.ravel(), py)
    ra, dec = w.pixel_to_world_values(gx, gy)
    xi, eta = _gnomonic(np.asarray(ra), np.asarray(dec), centre)
    cols = np.stack([np.ones_like(xi), (xi - chip_centre[0]) / half,
                     (eta - chip_centre[1]) / half], axis=1)
    shift = cols @ theta
    new_ra, new_dec = _gnomonic_inverse(xi + shift[:, 0], eta + shift[:, 1], centre)
    crval = (float(new_ra[-1]), float(new_dec[-1]))
    u, v = _gnomonic(new_ra, new_dec, crval)
    offsets = np.column_stack([gx - px, gy - py])
    cd, *_ = np.linalg.lstsq(offsets, np.column_stack([u, v]) * ARCSEC, rcond=None)
    out = WCS(naxis=2)
    out.wcs.ctype = ["RA---TAN", "DEC--TAN"]
    out.wcs.crval = list(crval)
    out.wcs.crpix = list(w.wcs.crpix)
    out.wcs.cd = cd.T
    out.wcs.radesys = "ICRS"
    if w.pixel_shape is not None:
        out.pixel_shape = w.pixel_shape
    return out


# -- photometry -------------------------------------------------------------------------

def global_photometry(chips: Sequence[ChipCatalog], anchors: Mapping[str, float], *,
                      match_radius_arcsec: float = 1.0, min_snr: float = 10.0,
                      clip: float = 5.0, iterations: int = 3,
                      max_rms: float = 0.05) -> PhotometrySolution:
    """Relative zeropoints per chip-exposure from the stars they share (least squares:
    ``m_inst,i(star) + zp_i = m(star)``), anchored so that the mean of ``zp_i - anchor_i``
    over the chip-exposures linked by shared stars is 0 (each linked group on its own; a
    chip-exposure that shares no star keeps its anchor).

    ``anchors``: each chip-exposure's zeropoint from the night's standard stars at its
    airmass (``ZP_night - k * airmass``, the convention of ``fit_zeropoint``'s zeropoint
    minus the extinction). Errors are those of the relative zeropoints (the overlaps');
    an anchor's own error adds to the group's mean only."""
    from scipy import sparse
    from scipy.sparse.csgraph import connected_components

    _check_keys(chips)
    missing = [c.key for c in chips if c.key not in anchors]
    if missing:
        raise ValueError(f"no anchor zeropoint for {', '.join(missing[:5])}")
    n_chips = len(chips)
    anchor = np.array([float(anchors[c.key]) for c in chips])
    parts_xyz, parts_y, parts_s, parts_k = [], [], [], []
    for k, c in enumerate(chips):
        sel = (c.snr >= min_snr) & (c.flux > 0)
        r, d = c.wcs.pixel_to_world_values(c.x[sel], c.y[sel])
        parts_xyz.append(_unit(np.atleast_1d(r), np.atleast_1d(d)))
        parts_y.append(-2.5 * np.log10(c.flux[sel] * c.gain / c.exptime))
        parts_s.append(np.hypot(MAG_FLOOR, 1.0857 * c.flux_err[sel] / c.flux[sel]))
        parts_k.append(np.full(int(sel.sum()), k))
    xyz = np.concatenate(parts_xyz) if parts_xyz else np.zeros((0, 3))
    y, sigma = np.concatenate(parts_y), np.concatenate(parts_s)
    chip_of = np.concatenate(parts_k).astype(int)
    radius = 2.0 * math.sin(math.radians(match_radius_arcsec / 3600.0) / 2.0)
    clipped = np.zeros(y.size, dtype=bool)
    zp = anchor.copy()
    groups = np.full(y.size, -1)
    cov = np.zeros((n_chips, n_chips))
    n_comp = n_chips
    for _ in range(max(1, iterations)):
        groups = _friends(xyz, chip_of, radius, ~clipped)
        groups = _multi_chip(groups)
        det = np.flatnonzero(groups >= 0)
        design = sparse.csr_matrix((np.ones(det.size), (np.arange(det.size), chip_of[det])),
                                   shape=(det.size, n_chips))
        matrix, rhs = _eliminated(design, y[det][:, None], 1.0 / sigma[det] ** 2, groups[det])
        # chips linked by shared stars, each linked set anchored on its own
        n_groups = int(groups.max()) + 1 if det.size else 0
        link = sparse.csr_matrix((np.ones(det.size), (chip_of[det], groups[det])),
                                 shape=(n_chips, n_groups))
        n_comp, comp = connected_components(link @ link.T, directed=False)
        constraints = np.zeros((n_comp, n_chips))
        constraints[comp, np.arange(n_chips)] = 1.0
        kkt = np.block([[matrix, constraints.T], [constraints, np.zeros((n_comp, n_comp))]])
        target = np.concatenate([rhs[:, 0], constraints @ anchor])
        inverse = np.linalg.inv(kkt)
        zp = (inverse @ target)[:n_chips]
        cov = inverse[:n_chips, :n_chips]
        residual, _stars_mean, informative = _star_residuals(y + zp[chip_of], sigma, groups)
        pull = np.abs(residual) / sigma
        if informative.any():
            scale = max(1.0, float(np.median(pull[informative])) / 0.6745)
            clipped |= informative & (pull > clip * scale)
    residual, _means, informative = _star_residuals(y + zp[chip_of], sigma, groups)
    n_in = informative.sum()
    chi2 = float(np.sum((residual[informative] / sigma[informative]) ** 2))
    dof = max(1, int(n_in) - int(np.unique(groups[informative]).size) - n_chips + n_comp)
    inflate = max(1.0, math.sqrt(chi2 / dof)) if n_in else 1.0
    result: dict[str, ChipZeropoint] = {}
    for k, chip in enumerate(chips):
        mine = informative & (chip_of == k)
        result[chip.key] = ChipZeropoint(
            zeropoint=float(zp[k]), error=float(math.sqrt(max(cov[k, k], 0.0)) * inflate),
            anchor=float(anchor[k]), residual_rms=_rms(residual[mine]),
            n_stars=int(mine.sum()))
    rms = _rms(residual[informative])
    solution = PhotometrySolution(result, rms, int(np.unique(groups[informative]).size),
                                  int(n_comp))
    if not informative.any():
        solution.flags.append("no_overlaps")
    if rms > max_rms:
        solution.flags.append("poor_residual_rms")
    return solution


def _star_residuals(values: np.ndarray, sigma: np.ndarray,
                    groups: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Each detection minus its star's weighted mean; which detections have a star with
    two or more detections (the others say nothing)."""
    det = groups >= 0
    g = np.where(det, groups, 0)
    n_groups = int(g.max()) + 1 if g.size else 0
    w = np.where(det, 1.0 / sigma**2, 0.0)
    total = np.bincount(g, w, n_groups)
    mean = np.bincount(g, w * values, n_groups) / np.where(total > 0, total, 1.0)
    count = np.bincount(g, det.astype(float), n_groups)
    informative = det & (count[g] >= 2)
    return np.where(det, values - mean[g], 0.0), mean, informative


# -- shared pieces ----------------------------------------------------------------------

def _eliminated(design: Any, y: np.ndarray, w: np.ndarray,
                star: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The normal equations of ``y + design @ theta = s[star]`` (weights w) with each star's
    unknown ``s`` eliminated: (M, b) with ``M theta = b``; y may hold several columns."""
    from scipy import sparse

    n_rows = design.shape[0]
    n_stars = int(star.max()) + 1 if star.size else 0
    member = sparse.csr_matrix((np.ones(n_rows), (np.arange(n_rows), star)),
                               shape=(n_rows, n_stars))
    weighted = sparse.diags(w) @ design
    total = np.asarray(member.T @ w).ravel()
    inv_total = np.where(total > 0, 1.0 / np.where(total > 0, total, 1.0), 0.0)
    per_star = member.T @ weighted  # (stars, params): the weighted design summed per star
    matrix = (design.T @ weighted).toarray() - (per_star.T @ sparse.diags(inv_total)
                                                @ per_star).toarray()
    wy = w[:, None] * y
    star_wy = np.asarray(member.T @ wy) * inv_total[:, None]
    rhs = -(np.asarray(design.T @ wy) - np.asarray(per_star.T @ star_wy))
    return np.asarray(matrix), np.asarray(rhs)


def _friends(points: np.ndarray, chip_of: np.ndarray, radius: float,
             allowed: np.ndarray) -> np.ndarray:
    """Friends-of-friends across chips: a group label per detection (-1: left out); a group
    holding two detections of one chip is ambiguous and left out."""
    from scipy import sparse
    from scipy.sparse.csgraph import connected_components
    from scipy.spatial import cKDTree

    n = points.shape[0]
    labels = np.full(n, -1)
    idx = np.flatnonzero(allowed)
    if idx.size == 0:
        return labels
    pairs = cKDTree(points[idx]).query_pairs(radius, output_type="ndarray")
    if pairs.size:
        a, b = idx[pairs[:, 0]], idx[pairs[:, 1]]
        cross = chip_of[a] != chip_of[b]
        a, b = a[cross], b[cross]
    else:
        a = b = np.zeros(0, dtype=int)
    graph = sparse.csr_matrix((np.ones(a.size), (a, b)), shape=(n, n))
    _count, comp = connected_components(graph, directed=False)
    comp = comp[idx]
    chips_here = chip_of[idx]
    # ambiguous groups: one chip seen twice
    key = comp.astype(np.int64) * (int(chip_of.max()) + 1) + chips_here
    _uniq, inverse, counts = np.unique(key, return_inverse=True, return_counts=True)
    bad_comp = np.unique(comp[counts[inverse] > 1])
    ok = ~np.isin(comp, bad_comp)
    _u, relabel = np.unique(comp[ok], return_inverse=True)
    labels[idx[ok]] = relabel
    return labels


def _multi_chip(groups: np.ndarray) -> np.ndarray:
    """Only groups with two detections or more, relabelled 0..n-1."""
    det = groups >= 0
    if not det.any():
        return groups
    counts = np.bincount(groups[det])
    keep = det & (counts[np.where(det, groups, 0)] >= 2)
    out = np.full(groups.size, -1)
    _u, relabel = np.unique(groups[keep], return_inverse=True)
    out[keep] = relabel
    return out


def _match_groups(xi: np.ndarray, eta: np.ndarray, groups: np.ndarray, ref_xi: np.ndarray,
                  ref_eta: np.ndarray, radius: float) -> np.ndarray:
    """The reference entry of each group (-1: none), by the group's mean position; one
    reference entry goes to its nearest group only."""
    from scipy.spatial import cKDTree

    det = groups >= 0
    n_groups = int(groups[det].max()) + 1 if det.any() else 0
    out = np.full(n_groups, -1)
    if n_groups == 0 or ref_xi.size == 0:
        return out
    count = np.bincount(groups[det], minlength=n_groups)
    mx = np.bincount(groups[det], xi[det], n_groups) / count
    my = np.bincount(groups[det], eta[det], n_groups) / count
    distance, nearest = cKDTree(np.column_stack([ref_xi, ref_eta])).query(
        np.column_stack([mx, my]), distance_upper_bound=radius)
    found = np.isfinite(distance)
    order = np.argsort(np.where(found, distance, np.inf), kind="stable")
    taken: set[int] = set()
    for g in order:
        if not found[g]:
            break
        r = int(nearest[g])
        if r not in taken:
            taken.add(r)
            out[g] = r
    return out


def _pairs(groups: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Pairs (first detection of a group, each other one): the same star on two chips."""
    det = np.flatnonzero(groups >= 0)
    if det.size == 0:
        return np.zeros(0, dtype=int), np.zeros(0, dtype=int)
    order = det[np.argsort(groups[det], kind="stable")]
    g = groups[order]
    first = np.r_[True, g[1:] != g[:-1]]
    head = order[first][np.cumsum(first) - 1]
    other = ~first
    return head[other], order[other]


def _check_keys(chips: Sequence[ChipCatalog]) -> None:
    keys = [c.key for c in chips]
    if len(set(keys)) != len(keys):
        raise ValueError("chip-exposure keys must be unique")


def _rms(values: np.ndarray) -> float:
    return float(np.sqrt(np.mean(values**2))) if values.size else float("nan")


def _unit(ra: np.ndarray, dec: np.ndarray) -> np.ndarray:
    a, d = np.radians(ra), np.radians(dec)
    return np.column_stack([np.cos(d) * np.cos(a), np.cos(d) * np.sin(a), np.sin(d)])


def _mean_position(ra: np.ndarray, dec: np.ndarray) -> tuple[float, float]:
    v = _unit(ra, dec).mean(axis=0)
    return (float(np.degrees(np.arctan2(v[1], v[0])) % 360.0),
            float(np.degrees(np.arctan2(v[2], np.hypot(v[0], v[1])))))


def _gnomonic(ra: np.ndarray, dec: np.ndarray,
              centre: tuple[float, float]) -> tuple[np.ndarray, np.ndarray]:
    """Tangent-plane coordinates (arcsec, east and north) about ``centre``."""
    a = np.radians(np.asarray(ra, dtype=float) - centre[0])
    d = np.radians(np.asarray(dec, dtype=float))
    d0 = math.radians(centre[1])
    cos_c = math.sin(d0) * np.sin(d) + math.cos(d0) * np.cos(d) * np.cos(a)
    xi = np.cos(d) * np.sin(a) / cos_c
    eta = (math.cos(d0) * np.sin(d) - math.sin(d0) * np.cos(d) * np.cos(a)) / cos_c
    return np.degrees(xi) * 3600.0, np.degrees(eta) * 3600.0


def _gnomonic_inverse(xi: np.ndarray, eta: np.ndarray,
                      centre: tuple[float, float]) -> tuple[np.ndarray, np.ndarray]:
    x, y = np.radians(xi / 3600.0), np.radians(eta / 3600.0)
    a0, d0 = math.radians(centre[0]), math.radians(centre[1])
    rho = np.hypot(x, y)
    c = np.arctan(rho)
    with np.errstate(invalid="ignore", divide="ignore"):
        along = np.where(rho > 0, y * np.sin(c) * math.cos(d0) / np.where(rho > 0, rho, 1), 0.0)
        dec = np.arcsin(np.cos(c) * math.sin(d0) + along)
    ra = a0 + np.arctan2(x * np.sin(c),
                         rho * math.cos(d0) * np.cos(c) - y * math.sin(d0) * np.sin(c))
    return np.degrees(ra) % 360.0, np.degrees(dec)
