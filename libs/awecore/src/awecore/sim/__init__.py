"""The night and survey simulators: realistic raw FITS for a configurable camera, with
its truth; a survey is several nights of one camera on one sky, calibrations on some nights;
a tile is a survey whose nights take dithered exposures of one field, with cosmic rays, a
satellite trail and clouds."""

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
from ._survey import SURVEY_FILE, SurveyPlan, simulate_survey, survey_refcat_name
from ._tile import TILE_TRUTH_FILE, load_tile_truth, simulate_tile, tile_refcat_name, truth_wcs

__all__ = ["PRESETS", "REFCAT_NAME", "STYLES", "SURVEY_FILE", "TILE_TRUTH_FILE", "Exposure",
           "FilterSpec", "InstrumentSpec", "NightPlan", "SurveyPlan", "load_tile_truth",
           "refcat_name", "sections", "simulate_night", "simulate_survey", "simulate_tile",
           "survey_refcat_name", "tile_refcat_name", "true_wcs", "truth_wcs"]
