"""A night of raw wide-field data, with the truth it was made from.

Each chip has a bias level and structure, read noise, gain, a flat-field pattern (vignetting,
chip-to-chip and pixel-to-pixel sensitivity), hot pixels (bright in every frame) and cold
pixels (low response). Science and standard fields are stars with known positions and
magnitudes on a sky, seen through a filter with a zeropoint and extinction, through a TAN WCS
per chip of the mosaic. As a telescope does, the headers' WCS carries a pointing error of a
few arcseconds (the truth has the exact one), so astrometry has work to do. Beside the night
lies ``refcat.fits``, a reference catalogue of the fields' stars (positions with a few tens of
milliarcseconds of error, magnitudes per filter, the site's extinction per filter) as an
external catalogue would provide it, named by :func:`refcat_name`. Everything is drawn from
one seeded generator: the same seed gives the same night, byte for byte.

Pixels are written as the camera reads them out: unsigned 16-bit (stored, as FITS does, as
signed integers with ``BZERO = 32768``), with the camera's prescan columns on the left and
overscan columns on the right of the light-sensitive ones (both hold the bias level and read
noise, no light, no hot pixels), declared in the camera's own keywords (see
:mod:`awecore.sim._instrument`). Each chip's WCS refers to the raw columns. The truth's pixel
positions (hot and cold pixels, the flat arrays of ``truth_flats.fits``) are on the trimmed
image, the data section; ``truth.json`` gives each chip's sections in raw coordinates.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from astropy import units as u
from astropy.coordinates import Angle
from astropy.io import fits
from astropy.wcs import WCS

from ..files import name_part
from ._instrument import FilterSpec, InstrumentSpec

__all__ = ["OBSTYPE", "REFCAT_NAME", "Exposure", "NightPlan", "refcat_name", "sections",
           "simulate_night", "true_wcs"]

SATURATION = 65535
REFCAT_NAME = "AWE-SIM-REF"
REFCAT_POSITION_ERROR = 0.015  # arcsec per coordinate
REFCAT_MAG_ERROR = 0.005
DPR_TYPE = {"bias": "BIAS", "dome": "FLAT,DOME", "twilight": "FLAT,SKY", "science": "OBJECT",
            "standard": "STD"}
#: the widecam's OBSTYPE values (NOAO/IRAF-like)
OBSTYPE = {"bias": "zero", "dome": "dome flat", "twilight": "sky flat", "science": "object",
           "standard": "standard"}


@dataclass
class ChipTruth:
    name: str
    bias_level: float
    bias_slope: float  # ADU across the chip in x: the bias structure
    read_noise: float  # ADU
    gain: float  # e-/ADU
    flat: np.ndarray
    hot: np.ndarray  # (n, 2) y, x
    cold: np.ndarray

    def to_json(self, inst: InstrumentSpec) -> dict[str, Any]:
        """The chip's truth; pixel positions (y, x) on the trimmed image (data section)."""
        data, overscan = sections(inst)
        return {"bias_level": self.bias_level, "bias_slope": self.bias_slope,
                "read_noise": self.read_noise, "gain": self.gain,
                "hot_pixels": self.hot.tolist(), "cold_pixels": self.cold.tolist(),
                "nx": inst.nx, "ny": inst.ny, "raw_nx": inst.raw_nx, "raw_ny": inst.ny,
                "prescan_x": inst.prescan_x, "overscan_x": inst.overscan_x,
                "data_section": data, "overscan_section": overscan}


def sections(inst: InstrumentSpec) -> tuple[str, str | None]:
    """The data section and the bias section (overscan, else prescan) of a raw extension,
    ``[x1:x2,y1:y2]``, 1-based, inclusive, in raw columns."""
    data = f"[{inst.prescan_x + 1}:{inst.prescan_x + inst.nx},1:{inst.ny}]"
    if inst.overscan_x:
        return data, f"[{inst.raw_nx - inst.overscan_x + 1}:{inst.raw_nx},1:{inst.ny}]"
    if inst.prescan_x:
        return data, f"[1:{inst.prescan_x},1:{inst.ny}]"
    return data, None


