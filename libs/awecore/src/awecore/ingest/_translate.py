"""Header translators: each camera says the same things with its own keywords.

A translator turns one camera's headers into the few facts ingest needs: what kind of
exposure, which filter, which chip, when, how long, where.
"""

from __future__ import annotations

import datetime as dt
from typing import ClassVar

from astropy.io import fits

from ..errors import InvalidRequest

__all__ = ["KIND_CLASSES", "AweTranslator", "HeaderTranslator", "OmegaCamTranslator",
           "translator_for"]

#: Observation type -> the raw class it becomes.
KIND_CLASSES = {"BIAS": "RawBiasFrame", "FLAT,DOME": "RawDomeFlatFrame",
                "FLAT,SKY": "RawTwilightFlatFrame", "OBJECT": "RawScienceFrame",
                "STD": "RawStandardFrame"}


class IngestError(InvalidRequest):
    error = "invalid_raw_file"
    title = "File cannot be ingested"


class HeaderTranslator:
    instruments: ClassVar[tuple[str, ...]] = ()
    type_key: ClassVar[str] = ""
    filter_key: ClassVar[str] = ""
    airmass_key: ClassVar[str] = ""
    gain_key: ClassVar[str] = ""

    def __init__(self, primary: fits.Header) -> None:
        self.primary = primary

    def _get(self, key: str, what: str) -> str:
        value = self.primary.get(key)
        if value is None or str(value).strip() == "":
            raise IngestError(f"missing {key} ({what}) in the primary header")
        return str(value).strip()

    def raw_class(self) -> str:
        kind = self._get(self.type_key, "observation type").upper()
        if kind not in KIND_CLASSES:
            raise IngestError(f"unknown observation type {kind!r} in {self.type_key}; "
                              f"expected one of {sorted(KIND_CLASSES)}")
        return KIND_CLASSES[kind]

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

    def airmass(self) -> float | None:
        value = self.primary.get(self.airmass_key)
        return None if value is None else float(value)

    def chip(self, ext: fits.Header, index: int) -> str:
        raise NotImplementedError

    def gain(self, ext: fits.Header) -> float | None:
        value = ext.get(self.gain_key)
        return None if value is None else float(value)


class AweTranslator(HeaderTranslator):
    """The simulator's own camera."""

    instruments = ("AWECAM",)
    type_key = "IMAGETYP"
    filter_key = "FILTER"
    airmass_key = "AIRMASS"
    gain_key = "GAIN"

    def chip(self, ext: fits.Header, index: int) -> str:
        chip = ext.get("CHIPID")
        if not chip:
            raise IngestError(f"extension {index} has no CHIPID")
        return str(chip).strip()


class OmegaCamTranslator(HeaderTranslator):
    """OmegaCAM at the VST, ESO conventions: one extension per CCD named ESO_CCD_#nn."""

    instruments = ("OMEGACAM",)
    type_key = "HIERARCH ESO DPR TYPE"
    filter_key = "HIERARCH ESO INS FILT1 NAME"
    airmass_key = "HIERARCH ESO TEL AIRM START"
    gain_key = "HIERARCH ESO DET OUT1 CONAD"

    def chip(self, ext: fits.Header, index: int) -> str:
        name = str(ext.get("EXTNAME", "")).strip()
        if not name.startswith("ESO_CCD_#"):
            raise IngestError(f"extension {index} is {name!r}, not an ESO_CCD_#nn")
        return name


TRANSLATORS: tuple[type[HeaderTranslator], ...] = (AweTranslator, OmegaCamTranslator)


def translator_for(primary: fits.Header) -> HeaderTranslator:
    instrument = str(primary.get("INSTRUME", "")).strip().upper()
    for cls in TRANSLATORS:
        if instrument in cls.instruments:
            return cls(primary)
    known = sorted(i for c in TRANSLATORS for i in c.instruments)
    raise IngestError(f"unknown instrument {instrument or '(no INSTRUME)'}; "
                      f"AWE can ingest {', '.join(known)}")
