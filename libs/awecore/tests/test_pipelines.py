"""The pipelines against the simulator's truth, and against ccdproc on the same frames."""

from __future__ import annotations

import dataclasses
import itertools
from pathlib import Path
from typing import Any

import ccdproc
import numpy as np
import pytest
from astropy import units as u
from astropy.io import fits
from astropy.nddata import CCDData
from astropy.wcs import WCS

from awecore import pipelines as p
from awecore.sim import PRESETS, NightPlan, simulate_night, true_wcs

CAMERA = dataclasses.replace(PRESETS["tiny"], chips_x=1, chips_y=1, nx=512, ny=512,
                             pixel_scale=0.3)
PLAN = NightPlan(n_bias=6, n_dome=5, n_twilight=5, science_fields=1, exposures_per_field=1,
                 stars_per_chip=400, seeing=1.0)


class Night:
    def __init__(self, folder: Path, truth: dict[str, Any]) -> None:
        self.folder = folder
        self.truth = truth
        self.chip = truth["chips"]["ccd50"]

    def frames(self, kind: str, filt: str | None = None) -> list[np.ndarray]:
        return [fits.getdata(self.folder / e["file"], 1).astype(np.float32)
                for e in self.truth["exposures"]
                if e["type"] == kind and (filt is None or e["filter"] == filt)]

    def exposure(self, kind: str, filt: str) -> tuple[np.ndarray, fits.Header, dict[str, Any]]:
        e = next(e for e in self.truth["exposures"] if e["type"] == kind and e["filter"] == filt)
        with fits.open(self.folder / e["file"]) as hdul:
            return hdul[1].data.astype(np.float32), hdul[1].header, e


@pytest.fixture(scope="module")
def night(tmp_path_factory: pytest.TempPathFactory) -> Night:
    folder = tmp_path_factory.mktemp("pipeline-night")
    return Night(folder, simulate_night(folder, CAMERA, seed=42, plan=PLAN))


@pytest.fixture(scope="module")
def calibrated(night: Night) -> dict[str, np.ndarray]:
    biases = night.frames("bias")
    noise = p.read_noise(biases[0], biases[1])
    bias = p.master_bias(biases)
    hot = p.hot_pixel_map(bias, noise)
    dome = p.dome_flat(night.frames("dome", "841"), bias, hot)
    cold = p.cold_pixel_map(dome)
    twilight = p.twilight_flat(night.frames("twilight", "841"), bias, hot)
    return {"bias": bias, "hot": hot, "dome": dome, "cold": cold,
            "flat": p.master_flat(dome, twilight), "noise": np.array(noise)}


def precision_recall(found: np.ndarray, truth: list[list[int]]) -> tuple[float, float]:
    true = np.zeros_like(found, dtype=bool)
    true[tuple(np.array(truth).T)] = True
    hits = np.sum(found & true)
    return hits / max(1, found.sum()), hits / true.sum()


def test_bias_level_and_read_noise(night: Night, calibrated: dict[str, np.ndarray]) -> None:
    chip = night.chip
    model = chip["bias_level"] + chip["bias_slope"] * np.arange(512)[None, :] / 512
    residual = calibrated["bias"] - model
    assert abs(float(np.median(residual[~calibrated["hot"]]))) < 0.5  # ADU
    assert abs(float(calibrated["noise"]) / chip["read_noise"] - 1) < 0.05


def test_hot_and_cold_pixels(night: Night, calibrated: dict[str, np.ndarray]) -> None:
    precision, recall = precision_recall(calibrated["hot"], night.chip["hot_pixels"])
    assert precision >= 0.99 and recall >= 0.99
    precision, recall = precision_recall(calibrated["cold"], night.chip["cold_pixels"])
    assert precision >= 0.99 and recall >= 0.99


def test_flat_follows_the_truth(night: Night, calibrated: dict[str, np.ndarray]) -> None:
    truth = fits.getdata(night.folder / "truth_flats.fits", 1)
    good = ~(calibrated["hot"] | calibrated["cold"])
    ratio = calibrated["flat"][good] / (truth[good] / np.median(truth))
    assert np.std(ratio) < 0.01 and abs(np.median(ratio) - 1) < 0.005