@dataclass
class Exposure:
    kind: str  # bias, dome, twilight, science, standard
    time: dt.datetime
    exptime: float
    filter: str | None = None
    field: str | None = None
    ra: float = 0.0
    dec: float = 0.0
    airmass: float = 1.0
    pointing_error: tuple[float, float] = (0.0, 0.0)  # arcsec, east and north, in the header

    def filename(self, instrument: InstrumentSpec) -> str:
        return f"{instrument.prefix}.{self.time.strftime('%Y-%m-%dT%H:%M:%S.%f')[:-3]}.fits"


@dataclass
class NightPlan:
    n_bias: int = 10
    n_dome: int = 5
    n_twilight: int = 5
    science_fields: int = 2
    exposures_per_field: int = 2
    science_exptime: float = 300.0
    standard: bool = True
    seeing: float = 0.9  # arcsec FWHM
    stars_per_chip: int = 40


def refcat_name(inst: InstrumentSpec, seed: int) -> str:
    """The reference catalogue's name: ``AWE-SIM-REF-<seed>`` for the simulator's own camera,
    ``AWE-SIM-REF-<file prefix>-<seed>`` for the others, so that nights of two cameras with
    one seed (other stars) do not claim one name."""
    if inst.style == "awe":
        return f"{REFCAT_NAME}-{seed}"
    return f"{REFCAT_NAME}-{name_part(inst.prefix)}-{seed}"


class _Sky:
    """Stars of one field: positions on the sky and magnitudes."""

    def __init__(self, rng: np.random.Generator, ra: float, dec: float, radius: float,
                 n: int, faintest: float = 23.0) -> None:
        r = radius * np.sqrt(rng.uniform(0, 1, n))
        theta = rng.uniform(0, 2 * np.pi, n)
        self.dec = dec + r * np.sin(theta)
        self.ra = ra + r * np.cos(theta) / np.cos(np.radians(dec))
        # n(m) ~ 10^(0.3 m) between 16 and the faintest: inverse transform sampling
        lo, hi = 10 ** (0.3 * 16), 10 ** (0.3 * faintest)
        self.mag = np.log10(rng.uniform(lo, hi, n)) / 0.3

    def to_json(self) -> list[dict[str, float]]:
        return [{"ra": float(a), "dec": float(d), "mag": float(m)}
                for a, d, m in zip(self.ra, self.dec, self.mag, strict=True)]


def _chip_wcs(inst: InstrumentSpec, index: int, ra: float, dec: float) -> WCS:
    cx, cy = index % inst.chips_x, index // inst.chips_x
    width = inst.chips_x * inst.nx + (inst.chips_x - 1) * inst.gap
    height = inst.chips_y * inst.ny + (inst.chips_y - 1) * inst.gap
    x0, y0 = cx * (inst.nx + inst.gap), cy * (inst.ny + inst.gap)
    w = WCS(naxis=2)
    w.wcs.ctype = ["RA---TAN", "DEC--TAN"]
    w.wcs.crval = [ra, dec]
    w.wcs.crpix = [width / 2 - x0 + 0.5, height / 2 - y0 + 0.5]
    scale = inst.pixel_scale / 3600
    w.wcs.cd = [[-scale, 0.0], [0.0, scale]]
    return w


