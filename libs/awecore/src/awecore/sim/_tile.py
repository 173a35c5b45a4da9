"""Several nights of dithered exposures of one sky tile: what a coadd is made from.

A survey delivers coadds: every exposure of a patch of sky, from several nights and chips,
resampled onto one grid and stacked. This simulator writes the raw data for that and the
truth to check it against. It reuses the survey's machinery (:mod:`awecore.sim._survey`): one
camera for every night (drawn once; the bias level drifts a little per night), calibrations
(biases, dome and twilight flats, a standard field) on the calibration nights only, one
reference catalogue ``refcat.fits`` and ``survey.json`` at the top, so ``awe ingest DIR``
takes the whole tile as it takes a survey. What differs is the science:

* **one field per night, dithered:** every night observes the tile centre in ``exposures``
  exposures per filter, each offset by a dither of at most ``dither_arcsec`` in RA and Dec
  (drawn afresh for every exposure and night, at least ``dither / sqrt(n)`` apart within a
  night, so that the chip gaps are filled and stars fall on different chips). The header WCS
  gives the dithered pointing plus the usual pointing error of a few arcseconds (the truth
  has the exact WCS).
* **stars below the catalogue's limit:** the field's stars reach magnitude
  :data:`FAINTEST`; the reference catalogue lists only those brighter than
  :data:`REFCAT_LIMIT` (about where a 300-s frame's sources reach a signal-to-noise of 15,
  the per-chip astrometry's cut), as a real catalogue would. The density is set so that every
  chip holds about ``stars_per_chip`` catalogue stars whatever the camera: enough for the
  per-chip astrometry and photometry, and sparse enough that its first, wide match (8
  arcsec, the pointing error is up to 4 in each axis) pairs most sources with their own
  star (denser fields, or more cosmic rays, make that match's median offset wrong on some
  chips). The truth lists every star rendered.
* **clouds:** each science exposure loses a drawn ``0 .. transparency`` magnitudes (stars
  and sky alike: the clouds are below both). The standard field on calibration nights is
  photometric (no loss), so the night's zeropoint from the standards is right and the
  exposures' relative zeropoints are what global photometry must recover.
* **cosmic rays** in every science exposure: :data:`COSMIC_RATE` events per pixel per second
  (0.6 events, 1.3 pixels hit, per 10^4 pixels in a 300-s exposure: a ground-based CCD's
  rate, a few to tens per chip; more would outnumber the catalogue stars among a chip's
  bright sources and defeat its astrometry), 40 % single pixels and the rest straight tracks
  of 2 to 4 pixels, each pixel 1500 to 8000 e- deposited straight into the silicon (sharp,
  not PSF-shaped, not flat-fielded).
* **one satellite trail** in exactly one science exposure of the first night (so adding
  nights does not move it): a straight line across the whole mosaic through a point inside
  one chip (so it crosses at least that chip), a Gaussian profile of
  :data:`TRAIL_FWHM` pixels FWHM and 800 to 3000 e- per pixel at its peak above the sky.

**Zeropoints in the truth.** ``zeropoint`` of a science exposure (and of each of its chips)
is the magnitude of a star that gives 1 e-/s in the frame as it comes out of the atmosphere
and the clouds: the filter's zeropoint above the atmosphere minus ``extinction x airmass``
minus the cloud loss. A reduced frame in e-/s (bias subtracted, times the gain, divided by
the true flat, whose mean is 1 on every chip, divided by the exposure time) is calibrated by
``m = zeropoint - 2.5 log10(flux)``; in ADU/s by ``zeropoint_adu = zeropoint - 2.5
log10(gain)``. ``zeropoint_top`` is the filter's above the atmosphere (what the standards
measure).

**Pixels in the truth** (cosmic rays, trail end points) are ``[x, y]``, 0-based, on the
trimmed chip image (the data section, without prescan or overscan), as the hot and cold
pixels of a night's truth; ``wcs`` of a chip is its exact TAN WCS on that trimmed image
(``crpix`` 1-based as in FITS): :func:`truth_wcs` makes it an astropy WCS.

The output is the survey's layout (``DIR/YYYY-MM-DD/`` per night with its raw files and
``truth.json``, ``refcat.fits``, ``truth_flats.fits``, ``survey.json``) plus
``tile_truth.json`` at the top: the tile, its stars, every science exposure with its chips,
and the trail (:func:`load_tile_truth`). Each part comes from its own seeded stream (the
camera, the sky, the trail, each night): the same seed gives the same bytes, and a night does
not change when nights are added after it.
"""

