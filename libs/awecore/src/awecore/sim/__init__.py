"""The night and survey simulators: realistic raw FITS for a configurable camera, with
its truth; a survey is several nights of one camera on one sky, calibrations on some nights."""

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

__all__ = ["PRESETS", "REFCAT_NAME", "STYLES", "SURVEY_FILE", "Exposure", "FilterSpec",
           "InstrumentSpec", "NightPlan", "SurveyPlan", "refcat_name", "sections",
           "simulate_night", "simulate_survey", "survey_refcat_name", "true_wcs"]
