"""The night simulator: realistic raw FITS for a configurable camera, with its truth."""

from ._instrument import PRESETS, FilterSpec, InstrumentSpec
from ._night import REFCAT_NAME, Exposure, NightPlan, simulate_night, true_wcs

__all__ = ["PRESETS", "REFCAT_NAME", "Exposure", "FilterSpec", "InstrumentSpec", "NightPlan",
           "simulate_night", "true_wcs"]
