"""Calibration rules: from how far a calibration may be made, and how long a made one is valid.

Astro-WISE's central idea is that calibrations vary in time: each has a validity window, and
processing uses the best valid one whose window covers the moment of observation, whatever
night it was made from. When none covers it, the planner makes one from the nearest night
with enough raw calibration frames, but not from any night: a bias drifts within days, a
dome flat within a week or two, a twilight flat (the sky's illumination pattern) more
slowly. So each calibration class has two figures, in nights:

- ``max_distance``: how far from the observation's night the night it is made from may be;
- ``window``: how many nights either side of the night it was made from a made one is valid
  (its default window; a calibration scientist moves it afterwards).

A made calibration must cover the observation it was made for, so ``window`` is never below
``max_distance``. Each class has a default (``DEFAULTS``); a site overrides any class, for
every instrument or for one (keyed by the instrument's name, as in INSTRUME), in one place:
:class:`CalibrationRules`, passed explicitly or read as JSON from ``AWE_CALIBRATION_RULES``:

    {"classes": {"BiasFrame": {"max_distance": 5, "window": 5}},
     "instruments": {"OMEGACAM": {"DomeFlatFrame": {"window": 14}}}}

A class not named anywhere (a user's own calibration) is made from its night only and valid
for that night (``FALLBACK``), as AWE did before windows spanned nights.
"""

from __future__ import annotations

import datetime as dt
import functools
import json
import os
from collections.abc import Mapping

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from ..errors import InvalidRequest

__all__ = ["DEFAULTS", "ENV", "FALLBACK", "CalibrationRules", "Rule", "RuleOverride",
           "night_window"]

ENV = "AWE_CALIBRATION_RULES"


@functools.lru_cache(maxsize=1 << 12)
def night_window(night: dt.date) -> tuple[dt.datetime, dt.datetime]:
    """A night runs from noon to noon (UTC). (Remembered: a plan asks it per node.)"""
    start = dt.datetime.combine(night, dt.time(12), dt.UTC)
    return start, start + dt.timedelta(days=1)


class Rule(BaseModel):
    """The rule of one calibration class (for one instrument)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    max_distance: int = Field(ge=0, le=3660, description="nights between an observation and "
                              "the night a calibration for it may be made from")
    window: int = Field(ge=0, le=36600, description="nights either side of the night it was "
                        "made from that a made calibration is valid")

    @model_validator(mode="after")
    def _covers(self) -> Rule:
        if self.window < self.max_distance:
            raise ValueError(f"a calibration made {self.max_distance} nights away would not "
                             f"cover the observation with a window of {self.window} nights: "
                             "the window must be at least max_distance")
        return self


class RuleOverride(BaseModel):
    """What a site changes of a class's rule (the rest stays as the default)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    max_distance: int | None = Field(default=None, ge=0, le=3660)
    window: int | None = Field(default=None, ge=0, le=36600)


#: per class: biases and the read noise drift within days, dome flats (and what is made from
#: them) within a week, the twilight sky's pattern over weeks; a zeropoint is the night's
#: atmosphere, so only the next or previous night's standards stand in for a night's own
DEFAULTS: dict[str, Rule] = {
    "ReadNoise": Rule(max_distance=3, window=3),
    "BiasFrame": Rule(max_distance=3, window=3),
    "HotPixelMap": Rule(max_distance=3, window=3),
    "DomeFlatFrame": Rule(max_distance=7, window=7),
    "ColdPixelMap": Rule(max_distance=7, window=7),
    "MasterFlatFrame": Rule(max_distance=7, window=7),
    "TwilightFlatFrame": Rule(max_distance=21, window=21),
    "PhotometricParameters": Rule(max_distance=1, window=1),
}
#: a class without a rule: made from the observation's own night, valid for that night
FALLBACK = Rule(max_distance=0, window=0)


class CalibrationRules(BaseModel):
    """Every calibration class's rule: the defaults, a site's overrides per class, and per
    instrument (which win)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    classes: dict[str, RuleOverride] = Field(default_factory=dict)
    instruments: dict[str, dict[str, RuleOverride]] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _consistent(self) -> CalibrationRules:
        """Every rule that results must hold (a window at least the distance)."""
        for cls in self.classes:
            self.rule(cls)
        for instrument, classes in self.instruments.items():
            for cls in classes:
                self.rule(cls, instrument)
        return self

    def rule(self, cls: str, instrument: str | None = None) -> Rule:
        """The rule of ``cls`` for ``instrument`` (None: the class's own)."""
        merged = DEFAULTS.get(cls, FALLBACK).model_dump()
        for override in (self.classes.get(cls),
                         self.instruments.get(instrument or "", {}).get(cls)):
            if override is not None:
                merged.update(override.model_dump(exclude_none=True))
        try:
            return Rule.model_validate(merged)
        except ValidationError as exc:
            where = f" for instrument {instrument}" if instrument else ""
            raise ValueError(f"calibration rule of {cls}{where}: "
                             f"{exc.errors()[0]['msg']}") from None

    def window(self, cls: str, night: dt.date,
               instrument: str | None = None) -> tuple[dt.datetime, dt.datetime]:
        """The default validity window of a ``cls`` made from ``night``: the night, and
        ``window`` nights either side."""
        start, end = night_window(night)
        days = dt.timedelta(days=self.rule(cls, instrument).window)
        return start - days, end + days

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> CalibrationRules:
        """The rules ``AWE_CALIBRATION_RULES`` gives (JSON), or the defaults; a bad value
        is refused saying what is wrong."""
        text = (os.environ if environ is None else environ).get(ENV, "").strip()
        if not text:
            return cls()
        return cls.parse(text)

    @classmethod
    def parse(cls, text: str) -> CalibrationRules:
        try:
            return cls.model_validate(json.loads(text))
        except json.JSONDecodeError as exc:
            raise InvalidRequest(f"{ENV} is not JSON: {exc}") from None
        except (ValidationError, ValueError) as exc:
            raise InvalidRequest(f"{ENV}: {_first(exc)}") from None


def _first(exc: Exception) -> str:
    if isinstance(exc, ValidationError):
        err = exc.errors()[0]
        where = ".".join(str(p) for p in err["loc"])
        return f"{where}: {err['msg']}" if where else str(err["msg"])
    return str(exc)
