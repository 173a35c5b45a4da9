"""Several consecutive nights of one camera on one sky: calibrations on some nights only.

Surveys do not take biases and flats every night: calibrations are made every few nights
and science frames are reduced with the best calibration that is valid at their time,
whatever night it came from. To test that, this simulator writes a survey:

* one **camera** for every night: the chips' bias structure, gain, read noise, flat field and
  hot and cold pixels are drawn once, so a calibration made on one night applies to the
  others. Only the bias level drifts a little from night to night (``bias_drift`` ADU rms,
  each night's level and drift in its truth); where the camera has an overscan, the
  overscan correction takes the drift away;
* one **sky**: the survey's science fields (and its standard field) and their stars are drawn
  once; each night observes some of the fields, so that the same field is seen on several
  nights, and one reference catalogue, ``refcat.fits`` beside the nights, covers all of
  them. The planner takes the newest reference catalogue covering a frame: one per survey
  means the nights do not compete. Each seed places its survey in its own part of the sky
  (one of 32 regions, away from the fields of :func:`~awecore.sim.simulate_night`), and
  the catalogue has a name of its own (:func:`survey_refcat_name`), so that surveys and
  nights simulated with other seeds, ingested into the same archive, do not offer each other's
  stars;
* **calibration nights** (biases, dome and twilight flats, the standard field) on the first
  night and every ``calib_every``-th night after it, or on the nights listed; science on
  every night.

The output is ``DIR/YYYY-MM-DD/`` per night (raw files and ``truth.json``, the same truth as a
night's, plus which calibrations the night has and each chip's bias drift), and at the top
``refcat.fits``, ``truth_flats.fits`` (the camera's true flat fields, the same for every
night) and ``survey.json`` (the nights, which of them have calibrations, the reference
catalogue's name). Each part is drawn from its own seeded stream (the camera, the sky, each
night), so the same seed gives the same survey byte for byte, and a night does not change
when nights are added after it.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..files import name_part
from ._instrument import PRESETS, InstrumentSpec
from ._night import (
    REFCAT_NAME,
    ChipTruth,
    NightPlan,
    _make_chips,
    _reference_catalogue,
    _Sky,
    _truth,
    _truth_flats,
    _write_exposures,
    schedule,
)

__all__ = ["SURVEY_FILE", "SurveyPlan", "simulate_survey", "survey_refcat_name"]

SURVEY_FILE = "survey.json"
REFCAT_FILE = "refcat.fits"
FLATS_FILE = "truth_flats.fits"
#: the kinds of exposure that are calibrations, in the order a night takes them
CALIBRATION_KINDS = ("bias", "dome", "twilight", "standard")
_REGIONS = 32  # parts of the sky, one per seed modulo this
_FIELD_STEP = 2.5  # degrees (on the sky) between the survey's fields: their stars never mix


@dataclass(frozen=True)
class SurveyPlan:
    """What a survey observes.

    ``night`` says what a night takes: its counts of biases and flats and whether it observes
    the standard field apply to calibration nights; its ``science_fields``,
    ``exposures_per_field``, exposure time, seeing and stars to every night. Night numbers
    count from 1 (the first night)."""

    nights: int = 3
    start: dt.date = dt.date(2003, 2, 14)
    calib_every: int = 3  # calibrations on nights 1, 1 + K, 1 + 2K, ...
    calib_nights: tuple[int, ...] | None = None  # or on exactly these nights
    fields: int = 3  # science fields on the survey's sky; each night observes some of them
    night: NightPlan = field(default_factory=NightPlan)
    bias_drift: float = 0.5  # ADU rms of a night's bias level about the camera's
    seeing_spread: float = 0.1  # a night's seeing: the plan's, times 1 +- this at most

    def __post_init__(self) -> None:
        if not 1 <= self.nights <= 1000:
            raise ValueError(f"a survey has 1 to 1000 nights, not {self.nights}")
        if self.calib_every < 1:
            raise ValueError(f"calibrations every {self.calib_every} nights: give 1 or more")
        if self.calib_nights is not None:
            wrong = sorted(n for n in self.calib_nights if not 1 <= n <= self.nights)
            if wrong:
                raise ValueError(f"calibration night(s) {wrong} are not in the survey: nights "
                                 f"are numbered 1 to {self.nights}")
        if self.night.science_fields < 1 or self.night.exposures_per_field < 1:
            raise ValueError("a survey observes science fields every night: the night plan "
                             "needs science_fields and exposures_per_field of 1 or more")
        if not 1 <= self.fields <= 10:
            raise ValueError(f"a survey has 1 to 10 science fields, not {self.fields}")
        if self.bias_drift < 0 or not 0 <= self.seeing_spread < 1:
            raise ValueError("the bias drift cannot be negative and the seeing spread must "
                             "be between 0 and 1")

    def calibration_nights(self) -> tuple[int, ...]:
        """The numbers of the nights that have calibrations, in order."""
        if self.calib_nights is not None:
            return tuple(sorted(set(self.calib_nights)))
        return tuple(range(1, self.nights + 1, self.calib_every))

    def dates(self) -> list[dt.date]:
        return [self.start + dt.timedelta(days=i) for i in range(self.nights)]

    def fields_per_night(self) -> int:
        return min(self.night.science_fields, self.fields)

    def n_exposures(self, inst: InstrumentSpec) -> int:
        """How many raw files the survey writes (for a progress bar)."""
        n_filters = len(inst.filters)
        science = self.fields_per_night() * self.night.exposures_per_field * n_filters
        calibrations = (self.night.n_bias + (self.night.n_dome + self.night.n_twilight)
                        * n_filters + (n_filters if self.night.standard else 0))
        return self.nights * science + len(self.calibration_nights()) * calibrations

    def calibration_kinds(self) -> list[str]:
        """What a calibration night takes."""
        counts = {"bias": self.night.n_bias, "dome": self.night.n_dome,
                  "twilight": self.night.n_twilight, "standard": int(self.night.standard)}
        return [k for k in CALIBRATION_KINDS if counts[k]]


def survey_refcat_name(inst: InstrumentSpec, seed: int) -> str:
    """The survey's reference catalogue: ``AWE-SIM-REF-SURVEY-<seed>`` for the simulator's
    own camera, ``AWE-SIM-REF-<file prefix>-SURVEY-<seed>`` for the others; never the name
    of a night's catalogue (:func:`~awecore.sim.refcat_name`), whose stars differ."""
    if inst.style == "awe":
        return f"{REFCAT_NAME}-SURVEY-{seed}"
    return f"{REFCAT_NAME}-{name_part(inst.prefix)}-SURVEY-{seed}"