def test_master_bias_and_flat_agree_with_ccdproc(night: Night,
                                                 calibrated: dict[str, np.ndarray]) -> None:
    """Tolerance: bias within 0.5 ADU on 99.9% of pixels (the sigma-clipping details differ
    where an outlier is borderline), 0.01 ADU in the median; flat within 1e-5 everywhere."""
    biases = [CCDData(f, unit=u.adu) for f in night.frames("bias")]
    ref = ccdproc.combine(biases, method="average", sigma_clip=True,
                          sigma_clip_low_thresh=3, sigma_clip_high_thresh=3,
                          sigma_clip_func=np.ma.median, sigma_clip_dev_func=np.ma.std)
    diff = np.abs(calibrated["bias"] - ref.data)
    assert np.median(diff) < 0.01 and np.mean(diff < 0.5) > 0.999
    bias, hot = calibrated["bias"], calibrated["hot"]
    subtracted = [CCDData(f - bias, unit=u.adu) for f in night.frames("dome", "841")]
    scales = [1 / np.median(f.data[~hot]) for f in subtracted]
    flat = ccdproc.combine(subtracted, method="median", scale=scales).data
    flat[hot] = 1.0
    assert np.max(np.abs(calibrated["dome"] - flat)) < 1e-5


def reduce_and_extract(night: Night, c: dict[str, np.ndarray], kind: str) -> tuple[
        Any, WCS, dict[str, Any], np.ndarray, np.ndarray, np.ndarray]:
    """Sources of a reduced frame, the chip's true WCS, the exposure and its field's stars."""
    raw, header, exposure = night.exposure(kind, "841")
    image, weight = p.reduce_science(raw, c["bias"], c["flat"], c["hot"], c["cold"])
    assert (weight[c["hot"] | c["cold"]] == 0).all()
    stars = night.truth["fields"][exposure["field"]]["stars"]
    return (p.extract_sources(image, weight), true_wcs(header, exposure), exposure,
            np.array([s["ra"] for s in stars]), np.array([s["dec"] for s in stars]),
            np.array([s["mag"] for s in stars]))


def test_sources_recovered_and_astrometry(night: Night,
                                          calibrated: dict[str, np.ndarray]) -> None:
    sources, truth_wcs, exposure, ra, dec, mag = reduce_and_extract(night, calibrated,
                                                                    "science")
    # >= 95% of the stars the truth puts above 10 sigma in the aperture are found
    filt = night.truth["filters"]["841"]
    gain, noise = night.chip["gain"], night.chip["read_noise"]
    flux_e = 10 ** (-0.4 * (mag + filt["extinction"] * exposure["airmass"]
                            - filt["zeropoint"])) * exposure["exptime"]
    sky_e = 10 ** (-0.4 * (filt["sky_mag"] - filt["zeropoint"])) * 0.3**2 * exposure["exptime"]
    snr = flux_e / np.sqrt(flux_e + np.pi * 5.0**2 * (sky_e + (noise * gain) ** 2))
    x, y = truth_wcs.world_to_pixel_values(ra, dec)
    expected = (x > 8) & (x < 504) & (y > 8) & (y < 504) & (snr > 10)
    assert expected.sum() >= 30
    _, matched = p.match_sources(sources, truth_wcs, ra, dec, 1.0)
    assert np.isin(np.flatnonzero(expected), matched).mean() >= 0.95
    # astrometry from the header's WCS, which is off by the telescope's pointing error
    _, header, _ = night.exposure("science", "841")
    off = WCS(header).pixel_to_world(256, 256).separation(truth_wcs.pixel_to_world(256, 256))
    assert off.arcsec > 0.5
    solution = p.fit_astrometry(sources, WCS(header), ra, dec, radius_arcsec=8.0)
    assert solution.rms_arcsec < 0.1 and solution.n_matched >= 10
    # the fitted WCS puts every pixel where the truth does, to better than 0.1 arcsec
    xy = np.mgrid[0:512:64, 0:512:64].reshape(2, -1)
    assert solution.wcs.pixel_to_world(*xy).separation(
        truth_wcs.pixel_to_world(*xy)).arcsec.max() < 0.1
    # a sparse field, four reference stars: only the pointing is corrected, and that suffices
    bright = sources[(sources["snr"] > 50) & (sources["flag"] == 0)]
    four = p.match_sources(bright, truth_wcs, ra, dec, 0.5)[1][:4]
    sparse = p.fit_astrometry(sources, WCS(header), ra[four], dec[four], radius_arcsec=8.0)
    assert sparse.n_matched == 4 and sparse.rms_arcsec < 0.1
    # QC follows the measured uncertainty, not a count: 4 good stars pin a pointing...
    assert sparse.n_params == 2 and sparse.uncertainty_arcsec < 0.1
    assert p.qc_astrometry(sparse.rms_arcsec, sparse.uncertainty_arcsec) == 0
    assert p.qc_astrometry(solution.rms_arcsec, solution.uncertainty_arcsec) == 0
    # ... 2 stars cannot tell how good their pointing is, and a wide scatter is poor
    two = p.fit_astrometry(sources, WCS(header), ra[four[:2]], dec[four[:2]], radius_arcsec=8.0)
    assert two.uncertainty_arcsec == float("inf")
    assert p.qc_astrometry(two.rms_arcsec, two.uncertainty_arcsec) == p.QC.POOR_ASTROMETRY
    assert p.qc_astrometry(0.5, 0.05) == p.QC.POOR_ASTROMETRY
    assert sparse.wcs.pixel_to_world(*xy).separation(
        truth_wcs.pixel_to_world(*xy)).arcsec.max() < 0.1
    with pytest.raises(ValueError, match="at least 2 are needed"):
        p.fit_astrometry(sources, WCS(header), ra[four[:1]], dec[four[:1]])
    back = p.wcs_from_attributes(p.wcs_attributes(solution.wcs))
    assert back.pixel_to_world(*xy).separation(solution.wcs.pixel_to_world(*xy)).arcsec.max() \
        < 1e-6