def _make_chips(inst: InstrumentSpec, rng: np.random.Generator) -> list[ChipTruth]:
    chips = []
    yy, xx = np.mgrid[0:inst.ny, 0:inst.nx]
    width = inst.chips_x * (inst.nx + inst.gap)
    height = inst.chips_y * (inst.ny + inst.gap)
    n_bad = max(3, inst.nx * inst.ny // 2000)
    for i in range(inst.n_chips):
        cx, cy = i % inst.chips_x, i // inst.chips_x
        gx = (xx + cx * (inst.nx + inst.gap)) / width - 0.5
        gy = (yy + cy * (inst.ny + inst.gap)) / height - 0.5
        vignetting = 1 - 0.15 * (gx**2 + gy**2)
        flat = vignetting * rng.uniform(0.95, 1.05) * (1 + 0.01 * rng.standard_normal(xx.shape))
        flat /= flat.mean()
        bad = rng.choice(inst.nx * inst.ny, size=2 * n_bad, replace=False)
        hot = np.column_stack(np.unravel_index(bad[:n_bad], flat.shape))
        cold = np.column_stack(np.unravel_index(bad[n_bad:], flat.shape))
        flat[cold[:, 0], cold[:, 1]] *= 0.2
        chips.append(ChipTruth(inst.chip_name(i), float(rng.uniform(400, 600)),
                               float(rng.uniform(-3, 3)), float(rng.uniform(3.0, 6.0)),
                               float(rng.uniform(1.8, 2.4)), flat.astype(np.float32), hot, cold))
    return chips


def _render(inst: InstrumentSpec, chip: ChipTruth, electrons: np.ndarray,
            rng: np.random.Generator) -> np.ndarray:
    """Electrons on the chip -> ADU as read out: shot noise, gain, bias, read noise, hot;
    then the prescan and overscan columns (bias level and read noise only) either side."""
    shot = rng.poisson(np.clip(electrons, 0, None)).astype(np.float64)
    x = np.arange(inst.nx) / inst.nx
    adu = shot / chip.gain + chip.bias_level + chip.bias_slope * x[None, :]
    adu += rng.normal(0.0, chip.read_noise, adu.shape)
    adu[chip.hot[:, 0], chip.hot[:, 1]] += 3000.0
    if inst.prescan_x or inst.overscan_x:
        bias = chip.bias_level + rng.normal(0.0, chip.read_noise,
                                            (inst.ny, inst.prescan_x + inst.overscan_x))
        adu = np.hstack([bias[:, :inst.prescan_x], adu, bias[:, inst.prescan_x:]])
    out: np.ndarray = np.clip(np.rint(adu), 0, SATURATION).astype(np.uint16)
    return out


def _stars(inst: InstrumentSpec, sky: _Sky, wcs: WCS, filt: FilterSpec, exp: Exposure,
           fwhm_pix: float) -> np.ndarray:
    image = np.zeros((inst.ny, inst.nx))
    x, y = wcs.world_to_pixel_values(sky.ra, sky.dec)
    flux = 10 ** (-0.4 * (sky.mag + filt.extinction * exp.airmass - filt.zeropoint)) * exp.exptime
    sigma = fwhm_pix / 2.3548
    half = int(np.ceil(5 * sigma))
    inside = (x > -half) & (x < inst.nx + half) & (y > -half) & (y < inst.ny + half)
    for xs, ys, f in zip(x[inside], y[inside], flux[inside], strict=True):
        x0, y0 = round(xs), round(ys)
        xa, xb = max(0, x0 - half), min(inst.nx, x0 + half + 1)
        ya, yb = max(0, y0 - half), min(inst.ny, y0 + half + 1)
        if xa >= xb or ya >= yb:
            continue
        gy, gx = np.mgrid[ya:yb, xa:xb]
        image[ya:yb, xa:xb] += f / (2 * np.pi * sigma**2) * np.exp(
            -((gx - xs) ** 2 + (gy - ys) ** 2) / (2 * sigma**2))
    return image


def _primary(inst: InstrumentSpec, exp: Exposure) -> fits.Header:
    h = fits.Header()
    h["INSTRUME"] = inst.name
    h["TELESCOP"] = inst.telescope
    h["DATE-OBS"] = exp.time.strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3]
    h["MJD-OBS"] = (exp.time - dt.datetime(1858, 11, 17, tzinfo=dt.UTC)).total_seconds() / 86400
    h["EXPTIME"] = exp.exptime
    h["RA"] = (exp.ra, "pointing RA (deg)")
    h["DEC"] = (exp.dec, "pointing Dec (deg)")
    if inst.style == "omegacam":
        h["OBJECT"] = exp.field or DPR_TYPE[exp.kind]
        h["HIERARCH ESO DPR TYPE"] = DPR_TYPE[exp.kind]
        h["HIERARCH ESO DPR CATG"] = "SCIENCE" if exp.kind == "science" else "CALIB"
        h["HIERARCH ESO INS FILT1 NAME"] = exp.filter or "NONE"
        h["HIERARCH ESO TEL AIRM START"] = exp.airmass
        h["HIERARCH ESO DET CHIPS"] = (inst.n_chips, "number of chips in the mosaic")
    elif inst.style == "widecam":
        # NOAO-like: the pointing sexagesimal, RA in hours
        h["RA"] = (Angle(exp.ra, u.deg).to_string(unit=u.hour, sep=":", precision=2, pad=True),
                   "pointing RA (hours)")
        h["DEC"] = (Angle(exp.dec, u.deg).to_string(unit=u.deg, sep=":", precision=1,
                                                    pad=True, alwayssign=True),
                    "pointing Dec (degrees)")
        h["OBJECT"] = exp.field or OBSTYPE[exp.kind]
        h["OBSTYPE"] = OBSTYPE[exp.kind]
        h["FILTER1"] = exp.filter or "none"
        h["AIRMASS"] = exp.airmass
        h["NEXTEND"] = (inst.n_chips, "number of extensions: one per chip")
    else:
        h["OBJECT"] = exp.field or DPR_TYPE[exp.kind]
        h["IMAGETYP"] = DPR_TYPE[exp.kind]
        h["FILTER"] = exp.filter or "NONE"
        h["AIRMASS"] = exp.airmass
        h["NCHIPS"] = (inst.n_chips, "number of chips in the mosaic")
    h["ORIGFILE"] = exp.filename(inst)
    return h


