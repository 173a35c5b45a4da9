"""Header translators: each camera says the same things with its own keywords.

A translator turns one camera's headers into the few facts ingest needs: what kind of
exposure, which filter, which chip, when, how long, where, with which gain, where on each
extension the light-sensitive pixels are and where the bias (overscan or prescan) columns
are, and which chips a complete exposure has.

The chip list of an instrument (what makes an exposure complete) comes from two places:

* the header, where the camera declares it: a count of chips in the primary header
  (OmegaCAM's ``HIERARCH ESO DET CHIPS``, NOAO's ``NEXTEND``, the simulator's ``NCHIPS``),
  and, where the convention names the chips by their number (OmegaCAM: ``ESO_CCD_#65`` on),
  their names (:meth:`HeaderTranslator.chip_names`);
* the catalogue: the chips registered for the instrument by earlier ingests (``Chip``
  objects referring to its ``Instrument``), where :attr:`HeaderTranslator.chips_from_catalogue`
  says so: not for the simulator's own camera, whose presets (``tiny``, ``small``) are
  mosaics of different sizes under the one name ``AWECAM`` (for it the declared count is the
  check).

An exposure must hold every chip of both lists, and as many as its header declares;
:func:`~awecore.ingest.check_complete` refuses it otherwise (:class:`IncompleteExposure`,
naming the missing chips), and the Ingester applies it to every file before anything is
stored. A chip the header's names do not include is refused by ``read_exposure``.
"""

from __future__ import annotations

import datetime as dt
from typing import ClassVar

import numpy as np
from astropy import units as u
from astropy.coordinates import Angle
from astropy.io import fits

from ..errors import Conflict, InvalidRequest
from ..pipelines import Section, parse_section, section_from_counts

__all__ = ["KIND_CLASSES", "AweTranslator", "DuplicateRawFile", "HeaderTranslator",
           "IncompleteExposure", "IngestError", "NameTaken", "OmegaCamTranslator",
           "WideCamTranslator", "translator_for"]

#: Observation type -> the raw class it becomes (ESO's DPR TYPE and the simulator's IMAGETYP).
KIND_CLASSES = {"BIAS": "RawBiasFrame", "FLAT,DOME": "RawDomeFlatFrame",
                "FLAT,SKY": "RawTwilightFlatFrame", "OBJECT": "RawScienceFrame",
                "STD": "RawStandardFrame"}


class IngestError(InvalidRequest):
    error = "invalid_raw_file"
    title = "File cannot be ingested"


class IncompleteExposure(IngestError):
    """The file lacks chips the instrument has (a copy cut short at an extension)."""

    error = "incomplete_exposure"
    title = "Incomplete exposure"


class NameTaken(Conflict):
    """A raw file of that name is in the archive already, with other content."""

    error = "raw_name_taken"
    title = "Another raw file has this name"


class DuplicateRawFile(Conflict):
    """The very same bytes are in the archive already, under another name."""

    error = "duplicate_raw_file"
    title = "Raw file already ingested under another name"


