"""Dimensions and data IDs: what a product is *for*, as Rubin's Butler names it.

A product is identified beyond its oid by the values of its class's dimensions: a bias by
its instrument, chip and night; a reduced frame by its raw frame (and so its chip, filter
and night); a coadd, later, by a sky tile and a filter, across nights and chips. The names
of the dimensions form one universe (:data:`DIMENSIONS`), in the order a data ID is shown;
each product class declares the ones it has (``dimensions``, a ClassVar of the model), and
a :class:`DataId` holds the values, as text.

A calibration is looked up by a data ID *at a moment* (:class:`CalibrationWanted`): the best
valid one of its class whose validity window covers the moment, from whatever night; the
catalogue answers many at once (``POST /calibrations/best``).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator, Mapping
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

from .errors import InvalidRequest

__all__ = [
    "DIMENSIONS",
    "MAX_BEST",
    "BestCalibrationsIn",
    "CalibrationWanted",
    "DataId",
    "parse_data_id",
    "parse_time",
    "target_values",
]

#: the dimension universe, in the order a data ID is shown: the camera, its detector, the
#: filter, the night (noon to noon UTC, YYYY-MM-DD), one raw frame (its oid), a sky tile
DIMENSIONS: tuple[str, ...] = ("instrument", "chip", "filter", "night", "raw", "tile")

#: calibrations looked up in one request
MAX_BEST = 20_000


class DataId(Mapping[str, str]):
    """The values of a product's dimensions: immutable, hashable, ordered by the universe
    (a dimension outside it comes last, by name), so equal data IDs are one key."""

    # the hash is kept: a planner hashes its keys (class, data ID) 10^5 times a plan
    __slots__ = ("_hash", "_items")

    def __init__(self, values: Mapping[str, Any] | None = None, /, **more: Any) -> None:
        merged = {**(values or {}), **more}
        known = [d for d in DIMENSIONS if merged.get(d) is not None]
        other = sorted(k for k in merged if k not in DIMENSIONS and merged[k] is not None)
        self._items: tuple[tuple[str, str], ...] = tuple(
            (k, _text(merged[k])) for k in (*known, *other))
        self._hash = hash(self._items)

    @classmethod
    def from_items(cls, items: tuple[tuple[str, str], ...]) -> DataId:
        """A data ID from pairs already in its order, as text (no checks: for callers that
        build them by the rule of ``__init__``, in hot loops such as a planner's keys)."""
        made = cls.__new__(cls)
        made._items = items
        made._hash = hash(items)
        return made

    def __reduce__(self) -> tuple[Any, tuple[tuple[tuple[str, str], ...]]]:
        """Pickled (and copied) as its items: the hash of text is per process."""
        return DataId.from_items, (self._items,)

    def __getitem__(self, key: str) -> str:
        for k, v in self._items:
            if k == key:
                return v
        raise KeyError(key)

    def __iter__(self) -> Iterator[str]:
        return (k for k, _ in self._items)

    # (Mapping's own go through __getitem__ and a KeyError for a missing name: a planner
    # asks for a sky tile of every target that has none)
    def __contains__(self, key: object) -> bool:
        return any(k == key for k, _ in self._items)

    def get(self, key: str, default: Any = None) -> Any:
        for k, v in self._items:
            if k == key:
                return v
        return default

    def __len__(self) -> int:
        return len(self._items)

    def __hash__(self) -> int:
        return self._hash

    def __eq__(self, other: object) -> bool:
        if isinstance(other, DataId):
            return self._items == other._items
        if isinstance(other, Mapping):
            return dict(self._items) == {k: _text(v) for k, v in other.items()
                                         if v is not None}
        return NotImplemented

    def __repr__(self) -> str:
        return "DataId(" + ", ".join(f"{k}={v!r}" for k, v in self._items) + ")"

    def __str__(self) -> str:
        return " ".join(f"{k}={v}" for k, v in self._items)

    def __lt__(self, other: DataId) -> bool:
        return self._items < other._items

    def items_tuple(self) -> tuple[tuple[str, str], ...]:
        return self._items

    def only(self, names: tuple[str, ...] | frozenset[str]) -> DataId:
        """The part of this data ID on the given dimensions."""
        return DataId({k: v for k, v in self._items if k in names})

    def but(self, **values: Any) -> DataId:
        """This data ID with some values replaced (None removes one)."""
        merged: dict[str, Any] = dict(self._items)
        merged.update(values)
        return DataId(merged)


def _text(value: Any) -> str:
    if isinstance(value, dt.datetime):
        return value.isoformat()
    if isinstance(value, dt.date):
        return value.isoformat()
    return str(value)


def parse_data_id(pairs: list[str] | tuple[str, ...]) -> dict[str, str]:
    """``key=value`` words (the CLI's ``--data-id``) as a dict; a word without ``=`` or an
    unknown dimension is refused, naming the universe."""
    out: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        key, value = key.strip(), value.strip()
        if not sep or not key or not value:
            raise InvalidRequest(f"bad data ID {pair!r}: give key=value, e.g. chip=ccd53")
        if key not in DIMENSIONS:
            raise InvalidRequest(f"unknown dimension {key!r}; dimensions are "
                                 + ", ".join(DIMENSIONS))
        out[key] = value
    return out


def target_values(cls: str, dimensions: tuple[str, ...], night: Any, chip: Any,
                  filter: Any, raw: Any, data_id: Mapping[str, Any] | None
                  ) -> tuple[Any, str | None, str | None, str | None, dict[str, str]]:
    """A target's (night, chip, filter, raw, and the dimensions beyond these: a sky tile),
    as the planner takes it, from values given by position and a data ID (its dimensions by
    name: ``night`` (or ``date``), ``chip``, ``filter``, ``raw``, ``tile``; ``instrument``
    is named by the chip, or for a product over a tile, by itself). A value given twice,
    differently, a name that is no dimension (of the class, when it declares its
    ``dimensions``), or a target without night or chip (unless it is made across chips and
    nights: a class without a chip dimension, or a tile given where the class is unknown)
    is refused, saying which."""
    given = {k: v for k, v in (data_id or {}).items() if v is not None}
    if "date" in given:
        given.setdefault("night", given.pop("date"))
    unknown = sorted(set(given) - set(DIMENSIONS))
    if unknown:
        raise InvalidRequest(f"{', '.join(unknown)}: not a dimension; dimensions are "
                             + ", ".join(DIMENSIONS))
    beyond = sorted(set(given) - set(dimensions or DIMENSIONS))
    if beyond:
        raise InvalidRequest(f"{cls} has no dimension {', '.join(beyond)}; its dimensions "
                             f"are {', '.join(dimensions)}")
    values = {"night": night, "chip": chip, "filter": filter, "raw": raw}
    for name, value in values.items():
        other = given.get(name)
        if other is None:
            continue
        if value is not None and _text(value) != _text(other):
            raise InvalidRequest(f"{name} is given twice: {_text(value)} and {_text(other)}")
        values[name] = other
    extra = {k: _text(v) for k, v in given.items() if k not in values}
    across = ("chip" not in dimensions) if dimensions else "tile" in extra
    if across:
        if values["night"] is not None or values["chip"] is not None:
            raise InvalidRequest(f"{cls} is made across chips and nights: give its "
                                 "filter and tile (a data ID filter=..., tile=...), not a "
                                 "night or chip")
        return None, None, values["filter"], values["raw"], extra
    extra.pop("instrument", None)  # named by the chip
    if values["night"] is None or values["chip"] is None:
        raise InvalidRequest(f"{cls}: give the night and the chip (a data ID night=..., "
                             "chip=...)")
    return values["night"], str(values["chip"]), values["filter"], values["raw"], extra


class CalibrationWanted(BaseModel):
    """A calibration of a class for a chip (and filter) at a moment: the best is the valid
    one whose window covers the moment, newest first."""

    model_config = ConfigDict(extra="forbid")

    cls: str = Field(max_length=100, description="a calibration class, e.g. BiasFrame")
    chip: str = Field(max_length=100, description="chip name or oid")
    time: dt.datetime = Field(description="ISO 8601, UTC if no zone")
    filter: str | None = Field(default=None, max_length=100,
                               description="filter name or oid (flats and what depends on one)")
    until: dt.datetime | None = Field(
        default=None, description="ISO 8601, UTC if no zone: ask for the span from time to "
        "this at once (a planner's frames of a night); the answer is the best at every moment "
        "of it, or, if the best changes within it, null and the request's number in `varies`")

    @model_validator(mode="after")
    def _span(self) -> CalibrationWanted:
        if self.until is not None and _utc(self.until) < _utc(self.time):
            raise ValueError("until is before time")
        return self


def _utc(when: dt.datetime) -> dt.datetime:
    return when if when.tzinfo else when.replace(tzinfo=dt.UTC)


def parse_time(value: Any) -> dt.datetime | None:
    """A time from a record, a history entry or an observation's ``date_obs`` (JSON gives
    ISO text), a time without a zone being UTC as in queries; None for what is not one."""
    if value is None:
        return None
    if not isinstance(value, dt.datetime):
        try:
            value = dt.datetime.fromisoformat(str(value))
        except ValueError:
            return None
    return _utc(value)


class BestCalibrationsIn(BaseModel):
    """Many look-ups at once (``POST /calibrations/best``), answered in the order asked:
    one object or null each."""

    model_config = ConfigDict(extra="forbid")

    requests: list[CalibrationWanted] = Field(min_length=1, max_length=MAX_BEST)