def _schedule(inst: InstrumentSpec, plan: NightPlan, date: dt.date,
              rng: np.random.Generator) -> tuple[list[Exposure], dict[str, tuple[float, float]]]:
    fields = {f"KIDS_{150 + i}.0_-{30 + i}.0": (150.0 + i, -30.0 - i)
              for i in range(plan.science_fields)}
    if plan.standard:
        fields["SA98"] = (102.9, -0.3)
    targets = [(name, "standard" if name == "SA98" else "science", ra, dec)
               for name, (ra, dec) in fields.items()]
    return schedule(inst, plan, date, True, targets, (150.0, -30.0), rng), fields


def schedule(inst: InstrumentSpec, plan: NightPlan, date: dt.date, calibrations: bool,
             targets: list[tuple[str, str, float, float]], twilight_at: tuple[float, float],
             rng: np.random.Generator) -> list[Exposure]:
    """One night: calibrations from 17:00 UTC if it has them, then its ``targets`` (name,
    kind, RA, Dec) from 20:00, as a night of :func:`simulate_night` or of a survey is
    scheduled."""
    t = dt.datetime.combine(date, dt.time(17, 0), tzinfo=dt.UTC)
    step = dt.timedelta(minutes=2)
    out: list[Exposure] = []
    if calibrations:
        for _ in range(plan.n_bias):
            out.append(Exposure("bias", t, 0.0))
            t += step
        for f in inst.filters:
            for _ in range(plan.n_dome):
                out.append(Exposure("dome", t, 10.0, f.name))
                t += step
        for f in inst.filters:
            for _ in range(plan.n_twilight):
                out.append(Exposure("twilight", t, 5.0, f.name, "twilight", *twilight_at, 1.1))
                t += step
    t = dt.datetime.combine(date, dt.time(20, 0), tzinfo=dt.UTC)
    for name, kind, ra, dec in targets:
        for f in inst.filters:
            for _ in range(1 if kind == "standard" else plan.exposures_per_field):
                airmass = float(rng.uniform(1.05, 1.6))
                exptime = 30.0 if kind == "standard" else plan.science_exptime
                error = (float(rng.uniform(-4, 4)), float(rng.uniform(-4, 4)))
                out.append(Exposure(kind, t, exptime, f.name, name, ra, dec, airmass, error))
                t += dt.timedelta(seconds=exptime + 60)
    return out