def test_seeing_from_the_stars(night: Night, calibrated: dict[str, np.ndarray]) -> None:
    """The FWHM measured on the reduced frame is the simulator's seeing (1.0 arcsec)."""
    sources = reduce_and_extract(night, calibrated, "science")[0]
    assert sources.meta["fwhm"] * 0.3 == pytest.approx(PLAN.seeing, rel=0.1)
    # too few bright stars: no measurement rather than a wrong one
    few = p.extract_sources(np.random.default_rng(1).normal(100, 5, (64, 64)), np.ones((64, 64)))
    assert np.isnan(few.meta["fwhm"])


def test_zeropoint_from_the_standard_field(night: Night,
                                           calibrated: dict[str, np.ndarray]) -> None:
    sources, truth_wcs, exposure, ra, dec, mag = reduce_and_extract(night, calibrated,
                                                                    "standard")
    filt = night.truth["filters"]["841"]
    zp = p.fit_zeropoint(sources, truth_wcs, ra, dec, mag, exposure["exptime"],
                         night.chip["gain"], exposure["airmass"], filt["extinction"],
                         min_snr=30)
    assert zp.n_stars >= 5
    assert abs(zp.zeropoint - filt["zeropoint"]) < 0.02


def test_failure_paths() -> None:
    a = np.zeros((4, 4), np.float32)
    with pytest.raises(ValueError, match="at least 2"):
        p.master_bias([a])
    with pytest.raises(ValueError, match="differ in shape"):
        p.master_bias([a, np.zeros((4, 5), np.float32)])
    with pytest.raises(ValueError, match="shapes differ"):
        p.read_noise(a, np.zeros((5, 4)))
    with pytest.raises(ValueError, match="no light"):
        p.dome_flat([a, a], a, np.zeros((4, 4), bool))
    with pytest.raises(ValueError, match="differ in shape"):
        p.reduce_science(a, a, np.ones((3, 3)), a > 0, a > 0)


def test_quality_flags(calibrated: dict[str, np.ndarray], night: Night) -> None:
    c = calibrated
    assert p.qc_bias(c["bias"], float(c["noise"]), 6) == 0  # the simulated night is clean
    assert p.qc_pixel_map(c["hot"]) == 0 and p.qc_pixel_map(c["cold"]) == 0
    rng = np.random.default_rng(3)
    noisy = c["bias"] + rng.normal(0, 50, c["bias"].shape).astype(np.float32)
    assert p.qc_bias(noisy, float(c["noise"]), 6) & p.QC.NOISY
    tilted = c["bias"] + np.linspace(0, 40, 512, dtype=np.float32)[None, :]
    assert p.qc_bias(tilted, float(c["noise"]), 6) & p.QC.STRUCTURED
    assert p.qc_pixel_map(rng.random((100, 100)) < 0.05) == p.QC.MANY_BAD_PIXELS
    raw, _, _ = night.exposure("science", "841")
    burnt = raw.copy()
    burnt[:100] = 65535
    _image, weight = p.reduce_science(burnt, c["bias"], c["flat"], c["hot"], c["cold"])
    assert p.qc_reduced(burnt, weight) & p.QC.SATURATED
    assert p.qc_sources(2) == p.QC.FEW_SOURCES and p.qc_sources(50) == 0


