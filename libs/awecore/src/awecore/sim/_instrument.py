"""Instruments the simulator can play, each with its own header conventions.

``style`` says how a camera writes its files:

``awe``
    the simulator's own camera (``INSTRUME = 'AWECAM'``): ``IMAGETYP``, ``FILTER``,
    ``AIRMASS``, ``GAIN``, chips ``ccd50``, ``ccd51``, ... in ``CHIPID``, ``NCHIPS`` chips in
    the primary header; no overscan (the ``tiny`` and ``small`` presets).
``omegacam``
    OmegaCAM at the VST as ESO writes it (``INSTRUME = 'OMEGACAM'``): ``HIERARCH ESO DPR
    TYPE``, ``HIERARCH ESO INS FILT1 NAME``, extensions ``EXTNAME = 'ESO_CCD_#65'`` ... with
    ``HIERARCH ESO DET OUT1 CONAD`` (gain), ``HIERARCH ESO DET OUT1 PRSCX`` / ``OVSCX``
    (prescan and overscan columns: 0 and 32, the overscan at the right edge) and
    ``HIERARCH ESO DET CHIPS`` (the number of chips) in the primary header.
``widecam``
    a four-chip camera with NOAO/IRAF-like headers (``INSTRUME = 'WFC/INT 2'``, files
    ``WFC.<date-obs>.fits``): ``OBSTYPE`` (``zero``, ``dome flat``, ``sky flat``,
    ``object``, ``standard``), ``FILTER1`` (names with a space and ``%``), ``AIRMASS``,
    ``RA``/``DEC`` sexagesimal (hours, degrees), ``NEXTEND`` chips; per extension
    ``EXTNAME`` and ``DETNAME`` = ``'CCD 1/A'`` ..., ``EGAIN`` (e-/ADU), and a 24-column
    prescan on the left: ``DATASEC = '[25:280,1:512]'``, ``BIASSEC = '[1:24,1:512]'``.

``nx`` x ``ny`` are always the light-sensitive pixels of a chip; a raw extension is
``prescan_x + nx + overscan_x`` columns wide, and its WCS refers to the raw columns.
"""

from __future__ import annotations

from dataclasses import dataclass, field

__all__ = ["PRESETS", "STYLES", "FilterSpec", "InstrumentSpec"]

STYLES = ("awe", "omegacam", "widecam")


@dataclass(frozen=True)
class FilterSpec:
    name: str
    zeropoint: float  # magnitude giving 1 e-/s at airmass 0
    extinction: float  # mag per airmass
    sky_mag: float  # sky brightness, mag per arcsec^2


@dataclass(frozen=True)
class InstrumentSpec:
    name: str  # INSTRUME
    style: str  # header convention: one of STYLES
    telescope: str
    chips_x: int
    chips_y: int
    nx: int  # light-sensitive columns of a chip
    ny: int  # rows
    pixel_scale: float  # arcsec per pixel
    gap: int = 20  # pixels between chips in the mosaic
    filters: tuple[FilterSpec, ...] = field(default_factory=tuple)
    prescan_x: int = 0  # bias columns read out before the light-sensitive ones (left)
    overscan_x: int = 0  # bias columns read out after them (right)
    file_prefix: str = ""  # raw file names start with this; the instrument name if empty

    def __post_init__(self) -> None:
        if self.style not in STYLES:
            raise ValueError(f"unknown style {self.style!r}; one of {STYLES}")
        if self.prescan_x < 0 or self.overscan_x < 0:
            raise ValueError("prescan and overscan widths cannot be negative")

    @property
    def n_chips(self) -> int:
        return self.chips_x * self.chips_y

    @property
    def raw_nx(self) -> int:
        """Columns of a raw extension: prescan, light-sensitive pixels, overscan."""
        return self.prescan_x + self.nx + self.overscan_x

    @property
    def prefix(self) -> str:
        return self.file_prefix or self.name

    def chip_name(self, i: int) -> str:
        """The detector id as the camera writes it."""
        if self.style == "omegacam":
            return f"ESO_CCD_#{65 + i}"
        if self.style == "widecam":
            return f"CCD {i + 1}/{chr(ord('A') + i % 26)}"
        return f"ccd{50 + i:02d}"

    def filter(self, name: str) -> FilterSpec:
        for f in self.filters:
            if f.name == name:
                return f
        raise KeyError(f"{self.name} has no filter {name!r}; it has "
                       f"{[f.name for f in self.filters]}")


_WFI_FILTERS = (FilterSpec("841", 24.6, 0.12, 21.8), FilterSpec("842", 24.3, 0.08, 20.9))
_OMEGACAM_FILTERS = (FilterSpec("r_SDSS", 24.8, 0.10, 21.0), FilterSpec("i_SDSS", 24.4, 0.07, 20.3))
_WIDECAM_FILTERS = (FilterSpec("r 50%", 24.0, 0.09, 21.0), FilterSpec("Harris V", 24.2, 0.14, 21.6))

PRESETS: dict[str, InstrumentSpec] = {
    "tiny": InstrumentSpec("AWECAM", "awe", "AWE-1m", 2, 1, 128, 256, 0.4, 8, _WFI_FILTERS),
    "small": InstrumentSpec("AWECAM", "awe", "AWE-1m", 4, 2, 512, 1024, 0.3, 16, _WFI_FILTERS),
    "omegacam": InstrumentSpec("OMEGACAM", "omegacam", "ESO-VST", 8, 4, 2048, 4100, 0.214, 40,
                               _OMEGACAM_FILTERS, overscan_x=32),
    # OmegaCAM's conventions on four small chips (ESO_CCD_#65..#68), for CI
    "omegacam-small": InstrumentSpec("OMEGACAM", "omegacam", "ESO-VST", 2, 2, 256, 512, 0.214,
                                     12, _OMEGACAM_FILTERS, overscan_x=32),
    "widecam": InstrumentSpec("WFC/INT 2", "widecam", "INT", 2, 2, 256, 512, 0.33, 12,
                              _WIDECAM_FILTERS, prescan_x=24, file_prefix="WFC"),
}