class HeaderTranslator:
    instruments: ClassVar[tuple[str, ...]] = ()
    type_key: ClassVar[str] = ""
    #: observation type as the header writes it (upper-cased) -> raw class
    kinds: ClassVar[dict[str, str]] = KIND_CLASSES
    filter_key: ClassVar[str] = ""
    airmass_key: ClassVar[str] = ""
    gain_key: ClassVar[str] = ""
    #: primary-header keyword with the number of chips of the mosaic ("" if none)
    chip_count_key: ClassVar[str] = ""
    #: whether an exposure must hold every chip the catalogue knows for the instrument
    chips_from_catalogue: ClassVar[bool] = True

    def __init__(self, primary: fits.Header) -> None:
        self.primary = primary

    def _get(self, key: str, what: str) -> str:
        value = self.primary.get(key)
        if value is None or str(value).strip() == "":
            raise IngestError(f"missing {key} ({what}) in the primary header")
        return str(value).strip()

    def raw_class(self) -> str:
        kind = self._get(self.type_key, "observation type").upper()
        if kind not in self.kinds:
            raise IngestError(f"unknown observation type {kind!r} in {self.type_key}; "
                              f"expected one of {sorted(self.kinds)}")
        return self.kinds[kind]

    def filter(self) -> str | None:
        value = str(self.primary.get(self.filter_key, "")).strip()
        return None if value.upper() in ("", "NONE", "FREE", "EMPTY") else value

    def date_obs(self) -> dt.datetime:
        raw = self._get("DATE-OBS", "start of exposure")
        try:
            when = dt.datetime.fromisoformat(raw)
        except ValueError:
            raise IngestError(f"DATE-OBS {raw!r} is not ISO 8601") from None
        return when if when.tzinfo else when.replace(tzinfo=dt.UTC)

    def exptime(self) -> float:
        try:
            return float(self._get("EXPTIME", "exposure time"))
        except ValueError:
            raise IngestError("EXPTIME is not a number") from None

    def _float(self, key: str) -> float | None:
        value = self.primary.get(key)
        if value is None:
            return None
        try:
            return float(value)
        except (TypeError, ValueError):
            raise IngestError(f"{key} = {value!r} is not a number") from None

    def airmass(self) -> float | None:
        return self._float(self.airmass_key)

    def ra_dec(self) -> tuple[float | None, float | None]:
        """The pointing in degrees (``RA``/``DEC`` in degrees by default)."""
        return self._float("RA"), self._float("DEC")

    def chip(self, ext: fits.Header, index: int) -> str:
        raise NotImplementedError

    def gain(self, ext: fits.Header) -> float | None:
        value = ext.get(self.gain_key)
        if value is None:
            return None
        try:
            return float(value)
        except (TypeError, ValueError):
            raise IngestError(f"{self.gain_key} = {value!r} is not a number") from None

    def sections(self, ext: fits.Header, shape: tuple[int, ...]) -> tuple[Section,
                                                                          Section | None]:
        """The data section and the bias (overscan, else prescan) section of an extension
        as numpy slices of its raw pixels; by default all of it is data and there is none."""
        return (slice(0, shape[0]), slice(0, shape[1])), None

    def declared_chips(self) -> int | None:
        """The number of chips the primary header declares, if it does."""
        if not self.chip_count_key or self.chip_count_key not in self.primary:
            return None
        value = self.primary[self.chip_count_key]
        if not isinstance(value, int | np.integer) or isinstance(value, bool) or value < 1:
            raise IngestError(f"{self.chip_count_key} = {value!r} is not a number of chips")
        return int(value)

    def chip_names(self, count: int) -> list[str] | None:
        """The names of a mosaic of ``count`` chips, where the convention fixes them."""
        return None


class AweTranslator(HeaderTranslator):
    """The simulator's own camera: no overscan; the whole extension is data."""

    instruments = ("AWECAM",)
    type_key = "IMAGETYP"
    filter_key = "FILTER"
    airmass_key = "AIRMASS"
    gain_key = "GAIN"
    chip_count_key = "NCHIPS"
    chips_from_catalogue = False  # tiny and small are both AWECAM, of 2 and 8 chips

    def chip(self, ext: fits.Header, index: int) -> str:
        chip = ext.get("CHIPID")
        if not chip:
            raise IngestError(f"extension {index} has no CHIPID")
        return str(chip).strip()


class OmegaCamTranslator(HeaderTranslator):
    """OmegaCAM at the VST, ESO conventions: one extension per CCD named ``ESO_CCD_#nn``
    (``#65`` to ``#96`` for the 32 chips), prescan and overscan columns counted by ``HIERARCH
    ESO DET OUT1 PRSCX`` / ``OVSCX`` (and rows by ``PRSCY`` / ``OVSCY``) in each extension,
    the number of chips in ``HIERARCH ESO DET CHIPS``."""

    instruments = ("OMEGACAM",)
    type_key = "HIERARCH ESO DPR TYPE"
    filter_key = "HIERARCH ESO INS FILT1 NAME"
    airmass_key = "HIERARCH ESO TEL AIRM START"
    gain_key = "HIERARCH ESO DET OUT1 CONAD"
    chip_count_key = "HIERARCH ESO DET CHIPS"
    first_chip: ClassVar[int] = 65

    def chip(self, ext: fits.Header, index: int) -> str:
        name = str(ext.get("EXTNAME", "")).strip()
        if not name.startswith("ESO_CCD_#"):
            raise IngestError(f"extension {index} is {name!r}, not an ESO_CCD_#nn")
        return name

    @staticmethod
    def _count(ext: fits.Header, key: str) -> int:
        value = ext.get(f"HIERARCH ESO DET OUT1 {key}", 0)
        if not isinstance(value, int | np.integer) or isinstance(value, bool) or value < 0:
            raise IngestError(f"HIERARCH ESO DET OUT1 {key} = {value!r} is not a number of "
                              "pixels")
        return int(value)

    def sections(self, ext: fits.Header, shape: tuple[int, ...]) -> tuple[Section,
                                                                          Section | None]:
        prscy, ovscy = self._count(ext, "PRSCY"), self._count(ext, "OVSCY")
        if prscy + ovscy >= shape[0]:
            raise IngestError(f"PRSCY {prscy} + OVSCY {ovscy} rows leave no data in an "
                              f"image {shape[0]} high")
        try:
            data, bias = section_from_counts(shape, self._count(ext, "PRSCX"),
                                             self._count(ext, "OVSCX"))
        except ValueError as exc:
            raise IngestError(f"HIERARCH ESO DET OUT1 PRSCX/OVSCX: {exc}") from None
        rows = slice(prscy, shape[0] - ovscy)
        return (rows, data[1]), None if bias is None else (rows, bias[1])

    def chip_names(self, count: int) -> list[str]:
        return [f"ESO_CCD_#{self.first_chip + i}" for i in range(count)]


