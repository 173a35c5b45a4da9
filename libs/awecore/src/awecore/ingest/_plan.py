"""Read one raw multi-extension FITS file and split it into one file per chip."""

from __future__ import annotations

import io
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from astropy.io import fits
from astropy.utils.exceptions import AstropyUserWarning

from ..errors import InvalidRequest
from ..files import check_name
from ._translate import IngestError, translator_for

__all__ = ["Part", "RawExposure", "read_exposure"]

_STRUCTURAL = {"SIMPLE", "BITPIX", "NAXIS", "NAXIS1", "NAXIS2", "EXTEND", "XTENSION", "PCOUNT",
               "GCOUNT", "BZERO", "BSCALE", "EXTNAME", "CHECKSUM", "DATASUM"}


@dataclass
class Part:
    """One chip of an exposure: its file for storage and its catalog object."""

    name: str
    data: bytes
    cls: str
    chip: str | None  # None for what belongs to no chip (a reference catalogue)
    filter: str | None
    attributes: dict[str, Any]


@dataclass
class RawExposure:
    source: str
    instrument: str
    telescope: str
    parts: list[Part] = field(default_factory=list)

    @property
    def size(self) -> int:
        return sum(len(p.data) for p in self.parts)


def _imstat(data: np.ndarray) -> dict[str, float]:
    d = data.astype(np.float32, copy=False)
    return {"mean": float(d.mean()), "median": float(np.median(d)), "stdev": float(d.std()),
            "min": float(d.min()), "max": float(d.max())}


def read_exposure(source: Path | bytes, original_name: str) -> RawExposure:
    """Validate and split; raises IngestError with the reason a person can act on."""
    with warnings.catch_warnings():
        # astropy only warns about a short file; for raw data that is an error
        warnings.simplefilter("error", AstropyUserWarning)
        try:
            hdul = fits.open(io.BytesIO(source) if isinstance(source, bytes) else source,
                             memmap=False, lazy_load_hdus=False)
        except AstropyUserWarning as exc:
            raise IngestError(f"{original_name}: truncated FITS ({exc})") from None
        except (OSError, ValueError, TypeError) as exc:
            raise IngestError(f"{original_name}: not a readable FITS file ({exc})") from None
    with hdul:
        if "REFCAT" in hdul[0].header:
            return _reference_catalogue(hdul, original_name)
        try:
            hdul.verify("exception")
            images = [(i, h) for i, h in enumerate(hdul[1:], start=1) if h.data is not None]
        except (OSError, ValueError, TypeError, fits.VerifyError) as exc:
            raise IngestError(f"{original_name}: damaged or truncated FITS ({exc})") from None
        primary = hdul[0].header
        t = translator_for(primary)
        raw_class, filt, when, exptime = t.raw_class(), t.filter(), t.date_obs(), t.exptime()
        if raw_class != "RawBiasFrame" and filt is None:
            raise IngestError(f"{original_name}: a {raw_class} needs a filter in {t.filter_key}")
        if not images:
            raise IngestError(f"{original_name}: no image extensions (one per chip expected)")
        instrument = str(primary["INSTRUME"]).strip()
        stem = Path(original_name).name.removesuffix(".fz").removesuffix(".fits")
        exposure = RawExposure(original_name, instrument, str(primary.get("TELESCOP", "")))
        for index, hdu in images:
            chip = t.chip(hdu.header, index)
            header = fits.Header([c for c in primary.cards if c.keyword not in _STRUCTURAL])
            header.extend([c for c in hdu.header.cards if c.keyword not in _STRUCTURAL],
                          update=True)
            header["AWEEXT"] = (index, "extension of the original file")
            buf = io.BytesIO()
            fits.PrimaryHDU(hdu.data, header=header).writeto(buf)
            name = f"raw/{instrument}/{when:%Y-%m-%d}/{stem}/{chip.replace('#', '')}.fits"
            attributes: dict[str, Any] = {
                "date_obs": when.isoformat(), "exptime": exptime,
                "object": str(primary.get("OBJECT", "")).strip(), "raw_filename": original_name,
                "extension": index, "nx": int(hdu.data.shape[1]), "ny": int(hdu.data.shape[0]),
                "imstat": _imstat(hdu.data),
            }
            for key, value in (("ra", primary.get("RA")), ("dec", primary.get("DEC")),
                               ("airmass", t.airmass()), ("gain", t.gain(hdu.header))):
                if value is not None:
                    attributes[key] = float(value)
            exposure.parts.append(Part(name, buf.getvalue(), raw_class, chip, filt, attributes))
    return exposure


def _reference_catalogue(hdul: fits.HDUList, original_name: str) -> RawExposure:
    """An external star catalogue: a STARS table of RA, DEC (deg) and MAG_<filter> columns,
    optionally an EXTINCTION table (FILTER, EXTINCTION). Stored whole, as it came."""
    name = str(hdul[0].header["REFCAT"]).strip()
    stem = Path(original_name).name.removesuffix(".fits")
    stored = f"raw/refcat/{name}/{stem}.fits"
    try:
        check_name(stored)
        hdul.verify("exception")
    except InvalidRequest as exc:
        raise IngestError(f"{original_name}: REFCAT {name!r} cannot name a catalogue "
                          f"(letters, digits and . _ - only): {exc.detail}") from None
    except fits.VerifyError as exc:
        raise IngestError(f"{original_name}: damaged FITS header ({exc})") from None
    try:
        stars = hdul["STARS"]
    except KeyError:
        stars = None
    if not isinstance(stars, fits.BinTableHDU) or not {"RA", "DEC"} <= set(
            stars.columns.names):
        raise IngestError(f"{original_name}: a reference catalogue needs a STARS table with "
                          "RA and DEC columns in degrees")
    ra = np.mod(np.asarray(stars.data["RA"], dtype=np.float64), 360.0)
    dec = np.asarray(stars.data["DEC"], dtype=np.float64)
    if len(ra) == 0 or not (np.isfinite(ra).all() and np.isfinite(dec).all()
                            and (np.abs(dec) <= 90).all()):
        raise IngestError(f"{original_name}: the STARS table is empty or has positions "
                          "outside the sky")
    if ra.max() - ra.min() > 180 and np.ptp(np.mod(ra + 180, 360)) < 180:
        raise IngestError(f"{original_name}: the catalogue crosses RA 0h; split it in two, "
                          "one on each side, so that each covers an RA range")
    filters = [c.removeprefix("MAG_") for c in stars.columns.names if c.startswith("MAG_")]
    buf = io.BytesIO()
    hdul.writeto(buf)
    exposure = RawExposure(original_name, "", "")
    exposure.parts.append(Part(stored, buf.getvalue(), "ReferenceCatalog", None, None, {
        "name": name, "n_stars": len(ra), "filters": ",".join(filters),
        "ra_min": float(ra.min()), "ra_max": float(ra.max()),
        "dec_min": float(dec.min()), "dec_max": float(dec.max())}))
    return exposure