def simulate_night(out: Path, inst: InstrumentSpec, seed: int = 1, date: dt.date | None = None,
                   plan: NightPlan | None = None,
                   progress: Callable[[str], None] | None = None) -> dict[str, Any]:
    """Write the night's raw files and ``truth.json`` under ``out``; returns the truth."""
    plan = plan or NightPlan()
    date = date or dt.date(2003, 2, 14)
    rng = np.random.default_rng(seed)
    out.mkdir(parents=True, exist_ok=True)
    chips = _make_chips(inst, rng)
    exposures, fields = _schedule(inst, plan, date, rng)
    field_radius = 0.75 * np.hypot(inst.chips_x * inst.nx, inst.chips_y * inst.ny) \
        * inst.pixel_scale / 3600
    # a standard field is chosen for its many bright stars of known magnitude
    skies = {name: _Sky(rng, ra, dec, field_radius, plan.stars_per_chip * inst.n_chips,
                        faintest=19.0 if name == "SA98" else 23.0)
             for name, (ra, dec) in fields.items()}
    files = _write_exposures(out, inst, chips, exposures, skies, plan.seeing, rng, progress)
    truth = _truth(inst, seed, date, plan.seeing, chips, fields, skies, files)
    (out / "truth.json").write_text(json.dumps(truth, indent=1))
    if skies:  # a night of calibrations alone has no fields to catalogue
        _reference_catalogue(inst, skies, rng, refcat_name(inst, seed)).writeto(
            out / "refcat.fits", overwrite=True)
    _truth_flats(chips).writeto(out / "truth_flats.fits", overwrite=True)
    return truth


def _write_exposures(out: Path, inst: InstrumentSpec, chips: list[ChipTruth],
                     exposures: list[Exposure], skies: dict[str, _Sky], seeing: float,
                     rng: np.random.Generator,
                     progress: Callable[[str], None] | None) -> list[dict[str, Any]]:
    """Write each exposure's raw file under ``out``; returns what the truth says of each.
    Shared by the night and the survey simulator, so both write the same kind of files."""
    fwhm_pix = seeing / inst.pixel_scale
    files = []
    for exp in exposures:
        hdus: list[fits.PrimaryHDU | fits.ImageHDU] = [fits.PrimaryHDU(header=_primary(inst, exp))]
        for i, chip in enumerate(chips):
            electrons = _electrons(inst, chip, exp, skies, i, fwhm_pix, rng)
            hdu = fits.ImageHDU(_render(inst, chip, electrons, rng))
            _chip_header(inst, hdu.header, i, chip, exp)
            hdus.append(hdu)
        name = exp.filename(inst)
        fits.HDUList(hdus).writeto(out / name, overwrite=True)
        files.append({"file": name, "type": exp.kind, "filter": exp.filter,
                      "exptime": exp.exptime, "airmass": exp.airmass, "field": exp.field,
                      "date_obs": exp.time.isoformat(),
                      "pointing_error_arcsec": list(exp.pointing_error)})
        if progress:
            progress(name)
    return files


def _truth(inst: InstrumentSpec, seed: int, date: dt.date, seeing: float,
           chips: list[ChipTruth], fields: dict[str, tuple[float, float]],
           skies: dict[str, _Sky], files: list[dict[str, Any]]) -> dict[str, Any]:
    """A night's ``truth.json``: the camera, the filters, the fields' stars, the exposures."""
    return {
        "seed": seed, "date": date.isoformat(), "instrument": inst.name, "style": inst.style,
        "pixel_scale": inst.pixel_scale, "seeing_fwhm_arcsec": seeing,
        "saturation": SATURATION,
        "prescan_x": inst.prescan_x, "overscan_x": inst.overscan_x,
        "chips": {c.name: c.to_json(inst) for c in chips},
        "filters": {f.name: {"zeropoint": f.zeropoint, "extinction": f.extinction,
                             "sky_mag": f.sky_mag} for f in inst.filters},
        "fields": {n: {"ra": fields[n][0], "dec": fields[n][1], "stars": s.to_json()}
                   for n, s in skies.items()},
        "exposures": files,
    }


def _truth_flats(chips: list[ChipTruth]) -> fits.HDUList:
    """The chips' true flat fields, one extension per chip (on the trimmed image)."""
    return fits.HDUList([fits.PrimaryHDU()]
                        + [fits.ImageHDU(c.flat, name=c.name) for c in chips])