from __future__ import annotations

import copy
import dataclasses
import datetime as dt
import json
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from astropy.io import fits
from astropy.wcs import WCS

from ..files import name_part
from ._instrument import InstrumentSpec
from ._night import (
    REFCAT_NAME,
    ChipTruth,
    Exposure,
    NightPlan,
    _chip_header,
    _chip_wcs,
    _make_chips,
    _primary,
    _reference_catalogue,
    _render,
    _Sky,
    _stars,
    _truth,
    _truth_flats,
    _write_exposures,
    schedule,
)
from ._survey import FLATS_FILE, REFCAT_FILE, SURVEY_FILE, _night_chips, _stream

__all__ = ["COSMIC_RATE", "FAINTEST", "REFCAT_LIMIT", "TILE_TRUTH_FILE", "TRAIL_FWHM",
           "load_tile_truth", "simulate_tile", "tile_refcat_name", "truth_wcs"]

TILE_TRUTH_FILE = "tile_truth.json"
#: the reference catalogue lists the stars brighter than this (the truth has them all)
REFCAT_LIMIT = 22.0
#: the faintest star rendered
FAINTEST = 24.5
_BRIGHTEST = 16.0  # as _Sky draws them
#: cosmic-ray events per pixel per second of exposure
COSMIC_RATE = 2e-7
COSMIC_ELECTRONS = (1500.0, 8000.0)  # deposited per pixel hit
TRAIL_FWHM = 1.4  # pixels
TRAIL_PEAK = (800.0, 3000.0)  # e- per pixel at the trail's centre line
_STANDARD_OFFSET = 2.5  # degrees in Dec between the tile and its standard field
_MARGIN = 15.0  # arcsec of stars beyond the farthest dithered chip corner


def tile_refcat_name(inst: InstrumentSpec, seed: int, field: str) -> str:
    """The tile's reference catalogue: ``AWE-SIM-REF-TILE-<field>-<seed>`` (with the file
    prefix for cameras other than the simulator's), never a night's or a survey's name, and
    one per tile, so tiles simulated with one seed do not claim one name."""
    camera = "" if inst.style == "awe" else f"{name_part(inst.prefix)}-"
    return f"{REFCAT_NAME}-{camera}TILE-{field.replace('_', '-')}-{seed}"


def truth_wcs(chip: dict[str, Any]) -> WCS:
    """The exact WCS of a chip of a science exposure (its ``wcs`` in the tile truth) on the
    trimmed image; ``world_to_pixel_values`` then gives 0-based trimmed pixels."""
    spec = chip.get("wcs", chip)
    w = WCS(naxis=2)
    w.wcs.ctype = list(spec["ctype"])
    w.wcs.crval = list(spec["crval"])
    w.wcs.crpix = list(spec["crpix"])
    w.wcs.cd = np.asarray(spec["cd"])
    return w


def load_tile_truth(folder: Path) -> dict[str, Any]:
    """The truth of a tile written by :func:`simulate_tile` under ``folder``."""
    truth: dict[str, Any] = json.loads((Path(folder) / TILE_TRUTH_FILE).read_text())
    return truth


def _lookup_tile(name: str) -> tuple[float, float, float | None]:
    """A tile's centre and size from the sky tiling."""
    from .. import tiles
    from ..errors import InvalidRequest

    try:
        t = tiles.tile(name)
    except InvalidRequest as exc:
        raise ValueError(exc.detail) from None
    return float(t.ra), float(t.dec), float(t.size)


