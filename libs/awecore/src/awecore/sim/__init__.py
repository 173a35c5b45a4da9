"""The night simulator: realistic raw FITS for a configurable camera, with its truth."""

from ._instrument import PRESETS, STYLES, FilterSpec, InstrumentSpec
from ._night import (
    REFCAT_NAME,
    Exposure,
    NightPlan,
    refcat_name,
    sections,
    simulate_night,
    true_wcs,
)

__all__ = ["PRESETS", "REFCAT_NAME", "STYLES", "Exposure", "FilterSpec", "InstrumentSpec",
           "NightPlan", "refcat_name", "sections", "simulate_night", "true_wcs"]
