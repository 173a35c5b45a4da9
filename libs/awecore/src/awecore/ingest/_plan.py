"""Read one raw multi-extension FITS file and split it into one file per chip.

Each chip's file keeps its pixels exactly as the camera read them (raw data is sacred: no
trimming, no overscan subtraction in storage), with the primary header's cards, the
extension's, and ``DATASEC`` / ``BIASSEC`` (the sections the translator found, in the
stored file's coordinates), so the file alone says how to correct it.
"""

from __future__ import annotations

import hashlib
import io
import warnings
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from astropy.io import fits
from astropy.utils.exceptions import AstropyUserWarning
from astropy.wcs import WCS

from ..errors import InvalidRequest
from ..files import check_name, name_part
from ..pipelines import format_section, overscan_level
from ..tiles import footprint
from ._translate import HeaderTranslator, IncompleteExposure, IngestError, translator_for

__all__ = ["Part", "RawExposure", "check_complete", "raw_name", "read_exposure"]

_STRUCTURAL = {"SIMPLE", "BITPIX", "NAXIS", "NAXIS1", "NAXIS2", "EXTEND", "XTENSION", "PCOUNT",
               "GCOUNT", "BZERO", "BSCALE", "EXTNAME", "CHECKSUM", "DATASUM", "NEXTEND"}


@dataclass
class Part:
    """One chip of an exposure: its file for storage and its catalog object."""

    name: str
    data: bytes
    cls: str
    chip: str | None  # None for what belongs to no chip (a reference catalogue)
    filter: str | None
    attributes: dict[str, Any]
    sha256: str = ""  # of ``data``: the catalogue's checksum of the stored file

    def __post_init__(self) -> None:
        if not self.sha256:
            self.sha256 = hashlib.sha256(self.data).hexdigest()


@dataclass
class RawExposure:
    source: str
    instrument: str
    telescope: str
    parts: list[Part] = field(default_factory=list)
    sha256: str = ""  # of the original file, as it came
    #: whether the Ingester must find every chip the catalogue knows for the instrument
    chips_from_catalogue: bool = False
    #: the number of chips the header declares (in ``count_key``), and their names where
    #: the convention fixes them
    declared_chips: int | None = None
    count_key: str = ""
    expected_chips: list[str] = field(default_factory=list)

    @property
    def size(self) -> int:
        return sum(len(p.data) for p in self.parts)


def _imstat(data: np.ndarray) -> dict[str, float]:
    d = data.astype(np.float32, copy=False)
    return {"mean": float(d.mean()), "median": float(np.median(d)), "stdev": float(d.std()),
            "min": float(d.min()), "max": float(d.max())}


def _stem(original_name: str) -> str:
    name = Path(original_name).name.removesuffix(".fz")
    for suffix in (".fits", ".fit", ".fts"):
        if name.lower().endswith(suffix):
            return name[: -len(suffix)]
    return name


def raw_name(instrument: str, night: str, original_name: str, chip: str) -> str:
    """Where a chip of a raw file is stored: ``raw/<instrument>/<date>/<stem>/<chip>.fits``,
    each part made safe by :func:`awecore.files.name_part` (``CCD 1/A`` -> ``CCD%201%2FA``)."""
    stem = _stem(original_name)
    if not stem:
        raise IngestError(f"{original_name!r} is no file name")
    name = (f"raw/{name_part(instrument)}/{night}/{name_part(stem)}/"
            f"{name_part(chip)}.fits")
    try:
        return check_name(name)
    except InvalidRequest as exc:
        raise IngestError(f"{original_name}: cannot store chip {chip!r}: {exc.detail}") from None