@dataclasses.dataclass(frozen=True)
class _Trail:
    """Where the satellite crosses: a line through ``anchor`` (mosaic pixels) at ``angle``."""

    exposure: int  # index among the first night's science exposures
    anchor: tuple[float, float]
    angle: float  # radians from the x axis
    peak: float  # e- per pixel

    @classmethod
    def draw(cls, inst: InstrumentSpec, n_exposures: int, rng: np.random.Generator) -> _Trail:
        chip = int(rng.integers(inst.n_chips))
        cx, cy = chip % inst.chips_x, chip // inst.chips_x
        ax = cx * (inst.nx + inst.gap) + inst.nx * float(rng.uniform(0.25, 0.75))
        ay = cy * (inst.ny + inst.gap) + inst.ny * float(rng.uniform(0.25, 0.75))
        return cls(int(rng.integers(n_exposures)), (ax, ay), float(rng.uniform(0, np.pi)),
                   float(rng.uniform(*TRAIL_PEAK)))

    def on_chip(self, inst: InstrumentSpec, index: int) -> tuple[np.ndarray, list[list[float]]]:
        """The trail's light on chip ``index`` (e- before the flat) and its end points there
        (``[[x, y], [x, y]]``, trimmed pixels), or an empty list where it misses the chip."""
        ox = (index % inst.chips_x) * (inst.nx + inst.gap)
        oy = (index // inst.chips_x) * (inst.ny + inst.gap)
        px, py = self.anchor[0] - ox, self.anchor[1] - oy
        dx, dy = np.cos(self.angle), np.sin(self.angle)
        lo, hi = -np.inf, np.inf
        for p, d, n in ((px, dx, inst.nx), (py, dy, inst.ny)):
            if abs(d) < 1e-12:
                if not -0.5 <= p <= n - 0.5:
                    return np.zeros((inst.ny, inst.nx)), []
                continue
            t1, t2 = (-0.5 - p) / d, (n - 0.5 - p) / d
            lo, hi = max(lo, min(t1, t2)), min(hi, max(t1, t2))
        if hi - lo < 2:
            return np.zeros((inst.ny, inst.nx)), []
        yy, xx = np.mgrid[0:inst.ny, 0:inst.nx]
        distance = (xx - px) * dy - (yy - py) * dx
        sigma = TRAIL_FWHM / 2.3548
        light = self.peak * np.exp(-distance**2 / (2 * sigma**2))
        ends = [[float(px + t * dx), float(py + t * dy)] for t in (lo, hi)]
        return light, ends


def _cosmic_rays(inst: InstrumentSpec, exptime: float,
                 rng: np.random.Generator) -> tuple[np.ndarray, list[list[int]]]:
    """Charge deposited by cosmic rays on one chip (e-) and the pixels hit, ``[x, y]``."""
    deposit = np.zeros((inst.ny, inst.nx))
    hits: dict[tuple[int, int], None] = {}
    steps = ((1, 0), (0, 1), (1, 1), (1, -1))
    for _ in range(int(rng.poisson(COSMIC_RATE * inst.nx * inst.ny * exptime))):
        x, y = int(rng.integers(inst.nx)), int(rng.integers(inst.ny))
        length = 1 if rng.uniform() < 0.4 else int(rng.integers(2, 5))
        sx, sy = steps[int(rng.integers(len(steps)))]
        for k in range(length):
            xi, yi = x + k * sx, y + k * sy
            if 0 <= xi < inst.nx and 0 <= yi < inst.ny:
                deposit[yi, xi] += rng.uniform(*COSMIC_ELECTRONS)
                hits[(xi, yi)] = None
    return deposit, [[x, y] for x, y in hits]


def _dithers(rng: np.random.Generator, n: int, amplitude: float) -> list[tuple[float, float]]:
    """``n`` offsets (east, north; arcsec) within +-``amplitude``, at least
    ``amplitude / sqrt(n)`` apart where the draws allow it (a hundred tries each)."""
    if amplitude <= 0:
        return [(0.0, 0.0)] * n
    least = amplitude / np.sqrt(n)
    out: list[tuple[float, float]] = []
    for _ in range(n):
        for _try in range(100):
            east, north = (float(v) for v in rng.uniform(-amplitude, amplitude, 2))
            if all(np.hypot(east - a, north - b) >= least for a, b in out):
                break
        out.append((east, north))
    return out


def _wcs_json(w: WCS) -> dict[str, Any]:
    return {"ctype": list(w.wcs.ctype), "crval": [float(v) for v in w.wcs.crval],
            "crpix": [float(v) for v in w.wcs.crpix],
            "cd": [[float(v) for v in row] for row in w.wcs.cd]}


@dataclasses.dataclass
class _Science:
    exposure: Exposure
    dither: tuple[float, float]
    loss: float


def _science_plan(inst: InstrumentSpec, plan: NightPlan, start: dt.datetime,
                  filters: Sequence[str], exposures: int, field: str, centre: tuple[float, float],
                  dither: float, transparency: float,
                  rng: np.random.Generator) -> list[_Science]:
    """The night's science: ``exposures`` dithered exposures of the tile per filter."""
    ra0, dec0 = centre
    offsets = _dithers(rng, exposures * len(filters), dither)
    out = []
    t = start
    for j, (east, north) in enumerate(offsets):
        name = filters[j // exposures]
        dec = dec0 + north / 3600
        ra = (ra0 + east / 3600 / np.cos(np.radians(dec))) % 360.0
        airmass = float(rng.uniform(1.05, 1.6))
        error = (float(rng.uniform(-4, 4)), float(rng.uniform(-4, 4)))
        loss = float(rng.uniform(0, transparency)) if transparency > 0 else 0.0
        out.append(_Science(Exposure("science", t, plan.science_exptime, name, field,
                                     round(ra, 8), round(dec, 8), airmass, error),
                            (east, north), loss))
        t += dt.timedelta(seconds=plan.science_exptime + 60)
    return out


def _write_science(folder: Path, inst: InstrumentSpec, chips: list[ChipTruth],
                   science: list[_Science], sky: _Sky, seeing: float, trail: _Trail | None,
                   cosmics: bool, rng: np.random.Generator,
                   progress: Callable[[str], None] | None) -> list[dict[str, Any]]:
    """Write the science exposures; returns each one's truth (the night's entry and more)."""
    fwhm_pix = seeing / inst.pixel_scale
    files = []
    for j, s in enumerate(science):
        exp = s.exposure
        assert exp.filter is not None
        filt = inst.filter(exp.filter)
        seen = dataclasses.replace(filt, zeropoint=filt.zeropoint - s.loss)  # the clouds
        zeropoint = filt.zeropoint - filt.extinction * exp.airmass - s.loss
        sky_e = 10 ** (-0.4 * (seen.sky_mag - seen.zeropoint)) * inst.pixel_scale**2 \
            * exp.exptime
        hdus: list[fits.PrimaryHDU | fits.ImageHDU] = [fits.PrimaryHDU(header=_primary(inst,
                                                                                       exp))]
        chips_truth: dict[str, Any] = {}
        for i, chip in enumerate(chips):
            wcs = _chip_wcs(inst, i, exp.ra, exp.dec)
            light = sky_e + _stars(inst, sky, wcs, seen, exp, fwhm_pix)
            ends: list[list[float]] = []
            if trail is not None and trail.exposure == j:
                streak, ends = trail.on_chip(inst, i)
                light += streak
            electrons = chip.flat * light
            hits: list[list[int]] = []
            if cosmics:
                deposit, hits = _cosmic_rays(inst, exp.exptime, rng)
                electrons += deposit
            hdu = fits.ImageHDU(_render(inst, chip, electrons, rng))
            _chip_header(inst, hdu.header, i, chip, exp)
            hdus.append(hdu)
            chips_truth[chip.name] = {
                "hdu": i + 1, "extname": hdu.header["EXTNAME"], "zeropoint": zeropoint,
                "zeropoint_adu": zeropoint - 2.5 * float(np.log10(chip.gain)),
                "wcs": _wcs_json(wcs), "cosmic_rays": hits,
                "trail": None if not ends else {
                    "ends": ends,
                    "ends_radec": [[float(v) for v in wcs.pixel_to_world_values(*e)]
                                   for e in ends],
                    "peak_electrons": trail.peak if trail else 0.0,
                    "fwhm_pix": TRAIL_FWHM}}
        name = exp.filename(inst)
        fits.HDUList(hdus).writeto(folder / name, overwrite=True)
        files.append({"file": name, "type": exp.kind, "filter": exp.filter,
                      "exptime": exp.exptime, "airmass": exp.airmass, "field": exp.field,
                      "date_obs": exp.time.isoformat(),
                      "pointing_error_arcsec": list(exp.pointing_error),
                      "pointing": {"ra": exp.ra, "dec": exp.dec},
                      "dither_arcsec": list(s.dither), "cloud_loss": s.loss,
                      "zeropoint": zeropoint, "zeropoint_top": filt.zeropoint,
                      "extinction": filt.extinction,
                      "trail": any(c["trail"] for c in chips_truth.values()),
                      "chips": chips_truth})
        if progress:
            progress(name)
    return files


def simulate_tile(out: Path, inst: InstrumentSpec, seed: int = 1, *, ra: float | None = None,
                  dec: float | None = None, tile: str | None = None, nights: int = 2,
                  exposures: int = 4, dither_arcsec: float = 25.0,
                  filters: Sequence[str] | None = None, calib_nights: Sequence[int] = (1,),
                  cosmics: bool = True, trail: bool = True, transparency: float = 0.05,
                  start: dt.date = dt.date(2005, 3, 10), plan: NightPlan | None = None,
                  stars_per_chip: int = 20, bias_drift: float = 0.5,
                  progress: Callable[[str], None] | None = None) -> dict[str, Any]:
    """Write ``nights`` nights of dithered exposures of one tile under ``out`` (see the
    module's docstring); returns the tile truth (``tile_truth.json``).

    The tile is ``tile`` (a name of the sky tiling, e.g. ``MINI_150.00_2.00``) or the centre
    ``ra``, ``dec`` (degrees). ``plan`` gives the calibration counts, exposure time and
    seeing (a :class:`NightPlan`; its science field counts are not used);
    ``stars_per_chip`` the catalogue stars (brighter than :data:`REFCAT_LIMIT`) per chip
    area. The default start date differs from the night and survey simulators' so that their
    files, ingested together, never share a name."""
    plan = plan or NightPlan()
    size: float | None = None
    if tile is not None:
        if ra is not None or dec is not None:
            raise ValueError("give a tile or a centre (ra, dec), not both")
        ra, dec, size = _lookup_tile(tile)
    if ra is None or dec is None:
        raise ValueError("a tile needs its name or its centre: ra and dec in degrees")
    filters = tuple(filters) if filters else (inst.filters[0].name,)
    for f in filters:
        inst.filter(f)  # a KeyError names the camera's filters
    _check(ra, dec, nights, exposures, dither_arcsec, transparency, calib_nights,
           stars_per_chip)
    out.mkdir(parents=True, exist_ok=True)
    field = tile or f"TILE_{ra:.2f}_{dec:.2f}"
    chips = _make_chips(inst, _stream(seed, 0))
    sky_rng = _stream(seed, 1)
    width = inst.chips_x * inst.nx + (inst.chips_x - 1) * inst.gap
    height = inst.chips_y * inst.ny + (inst.chips_y - 1) * inst.gap
    radius = (0.5 * np.hypot(width, height) * inst.pixel_scale + np.sqrt(2) * dither_arcsec
              + 4 * np.sqrt(2) + _MARGIN) / 3600
    if ra - radius / np.cos(np.radians(dec)) < 0 or ra + radius / np.cos(np.radians(dec)) \
            >= 360 or abs(dec) + radius > 89.0:
        raise ValueError(f"the field ({radius * 3600:.0f} arcsec around {ra}, {dec}) crosses "
                         "RA 0h or a pole: a reference catalogue cannot cover it")
    sky = _Sky(sky_rng, ra, dec, radius, _n_stars(inst, radius, stars_per_chip), FAINTEST)
    calibration_nights = sorted(set(calib_nights))
    standard = plan.standard and bool(calibration_nights)
    std_dec = dec - _STANDARD_OFFSET if dec > -80 else dec + _STANDARD_OFFSET
    std_name = f"STD_{ra:.1f}_{std_dec:.1f}"
    std_radius = 0.75 * np.hypot(inst.chips_x * inst.nx, inst.chips_y * inst.ny) \
        * inst.pixel_scale / 3600
    # a standard field is chosen for its many bright stars of known magnitude
    std_sky = _Sky(sky_rng, ra, std_dec, std_radius, plan.stars_per_chip * inst.n_chips, 19.0)
    catalogued = copy.copy(sky)
    bright = sky.mag <= REFCAT_LIMIT
    catalogued.ra, catalogued.dec, catalogued.mag = sky.ra[bright], sky.dec[bright], \
        sky.mag[bright]
    refcat = tile_refcat_name(inst, seed, field)
    skies = {field: catalogued, **({std_name: std_sky} if standard else {})}
    _reference_catalogue(inst, skies, sky_rng, refcat).writeto(out / REFCAT_FILE,
                                                               overwrite=True)
    streak = _Trail.draw(inst, exposures * len(filters), _stream(seed, 3)) if trail else None
    kinds = [k for k, n in (("bias", plan.n_bias), ("dome", plan.n_dome),
                            ("twilight", plan.n_twilight), ("standard", int(standard))) if n]
    night_list: list[dict[str, Any]] = []
    science_truth: list[dict[str, Any]] = []
    tile_info = {"name": tile, "field": field, "ra": ra, "dec": dec, "size": size}
    for i in range(nights):
        number, date = i + 1, start + dt.timedelta(days=i)
        rng = _stream(seed, 2, i)
        night_chips, drifts = _night_chips(chips, bias_drift, rng)
        seeing = plan.seeing * (1 + 0.1 * float(rng.uniform(-1, 1)))
        has_calibrations = number in calibration_nights
        targets = [(std_name, "standard", ra, std_dec)] if has_calibrations and standard else []
        calibrations = schedule(inst, plan, date, has_calibrations, targets, (ra, dec), rng)
        begin = dt.datetime.combine(date, dt.time(20, 0), tzinfo=dt.UTC)
        if targets:
            last = calibrations[-1]
            begin = last.time + dt.timedelta(seconds=last.exptime + 60)
        science = _science_plan(inst, plan, begin, filters, exposures, field, (ra, dec),
                                dither_arcsec, transparency, rng)
        folder = out / date.isoformat()
        folder.mkdir(parents=True, exist_ok=True)
        files = _write_exposures(folder, inst, night_chips, calibrations, skies, seeing, rng,
                                 progress)
        taken = _write_science(folder, inst, night_chips, science, sky,
                               seeing, streak if number == 1 else None, cosmics, rng, progress)
        observed = {field: (ra, dec), **({std_name: (ra, std_dec)} if targets else {})}
        truth = _truth(inst, seed, date, seeing, night_chips, observed,
                       {field: sky, **({std_name: std_sky} if targets else {})},
                       files + taken)
        for chip, base, drift in zip(night_chips, chips, drifts, strict=True):
            truth["chips"][chip.name].update(camera_bias_level=base.bias_level,
                                             bias_drift=drift)
        night_kinds = kinds if has_calibrations else []
        truth["survey"] = {"night": number, "calibrations": night_kinds, "refcat": refcat,
                           "refcat_file": f"../{REFCAT_FILE}",
                           "truth_flats": f"../{FLATS_FILE}"}
        truth["tile"] = {**tile_info, "truth_file": f"../{TILE_TRUTH_FILE}"}
        (folder / "truth.json").write_text(json.dumps(truth, indent=1))
        night_list.append({"night": number, "date": date.isoformat(),
                           "folder": date.isoformat(), "calibrations": night_kinds,
                           "fields": list(observed), "exposures": len(files) + len(taken),
                           "seeing_fwhm_arcsec": seeing})
        science_truth += [{"night": number, "folder": date.isoformat(), **e} for e in taken]
    _truth_flats(chips).writeto(out / FLATS_FILE, overwrite=True)
    survey = {
        "seed": seed, "instrument": inst.name, "style": inst.style,
        "chips": [c.name for c in chips], "start": start.isoformat(), "nights": night_list,
        "calibration_nights": [n["date"] for n in night_list if n["calibrations"]],
        "refcat": {"name": refcat, "file": REFCAT_FILE}, "truth_flats": FLATS_FILE,
        "fields": {field: {"ra": ra, "dec": dec, "kind": "science"},
                   **({std_name: {"ra": ra, "dec": std_dec, "kind": "standard"}}
                      if standard else {})},
        "tile": {**tile_info, "truth_file": TILE_TRUTH_FILE},
    }
    (out / SURVEY_FILE).write_text(json.dumps(survey, indent=1))
    trail_truth = next(({"night": e["night"], "folder": e["folder"], "file": e["file"],
                         "chips": {n: c["trail"] for n, c in e["chips"].items() if c["trail"]}}
                        for e in science_truth if e["trail"]), None)
    truth_all = {
        "tile": tile_info, "seed": seed, "instrument": inst.name, "style": inst.style,
        "pixel_scale": inst.pixel_scale, "filters_observed": list(filters),
        "filters": {f.name: {"zeropoint": f.zeropoint, "extinction": f.extinction,
                             "sky_mag": f.sky_mag} for f in inst.filters},
        "dither_arcsec": dither_arcsec, "transparency": transparency,
        "cosmic_rate_per_pixel_second": COSMIC_RATE if cosmics else 0.0,
        "refcat": {"name": refcat, "file": REFCAT_FILE, "mag_limit": REFCAT_LIMIT},
        "stars": [{"ra": float(a), "dec": float(d), "mag": float(m),
                   "mags": {f.name: float(m) for f in inst.filters},
                   "in_refcat": bool(m <= REFCAT_LIMIT)}
                  for a, d, m in zip(sky.ra, sky.dec, sky.mag, strict=True)],
        "nights": night_list, "exposures": science_truth, "trail": trail_truth,
    }
    (out / TILE_TRUTH_FILE).write_text(json.dumps(truth_all, indent=1))
    return truth_all


def _n_stars(inst: InstrumentSpec, radius: float, per_chip: int) -> int:
    """How many stars (to :data:`FAINTEST`) give ``per_chip`` catalogue stars per chip."""
    chip_area = inst.nx * inst.ny * (inst.pixel_scale / 3600) ** 2
    bright = per_chip * np.pi * radius**2 / chip_area
    lo = 10 ** (0.3 * _BRIGHTEST)
    fraction = (10 ** (0.3 * REFCAT_LIMIT) - lo) / (10 ** (0.3 * FAINTEST) - lo)
    return round(float(bright / fraction))


def _check(ra: float, dec: float, nights: int, exposures: int, dither: float,
           transparency: float, calib_nights: Sequence[int], stars_per_chip: int) -> None:
    if not (0 <= ra < 360 and -90 < dec < 90):
        raise ValueError(f"the centre must be RA 0..360, Dec -90..90 degrees, not {ra}, {dec}")
    if not 1 <= nights <= 100:
        raise ValueError(f"a tile is observed on 1 to 100 nights, not {nights}")
    if not 1 <= exposures <= 100:
        raise ValueError(f"1 to 100 exposures per night and filter, not {exposures}")
    if not 0 <= dither <= 600:
        raise ValueError(f"the dither is 0 to 600 arcsec, not {dither}")
    if not 0 <= transparency <= 2:
        raise ValueError(f"the cloud loss is at most 0 to 2 mag, not {transparency}")
    wrong = sorted(n for n in calib_nights if not 1 <= n <= nights)
    if wrong:
        raise ValueError(f"calibration night(s) {wrong} are not in the survey: nights are "
                         f"numbered 1 to {nights}")
    if not 1 <= stars_per_chip <= 10000:
        raise ValueError(f"1 to 10000 catalogue stars per chip, not {stars_per_chip}")