def _electrons(inst: InstrumentSpec, chip: ChipTruth, exp: Exposure, skies: dict[str, _Sky],
               index: int, fwhm_pix: float, rng: np.random.Generator) -> np.ndarray:
    shape = (inst.ny, inst.nx)
    if exp.kind == "bias":
        return np.zeros(shape)
    if exp.kind == "dome":
        return chip.flat * 20000.0 * rng.uniform(0.97, 1.03)
    if exp.kind == "twilight":
        x = np.linspace(-0.5, 0.5, inst.nx)[None, :]
        return chip.flat * 15000.0 * (1 + 0.002 * x) * rng.uniform(0.9, 1.1)
    assert exp.filter is not None and exp.field is not None
    filt = inst.filter(exp.filter)
    wcs = _chip_wcs(inst, index, exp.ra, exp.dec)
    sky_e = 10 ** (-0.4 * (filt.sky_mag - filt.zeropoint)) * inst.pixel_scale**2 * exp.exptime
    image = sky_e + _stars(inst, skies[exp.field], wcs, filt, exp, fwhm_pix)
    return chip.flat * image


def _reference_catalogue(inst: InstrumentSpec, skies: dict[str, _Sky],
                         rng: np.random.Generator, name: str) -> fits.HDUList:
    """Every field's stars as an external catalogue gives them: with its own errors."""
    ra = np.concatenate([s.ra for s in skies.values()])
    dec = np.concatenate([s.dec for s in skies.values()])
    mag = np.concatenate([s.mag for s in skies.values()])
    sigma = REFCAT_POSITION_ERROR / 3600
    columns = [fits.Column("RA", "D", "deg", array=ra + rng.normal(0, sigma, len(ra))
                           / np.cos(np.radians(dec))),
               fits.Column("DEC", "D", "deg", array=dec + rng.normal(0, sigma, len(ra)))]
    for f in inst.filters:  # the simulator's stars are grey: one magnitude in every filter
        columns.append(fits.Column(f"MAG_{f.name}", "E", "mag",
                                   array=mag + rng.normal(0, REFCAT_MAG_ERROR, len(ra))))
    primary = fits.PrimaryHDU()
    primary.header["REFCAT"] = (name, "reference catalogue name")
    extinction = fits.BinTableHDU.from_columns(
        [fits.Column("FILTER", "16A", array=[f.name for f in inst.filters]),
         fits.Column("EXTINCTION", "E", "mag/airmass", array=[f.extinction for f in inst.filters])],
        name="EXTINCTION")
    return fits.HDUList([primary, fits.BinTableHDU.from_columns(columns, name="STARS"),
                         extinction])


def true_wcs(header: fits.Header, exposure: dict[str, Any]) -> WCS:
    """The exact WCS of a simulated chip: its header's, less the pointing error."""
    wcs = WCS(header)
    east, north = exposure.get("pointing_error_arcsec", (0.0, 0.0))
    ra, dec = wcs.wcs.crval
    wcs.wcs.crval = [ra - east / 3600 / np.cos(np.radians(dec)), dec - north / 3600]
    return wcs


def _chip_header(inst: InstrumentSpec, h: fits.Header, index: int, chip: ChipTruth,
                 exp: Exposure) -> None:
    if inst.style == "omegacam":
        h["EXTNAME"] = chip.name
        h["HIERARCH ESO DET CHIP1 ID"] = chip.name
        h["HIERARCH ESO DET OUT1 CONAD"] = (chip.gain, "e-/ADU")
        h["HIERARCH ESO DET OUT1 PRSCX"] = (inst.prescan_x, "prescan columns (left)")
        h["HIERARCH ESO DET OUT1 OVSCX"] = (inst.overscan_x, "overscan columns (right)")
    elif inst.style == "widecam":
        data, bias = sections(inst)
        h["EXTNAME"] = chip.name
        h["DETNAME"] = chip.name
        h["EGAIN"] = (chip.gain, "e-/ADU")
        h["DATASEC"] = (data, "light-sensitive pixels")
        if bias is not None:
            h["BIASSEC"] = (bias, "bias (prescan/overscan) pixels")
    else:
        h["EXTNAME"] = f"CCD_{index}"
        h["CHIPID"] = chip.name
        h["GAIN"] = (chip.gain, "e-/ADU")
    if exp.kind in ("science", "standard"):
        east, north = exp.pointing_error
        dec = exp.dec + north / 3600
        wcs = _chip_wcs(inst, index, exp.ra + east / 3600 / np.cos(np.radians(dec)), dec)
        wcs.wcs.crpix[0] += inst.prescan_x  # the header's WCS is on the raw columns
        h.update(wcs.to_header())
