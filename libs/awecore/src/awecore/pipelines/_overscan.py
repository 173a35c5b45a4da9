"""Overscan and prescan: the columns a CCD reads out beyond its light-sensitive pixels.

Cameras say where the image is in FITS/IRAF section notation (``DATASEC = '[25:536,1:1024]'``,
``BIASSEC``), or, as ESO does, with counts of prescan and overscan columns (``HIERARCH ESO DET
OUT1 PRSCX`` / ``OVSCX``). Ingest records both sections on every raw frame (as strings in that
notation, 1-based and inclusive) and the overscan level; before any product is made the
loader subtracts the overscan level and keeps the data section only, so products, pixel maps
and their coordinates are on the trimmed image.
"""

from __future__ import annotations

import re

import numpy as np
from astropy.stats import sigma_clipped_stats

__all__ = ["Section", "format_section", "overscan_correct", "overscan_level", "parse_section",
           "section_from_counts"]

#: numpy slices (rows, columns) of a 2-d image
Section = tuple[slice, slice]
_SECTION = re.compile(r"^\[\s*(\d+)\s*:\s*(\d+)\s*,\s*(\d+)\s*:\s*(\d+)\s*\]$")


def parse_section(text: str, shape: tuple[int, ...] | None = None) -> Section:
    """``'[x1:x2,y1:y2]'`` (1-based, inclusive, as FITS headers write it) as numpy slices;
    with ``shape`` the section must lie inside the image."""
    m = _SECTION.match(text.strip())
    if not m:
        raise ValueError(f"section {text!r} is not of the form [x1:x2,y1:y2]")
    x1, x2, y1, y2 = (int(g) for g in m.groups())
    if not (1 <= x1 <= x2 and 1 <= y1 <= y2):
        raise ValueError(f"section {text!r} is empty or reversed")
    if shape is not None and (y2 > shape[0] or x2 > shape[1]):
        raise ValueError(f"section {text!r} lies outside an image of {shape[1]} x {shape[0]}")
    return slice(y1 - 1, y2), slice(x1 - 1, x2)


def format_section(section: Section) -> str:
    ys, xs = section
    return f"[{xs.start + 1}:{xs.stop},{ys.start + 1}:{ys.stop}]"


def section_from_counts(shape: tuple[int, ...], prescan_x: int = 0, overscan_x: int = 0
                        ) -> tuple[Section, Section | None]:
    """The data and overscan sections of an image whose first ``prescan_x`` columns are
    prescan and whose last ``overscan_x`` columns are overscan (ESO's PRSCX / OVSCX). Without
    overscan columns the prescan (if any) serves as the bias reference."""
    ny, nx = shape[0], shape[1]
    if prescan_x < 0 or overscan_x < 0 or prescan_x + overscan_x >= nx:
        raise ValueError(f"prescan {prescan_x} + overscan {overscan_x} columns leave no data "
                         f"in an image {nx} wide")
    data = (slice(0, ny), slice(prescan_x, nx - overscan_x))
    if overscan_x:
        return data, (slice(0, ny), slice(nx - overscan_x, nx))
    if prescan_x:
        return data, (slice(0, ny), slice(0, prescan_x))
    return data, None


def overscan_level(raw: np.ndarray, overscan: Section) -> float:
    """The bias level the overscan measures: a sigma-clipped mean (cosmic rays and hot
    columns in the overscan do not move it)."""
    mean, _, _ = sigma_clipped_stats(np.asarray(raw[overscan], dtype=np.float32), sigma=3.0,
                                     maxiters=5)
    return float(mean)


def overscan_correct(raw: np.ndarray, data: Section, overscan: Section | None,
                     level: float | None = None) -> np.ndarray:
    """The data section in float32, less the overscan level (measured unless given; nothing
    is subtracted without an overscan)."""
    out = np.array(raw[data], dtype=np.float32)
    if overscan is not None:
        out -= np.float32(overscan_level(raw, overscan) if level is None else level)
    return out