class WideCamTranslator(HeaderTranslator):
    """A four-chip camera with NOAO/IRAF-like headers (the simulator's ``widecam``):
    ``OBSTYPE`` of ``zero`` (or ``bias``), ``dome flat``, ``sky flat``, ``object``,
    ``standard``; ``FILTER1``; ``RA``/``DEC`` sexagesimal (hours, degrees) or in degrees;
    chips named by ``DETNAME`` (else ``EXTNAME``), e.g. ``CCD 1/A``; gain in ``EGAIN``;
    ``DATASEC`` / ``BIASSEC`` in IRAF notation; ``NEXTEND`` chips."""

    instruments = ("WFC/INT 2",)
    type_key = "OBSTYPE"
    kinds = {"ZERO": "RawBiasFrame", "BIAS": "RawBiasFrame", "DOME FLAT": "RawDomeFlatFrame",
             "SKY FLAT": "RawTwilightFlatFrame", "OBJECT": "RawScienceFrame",
             "STANDARD": "RawStandardFrame"}
    filter_key = "FILTER1"
    airmass_key = "AIRMASS"
    gain_key = "EGAIN"
    chip_count_key = "NEXTEND"

    def chip(self, ext: fits.Header, index: int) -> str:
        for key in ("DETNAME", "EXTNAME"):
            name = str(ext.get(key, "")).strip()
            if name:
                return name
        raise IngestError(f"extension {index} has neither DETNAME nor EXTNAME")

    def ra_dec(self) -> tuple[float | None, float | None]:
        ra, dec = self.primary.get("RA"), self.primary.get("DEC")
        try:
            return (None if ra is None else float(Angle(
                        ra, unit=u.hourangle if isinstance(ra, str) else u.deg).deg),
                    None if dec is None else float(Angle(dec, unit=u.deg).deg))
        except (TypeError, ValueError) as exc:
            raise IngestError(f"RA {ra!r} / DEC {dec!r}: not a position ({exc})") from None

    def sections(self, ext: fits.Header, shape: tuple[int, ...]) -> tuple[Section,
                                                                          Section | None]:
        found: list[Section | None] = []
        for key in ("DATASEC", "BIASSEC"):
            text = ext.get(key)
            try:
                found.append(None if text is None else parse_section(str(text), shape))
            except ValueError as exc:
                raise IngestError(f"{key}: {exc}") from None
        data, bias = found
        return data or (slice(0, shape[0]), slice(0, shape[1])), bias


TRANSLATORS: tuple[type[HeaderTranslator], ...] = (AweTranslator, OmegaCamTranslator,
                                                   WideCamTranslator)


def translator_for(primary: fits.Header) -> HeaderTranslator:
    instrument = str(primary.get("INSTRUME", "")).strip().upper()
    for cls in TRANSLATORS:
        if instrument in cls.instruments:
            return cls(primary)
    known = sorted(i for c in TRANSLATORS for i in c.instruments)
    raise IngestError(f"unknown instrument {instrument or '(no INSTRUME)'}; "
                      f"AWE can ingest {', '.join(known)}")