def _pulls(gain: float | None, seed: int = 11) -> tuple[np.ndarray, np.ndarray]:
    """Magnitude residual / quoted error of isolated stars of known flux (4 to 15 magnitudes
    above the sky's noise) on a sky with photon and read noise; and their true magnitudes."""
    rng = np.random.default_rng(seed)
    size, step, sigma, true_gain, sky_e, read_adu = 1000, 50, 1.5, 2.0, 300.0, 5.0
    yy, xx = np.mgrid[0:size, 0:size]
    pulls, mags = [], []
    for _ in range(3):
        centres = np.mgrid[step // 2:size:step, step // 2:size:step].reshape(2, -1).T
        centres = centres + rng.uniform(-0.5, 0.5, centres.shape)
        flux_e = 10 ** rng.uniform(3.0, 6.3, len(centres))
        electrons = np.full((size, size), sky_e)
        for (y, x), f in zip(centres, flux_e, strict=True):
            ya, yb, xa, xb = int(y) - 12, int(y) + 13, int(x) - 12, int(x) + 13
            electrons[ya:yb, xa:xb] += f / (2 * np.pi * sigma**2) * np.exp(
                -((xx[ya:yb, xa:xb] - x) ** 2 + (yy[ya:yb, xa:xb] - y) ** 2) / (2 * sigma**2))
        adu = rng.poisson(electrons) / true_gain + rng.normal(0, read_adu, electrons.shape)
        table = p.extract_sources(adu.astype(np.float32), np.ones_like(adu), gain=gain)
        found = np.column_stack([table["y"], table["x"]])
        for (y, x), f in zip(centres, flux_e, strict=True):
            d = np.hypot(found[:, 0] - y, found[:, 1] - x)
            i = int(np.argmin(d))
            if d[i] > 1 or table["flux"][i] <= 0:
                continue
            mag = -2.5 * np.log10(table["flux"][i])
            mag_err = 1.0857 * table["fluxerr"][i] / table["flux"][i]
            enclosed = 1 - np.exp(-(5.0**2) / (2 * sigma**2))  # of a 5-pixel aperture
            pulls.append((mag + 2.5 * np.log10(f * enclosed / true_gain)) / mag_err)
            mags.append(-2.5 * np.log10(f))
    return np.array(pulls), np.array(mags)


def test_magnitude_errors_hold_the_photon_noise() -> None:
    """Pull (residual / mag_err) width 1 +- 0.3 in every magnitude bin, bright stars
    included, once the gain lets SEP add each source's own photon noise; without it the
    bright stars' errors are several times too small."""
    pulls, mags = _pulls(gain=2.0)
    edges = np.arange(-15.75, -7.4, 1.0)
    for lo, hi in itertools.pairwise(edges):
        inside = (mags >= lo) & (mags < hi)
        assert inside.sum() >= 30, (lo, inside.sum())
        pull = pulls[inside]
        width = 1.4826 * np.median(np.abs(pull - np.median(pull)))
        assert 0.7 <= width <= 1.3, f"pull width {width:.2f} for magnitudes {lo}..{hi}"
        # centred within a sigma: what remains at 10^6 e- is a 0.1% background systematic
        assert abs(np.median(pull)) < 1.0
    bright, bright_mags = _pulls(gain=None)
    brightest = bright[bright_mags < -14.75]
    assert 1.4826 * np.median(np.abs(brightest - np.median(brightest))) > 3


def test_astrometry_survives_cosmic_rays_and_a_crowded_catalogue() -> None:
    """The pointing is found by the offset most source-star pairs share, not by each
    source's nearest star: here half the detections are cosmic rays and the catalogue is so
    dense that a source's nearest star is usually the wrong one, 6" from the truth."""
    from astropy.table import Table

    rng = np.random.default_rng(5)
    truth = WCS(naxis=2)
    truth.wcs.ctype = ["RA---TAN", "DEC--TAN"]
    truth.wcs.crval, truth.wcs.crpix = [150.0, 2.0], [1024.5, 1024.5]
    truth.wcs.cd = [[-0.2 / 3600, 0], [0, 0.2 / 3600]]
    x, y = rng.uniform(50, 2000, 5000), rng.uniform(50, 2000, 5000)  # one star per 6"
    ra, dec = truth.wcs_pix2world(x, y, 0)
    seen = 150
    stars = Table({"x": x[:seen] + rng.normal(0, 0.05, seen),
                   "y": y[:seen] + rng.normal(0, 0.05, seen)})
    cosmics = Table({"x": rng.uniform(0, 2048, seen), "y": rng.uniform(0, 2048, seen)})
    sources = Table(np.concatenate([stars.as_array(), cosmics.as_array()]))
    sources["snr"], sources["flag"] = 100.0, 0
    header = truth.deepcopy()
    header.wcs.crval = [150.0 + 6.0 / 3600, 2.0 - 4.0 / 3600]  # the telescope's pointing error
    solution = p.fit_astrometry(sources, header, ra, dec, radius_arcsec=10.0)
    centre = truth.pixel_to_world(1024, 1024)
    assert solution.wcs.pixel_to_world(1024, 1024).separation(centre).arcsec < 0.05
    assert solution.n_matched >= 120