def _sha256(source: Path | bytes) -> str:
    if isinstance(source, bytes):
        return hashlib.sha256(source).hexdigest()
    with source.open("rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


def chip_footprint(header: fits.Header, data: tuple[slice, slice]) -> str | None:
    """The corners of a chip's light-sensitive pixels on the sky by its header's WCS, as
    "ra dec;ra dec;ra dec;ra dec" (degrees): which sky tiles the chip touches, known without
    reading its pixels. None when the header has no celestial WCS."""
    if "CTYPE1" not in header or "CRVAL1" not in header:
        return None
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            wcs = WCS(header, naxis=2)
            if not wcs.has_celestial:
                return None
            rows, cols = data
            return footprint(wcs, cols, rows)
    except (ValueError, KeyError, MemoryError, TypeError):
        return None


def read_exposure(source: Path | bytes, original_name: str) -> RawExposure:
    """Validate and split; raises IngestError with the reason a person can act on. Whether
    every chip is there is for :func:`check_complete` to say."""
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
            raw = source if isinstance(source, bytes) else source.read_bytes()
            return _reference_catalogue(hdul, raw, original_name)
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
        ra, dec = t.ra_dec()
        exposure = RawExposure(original_name, instrument, str(primary.get("TELESCOP", "")),
                               sha256=_sha256(source), chips_from_catalogue=t.chips_from_catalogue)
        for index, hdu in images:
            chip = t.chip(hdu.header, index)
            if hdu.data.ndim != 2:
                raise IngestError(f"{original_name}: extension {index} ({chip}) is not a "
                                  f"2-d image but has shape {hdu.data.shape}")
            try:
                data, bias = t.sections(hdu.header, hdu.data.shape)
            except IngestError as exc:
                raise IngestError(f"{original_name}: extension {index} ({chip}): "
                                  f"{exc.detail}") from None
            header = fits.Header([c for c in primary.cards if c.keyword not in _STRUCTURAL])
            header.extend([c for c in hdu.header.cards if c.keyword not in _STRUCTURAL],
                          update=True)
            header["AWEEXT"] = (index, "extension of the original file")
            header["DATASEC"] = (format_section(data), "light-sensitive pixels")
            if bias is None:
                header.remove("BIASSEC", ignore_missing=True)
            else:
                header["BIASSEC"] = (format_section(bias), "bias (overscan/prescan) pixels")
            buf = io.BytesIO()
            fits.PrimaryHDU(hdu.data, header=header).writeto(buf)
            trimmed = hdu.data[data]
            attributes: dict[str, Any] = {
                "date_obs": when.isoformat(), "exptime": exptime,
                "object": str(primary.get("OBJECT", "")).strip(), "raw_filename": original_name,
                "raw_sha256": exposure.sha256, "extension": index,
                "nx": int(trimmed.shape[1]), "ny": int(trimmed.shape[0]),
                "data_section": format_section(data), "imstat": _imstat(trimmed),
            }
            if bias is not None:
                attributes["overscan_section"] = format_section(bias)
                attributes["overscan_level"] = overscan_level(hdu.data, bias)
            footprint = chip_footprint(hdu.header, data)
            if footprint is not None:
                attributes["footprint"] = footprint
            for key, value in (("ra", ra), ("dec", dec), ("airmass", t.airmass()),
                               ("gain", t.gain(hdu.header))):
                if value is not None:
                    attributes[key] = float(value)
            exposure.parts.append(Part(raw_name(instrument, f"{when:%Y-%m-%d}", original_name,
                                                chip),
                                       buf.getvalue(), raw_class, chip, filt, attributes))
    _check_declared(t, exposure)
    return exposure


def _check_declared(t: HeaderTranslator, exposure: RawExposure) -> None:
    """Each chip once, and, where the convention names the chips (OmegaCAM), those of the
    declared count. The count alone is checked by :func:`check_complete`, with the chips the
    catalogue knows, so that a refusal can name the missing ones."""
    chips = [p.chip for p in exposure.parts if p.chip is not None]
    twice = sorted({c for c in chips if chips.count(c) > 1})
    if twice:
        raise IngestError(f"{exposure.source}: chip(s) {', '.join(twice)} appear more than once")
    count = t.declared_chips()
    exposure.declared_chips, exposure.count_key = count, t.chip_count_key
    names = None if count is None else t.chip_names(count)
    if names is None:
        return
    alien = [c for c in chips if c not in names]
    if alien:
        raise IngestError(f"{exposure.source}: {', '.join(alien)} not among the {count} chips "
                          f"{t.chip_count_key} declares ({names[0]} to {names[-1]})")
    exposure.expected_chips = names


def check_complete(exposure: RawExposure, known: Iterable[str] = ()) -> None:
    """Refuse an exposure that lacks chips of its instrument (:class:`IncompleteExposure`,
    naming them): those its header names, those in ``known`` (the chips the catalogue knows
    for the instrument), and as many as its header declares."""
    chips = [p.chip for p in exposure.parts if p.chip is not None]
    if not chips:
        return
    expected = list(exposure.expected_chips)
    expected += sorted(set(known) - set(expected))
    missing = [c for c in expected if c not in chips]
    count = exposure.declared_chips
    if missing:
        raise IncompleteExposure(
            f"{exposure.source}: incomplete exposure: {exposure.instrument} has "
            f"{max(len(set(expected) | set(chips)), count or 0)} chips, the file holds "
            f"{len(chips)}; missing {', '.join(missing)}",
            [{"missing": missing}])
    if count is not None and len(chips) != count:
        raise IncompleteExposure(
            f"{exposure.source}: incomplete exposure: {exposure.count_key} declares {count} "
            f"chips, the file holds {len(chips)} ({', '.join(chips)})")


def _reference_catalogue(hdul: fits.HDUList, raw: bytes, original_name: str) -> RawExposure:
    """An external star catalogue: a STARS table of RA, DEC (deg) and MAG_<filter> columns,
    optionally an EXTINCTION table (FILTER, EXTINCTION). Stored whole, byte for byte as it
    came."""
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
    exposure = RawExposure(original_name, "", "", sha256=hashlib.sha256(raw).hexdigest())
    exposure.parts.append(Part(stored, raw, "ReferenceCatalog", None, None, {
        "name": name, "n_stars": len(ra), "filters": ",".join(filters),
        "ra_min": float(ra.min()), "ra_max": float(ra.max()),
        "dec_min": float(dec.min()), "dec_max": float(dec.max())}))
    return exposure
