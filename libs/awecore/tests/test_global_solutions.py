"""Global astrometry and photometry over a tile, against the truth of synthetic exposures:
the joint solution beats the per-chip ones on the overlaps and recovers the relative
zeropoints."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pytest
from astropy.coordinates import SkyCoord
from astropy.wcs import WCS

from awecore.pipelines import ChipCatalog, global_astrometry, global_photometry

pytest.importorskip("scipy")

CENTRE = (150.0, 2.0)
SCALE = 0.25  # arcsec per pixel
CHIP = (1000, 1000)  # (ny, nx)
GAIN = 2.0
EXPTIME = 100.0


def tan(ra: float, dec: float, rotation: float, scale: float) -> WCS:
    w = WCS(naxis=2)
    w.wcs.ctype = ["RA---TAN", "DEC--TAN"]
    w.wcs.crval = [ra, dec]
    w.wcs.crpix = [(CHIP[1] + 1) / 2, (CHIP[0] + 1) / 2]
    s = scale / 3600
    w.wcs.cd = [[-s * np.cos(rotation), s * np.sin(rotation)],
                [s * np.sin(rotation), s * np.cos(rotation)]]
    w.wcs.radesys = "ICRS"
    w.pixel_shape = (CHIP[1], CHIP[0])
    return w


@dataclass
class Survey:
    chips: list[ChipCatalog]
    truth: dict[str, WCS]
    star_index: dict[str, np.ndarray]  # per chip: which true star each source is
    ra: np.ndarray
    dec: np.ndarray
    mag: np.ndarray
    zp: dict[str, float]


def make_survey(seed: int, n_exposures: int = 3) -> Survey:
    """Exposures of a 2 x 2 mosaic of chips, dithered so that chips overlap across
    exposures; per-chip WCS off by 0.1-0.3" (shift, rotation, scale); zeropoints that
    differ by up to 0.1 mag between exposures (clouds) and a little between chips."""
    rng = np.random.default_rng(seed)
    n_stars = 1500
    centre = SkyCoord(*CENTRE, unit="deg")
    half = 0.085 * 3600
    stars = centre.spherical_offsets_by(rng.uniform(-half, half, n_stars) * _arcsec,
                                        rng.uniform(-half, half, n_stars) * _arcsec)
    ra, dec = stars.ra.deg, stars.dec.deg
    mag = rng.uniform(16.0, 21.5, n_stars)
    chips: list[ChipCatalog] = []
    truth: dict[str, WCS] = {}
    index: dict[str, np.ndarray] = {}
    zps: dict[str, float] = {}
    side = CHIP[0] * SCALE  # arcsec
    for e in range(n_exposures):
        dither = rng.uniform(-90, 90, 2)
        cloud = rng.uniform(0, 0.1)
        for c, (cx, cy) in enumerate([(-0.5, -0.5), (0.5, -0.5), (-0.5, 0.5), (0.5, 0.5)]):
            key = f"exp{e}-ccd{c}"
            offset = (cx * (side + 10) + dither[0], cy * (side + 10) + dither[1])
            chip_centre = centre.spherical_offsets_by(offset[0] * _arcsec, offset[1] * _arcsec)
            true_wcs = tan(chip_centre.ra.deg, chip_centre.dec.deg, rng.normal(0, 1e-3), SCALE)
            x, y = true_wcs.world_to_pixel_values(ra, dec)
            inside = (x > 5) & (x < CHIP[1] - 6) & (y > 5) & (y < CHIP[0] - 6)
            zp = 25.0 - cloud + rng.normal(0, 0.02)
            flux = EXPTIME / GAIN * 10 ** (-0.4 * (mag[inside] - zp))
            flux_err = np.sqrt(flux / GAIN + 40.0**2)
            measured = flux + rng.normal(size=flux.size) * flux_err
            snr = measured / flux_err
            sigma_px = np.hypot(0.01, 0.6 / np.maximum(snr, 1)) / SCALE
            xm = x[inside] + rng.normal(size=flux.size) * sigma_px / np.sqrt(2)
            ym = y[inside] + rng.normal(size=flux.size) * sigma_px / np.sqrt(2)
            # the chip's own solution: off by a shift of 0.1-0.3", a rotation and a scale
            fitted = true_wcs.deepcopy()
            shift = rng.uniform(0.1, 0.3) * np.array([np.cos(a := rng.uniform(0, 6.3)),
                                                      np.sin(a)])
            moved = SkyCoord(*fitted.wcs.crval, unit="deg").spherical_offsets_by(
                shift[0] * _arcsec, shift[1] * _arcsec)
            fitted.wcs.crval = [moved.ra.deg, moved.dec.deg]
            rot, scale = rng.normal(0, 4e-4), 1 + rng.normal(0, 2e-4)
            r = np.array([[np.cos(rot), -np.sin(rot)], [np.sin(rot), np.cos(rot)]])
            fitted.wcs.cd = scale * (r @ np.asarray(fitted.wcs.cd))
            chips.append(ChipCatalog(key, xm, ym, measured, flux_err, fitted, EXPTIME, GAIN,
                                     1.2))
            truth[key] = true_wcs
            index[key] = np.flatnonzero(inside)
            zps[key] = zp
    return Survey(chips, truth, index, ra, dec, mag, zps)


from astropy import units as u  # noqa: E402

_arcsec = u.arcsec


def errors_to_truth(survey: Survey, wcs: dict[str, WCS]) -> np.ndarray:
    """Separations (arcsec) of every bright source, through the given WCS, from its star."""
    out = []
    for chip in survey.chips:
        bright = chip.snr > 20
        got = wcs[chip.key].pixel_to_world(chip.x[bright], chip.y[bright])
        star = survey.star_index[chip.key][bright]
        true = SkyCoord(survey.ra[star], survey.dec[star], unit="deg")
        out.append(got.separation(true).arcsec)
    return np.concatenate(out)


@pytest.fixture(scope="module")
def survey() -> Survey:
    return make_survey(7)


def test_global_astrometry_beats_the_per_chip_solutions(survey: Survey) -> None:
    rng = np.random.default_rng(8)
    in_ref = rng.random(survey.ra.size) < 0.3  # the reference has a third of the stars
    noisy = SkyCoord(survey.ra[in_ref], survey.dec[in_ref], unit="deg").spherical_offsets_by(
        rng.normal(0, 0.05, in_ref.sum()) * _arcsec, rng.normal(0, 0.05, in_ref.sum()) * _arcsec)
    solution = global_astrometry(survey.chips, noisy.ra.deg, noisy.dec.deg, centre=CENTRE)
    assert solution.ok, solution.flags
    assert solution.n_pairs > 500 and solution.n_reference_pairs > 300
    # on the overlaps (one star on two chips) the joint solution is much better
    assert solution.rms_overlap < 0.5 * solution.rms_overlap_before, (
        solution.rms_overlap, solution.rms_overlap_before)
    assert solution.rms_overlap_before > 0.15
    assert solution.rms_reference < solution.rms_reference_before
    # and against the truth: every chip's corrected WCS puts its stars where they are
    before = errors_to_truth(survey, {c.key: c.wcs for c in survey.chips})
    after = errors_to_truth(survey, solution.wcs)
    rms_before = float(np.sqrt(np.mean(before**2)))
    rms_after = float(np.sqrt(np.mean(after**2)))
    assert rms_after < 0.5 * rms_before and rms_after < 0.06, (rms_before, rms_after)
    for key, chip in solution.chips.items():
        assert chip.n_overlap > 0 and chip.n_reference > 0, key
        assert chip.wcs.pixel_shape == CHIP[::-1]
        assert chip.rms_overlap < solution.rms_overlap_before


def test_global_astrometry_flags_what_it_cannot_check(survey: Survey) -> None:
    lonely = survey.chips[:1]
    solution = global_astrometry(lonely, np.array([]), np.array([]))
    assert not solution.ok
    assert {"no_overlaps", "no_reference"} <= set(solution.flags)
    # nothing to go by: the chip keeps its own solution
    w0, w1 = lonely[0].wcs, solution.wcs[lonely[0].key]
    a = w0.pixel_to_world([0, 999], [0, 999])
    b = w1.pixel_to_world([0, 999], [0, 999])
    assert np.all(a.separation(b).arcsec < 1e-3)
    with pytest.raises(ValueError, match="unique"):
        global_astrometry([survey.chips[0], survey.chips[0]], survey.ra, survey.dec)


def test_global_photometry_recovers_relative_zeropoints(survey: Survey) -> None:
    rng = np.random.default_rng(9)
    anchors = {k: zp + rng.normal(0, 0.04) for k, zp in survey.zp.items()}
    solution = global_photometry(survey.chips, anchors)
    assert solution.ok, solution.flags
    keys = list(survey.zp)
    got = np.array([solution.zeropoints[k] for k in keys])
    true = np.array([survey.zp[k] for k in keys])
    relative = (got - got.mean()) - (true - true.mean())
    assert np.abs(relative).max() < 0.01, relative
    # the anchors themselves are off by 0.04: the overlaps do better than each alone
    anchor = np.array([anchors[k] for k in keys])
    assert np.abs((anchor - anchor.mean()) - (true - true.mean())).max() > 0.03
    # anchored: the mean of zp - anchor is 0
    assert float(np.mean(got - anchor)) == pytest.approx(0.0, abs=1e-9)
    assert solution.n_components == 1 and solution.n_stars > 300
    for k in keys:
        chip = solution.chips[k]
        assert 0 < chip.error < 0.01 and chip.n_stars > 20
        assert chip.residual_rms < 0.1


def test_a_chip_sharing_no_star_keeps_its_anchor(survey: Survey) -> None:
    far = survey.chips[0]
    moved = far.wcs.deepcopy()
    moved.wcs.crval = [moved.wcs.crval[0] + 2.0, moved.wcs.crval[1]]
    alone = ChipCatalog("far", far.x, far.y, far.flux, far.flux_err, moved, EXPTIME, GAIN)
    anchors = {k: 25.0 for k in survey.zp} | {"far": 24.3}
    solution = global_photometry([*survey.chips, alone], anchors)
    assert solution.n_components == 2
    assert solution.chips["far"].zeropoint == pytest.approx(24.3)
    assert solution.chips["far"].n_stars == 0
    with pytest.raises(ValueError, match="anchor"):
        global_photometry(survey.chips, {})
