"""The night simulator: realistic raw FITS for a configurable camera, with its truth."""

from ._instrument import PRESETS, FilterSpec, InstrumentSpec
from ._night import Exposure, NightPlan, simulate_night

__all__ = ["PRESETS", "Exposure", "FilterSpec", "InstrumentSpec", "NightPlan", "simulate_night"]