def _stream(seed: int, *key: int) -> np.random.Generator:
    """An independent generator for one part of the survey (the camera, the sky, a night)."""
    return np.random.default_rng(np.random.SeedSequence(seed, spawn_key=key))


def _sky_fields(seed: int, plan: SurveyPlan,
                standard: bool) -> tuple[dict[str, tuple[float, float]], str | None]:
    """The survey's fields in its seed's region of the sky: science fields in a row of equal
    steps, the standard field before them. Returns them and the standard's name."""
    region = seed % _REGIONS
    ra0, dec0 = 190.0 + 20.0 * (region % 8), -40.0 + 20.0 * (region // 8)
    step = _FIELD_STEP / np.cos(np.radians(dec0))
    fields = {f"AWES_{ra0 + j * step:.1f}_{dec0:.1f}": (round(ra0 + j * step, 4), dec0)
              for j in range(plan.fields)}
    if not standard:
        return fields, None
    name = f"STD_{ra0 - step:.1f}_{dec0:.1f}"
    fields[name] = (round(ra0 - step, 4), dec0)
    return fields, name


def _night_chips(chips: list[ChipTruth], drift: float,
                 rng: np.random.Generator) -> tuple[list[ChipTruth], list[float]]:
    """The camera on one night: its chips with the night's bias level."""
    offsets = [float(rng.normal(0.0, drift)) if drift else 0.0 for _ in chips]
    return ([dataclasses.replace(c, bias_level=c.bias_level + d)
             for c, d in zip(chips, offsets, strict=True)], offsets)


def simulate_survey(out: Path, plan: SurveyPlan | None = None,
                    inst: InstrumentSpec | None = None, seed: int = 1,
                    progress: Callable[[str], None] | None = None) -> dict[str, Any]:
    """Write the survey under ``out`` (see the module's docstring) with ``inst`` (the
    simulator's ``small`` camera by default); returns what ``survey.json`` says.
    ``progress`` is called with each raw file's name once written."""
    plan = plan or SurveyPlan()
    inst = inst or PRESETS["small"]
    out.mkdir(parents=True, exist_ok=True)
    chips = _make_chips(inst, _stream(seed, 0))
    calibration_nights = set(plan.calibration_nights())
    kinds = plan.calibration_kinds()
    standard = plan.night.standard and bool(calibration_nights)
    positions, standard_name = _sky_fields(seed, plan, standard)
    sky_rng = _stream(seed, 1)
    field_radius = 0.75 * np.hypot(inst.chips_x * inst.nx, inst.chips_y * inst.ny) \
        * inst.pixel_scale / 3600
    # a standard field is chosen for its many bright stars of known magnitude
    skies = {name: _Sky(sky_rng, ra, dec, field_radius,
                        plan.night.stars_per_chip * inst.n_chips,
                        faintest=19.0 if name == standard_name else 23.0)
             for name, (ra, dec) in positions.items()}
    science = [n for n in positions if n != standard_name]
    per_night = plan.fields_per_night()
    refcat = survey_refcat_name(inst, seed) if skies else None
    nights: list[dict[str, Any]] = []
    for i, date in enumerate(plan.dates()):
        number = i + 1
        rng = _stream(seed, 2, i)
        has_calibrations = number in calibration_nights
        night_chips, drifts = _night_chips(chips, plan.bias_drift, rng)
        seeing = plan.night.seeing * (1 + plan.seeing_spread * float(rng.uniform(-1, 1)))
        observed = [science[(i * per_night + j) % len(science)] for j in range(per_night)]
        if has_calibrations and standard_name is not None:
            observed = [standard_name, *observed]
        targets = [(n, "standard" if n == standard_name else "science", *positions[n])
                   for n in observed]
        exposures = schedule(inst, plan.night, date, has_calibrations, targets,
                             positions[science[0]], rng)
        folder = out / date.isoformat()
        folder.mkdir(parents=True, exist_ok=True)
        files = _write_exposures(folder, inst, night_chips, exposures, skies, seeing, rng,
                                 progress)
        truth = _truth(inst, seed, date, seeing, night_chips,
                       {n: positions[n] for n in observed}, {n: skies[n] for n in observed},
                       files)
        for chip, base, drift in zip(night_chips, chips, drifts, strict=True):
            truth["chips"][chip.name].update(camera_bias_level=base.bias_level,
                                             bias_drift=drift)
        night_kinds = kinds if has_calibrations else []
        truth["survey"] = {"night": number, "nights": plan.nights,
                           "calibrations": night_kinds, "refcat": refcat,
                           "refcat_file": f"../{REFCAT_FILE}" if refcat else None,
                           "truth_flats": f"../{FLATS_FILE}"}
        (folder / "truth.json").write_text(json.dumps(truth, indent=1))
        nights.append({"night": number, "date": date.isoformat(), "folder": date.isoformat(),
                       "calibrations": night_kinds, "fields": observed,
                       "exposures": len(files), "seeing_fwhm_arcsec": seeing})
    if refcat is not None:
        _reference_catalogue(inst, skies, sky_rng, refcat).writeto(out / REFCAT_FILE,
                                                                   overwrite=True)
    _truth_flats(chips).writeto(out / FLATS_FILE, overwrite=True)
    survey = {
        "seed": seed, "instrument": inst.name, "style": inst.style,
        "chips": [c.name for c in chips], "start": plan.start.isoformat(),
        "nights": nights,
        "calibration_nights": [n["date"] for n in nights if n["calibrations"]],
        "refcat": {"name": refcat, "file": REFCAT_FILE} if refcat else None,
        "truth_flats": FLATS_FILE,
        "fields": {n: {"ra": positions[n][0], "dec": positions[n][1],
                       "kind": "standard" if n == standard_name else "science"}
                   for n in positions},
    }
    (out / SURVEY_FILE).write_text(json.dumps(survey, indent=1))
    return survey
