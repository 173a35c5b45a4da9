"""The plan's vocabulary: nodes keyed by class and data ID, targets, plans, and the moments
a night stands for (nights run from noon to noon, UTC)."""

from __future__ import annotations

import asyncio
import datetime as dt
import functools
from collections.abc import Coroutine, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar

from ..dimensions import DataId, parse_time
from ..model import CalFile, registry
from ..records import ObjectOut
from ..staleness import (
    moment,
)
from ._recipes import RECIPES
from ._rules import night_window

__all__ = ["LOOKUP", "Key", "Node", "Plan", "RawKey", "Target", "calibrates", "describe_window",
           "key_of", "midnight", "night_of", "night_window", "nights", "parse_time", "run_all",
           "target_key"]

#: a node: its class and its data ID (the values of the class's dimensions; a second
#: object of one data ID in a plan adds ``version``)
Key = tuple[str, DataId]
T = TypeVar("T")
LOOKUP = "lookup"  # a node's existing object: to be looked up


_HALF_DAY = dt.timedelta(hours=12)


def night_of(when: dt.datetime) -> dt.date:
    """The night a moment belongs to (nights run from noon to noon, UTC). A plan asks this
    10^4 times of moments already in UTC (what ``parse_time`` gives): no conversion then."""
    if when.tzinfo is not dt.UTC:
        when = (when.replace(tzinfo=dt.UTC) if when.tzinfo is None
                else when.astimezone(dt.UTC))
    return (when - _HALF_DAY).date()


@functools.lru_cache(maxsize=1 << 12)
def midnight(night: dt.date) -> dt.datetime:
    """The middle of a night: the moment a product of the whole night stands for
    (remembered: every node of a night asks it)."""
    return night_window(night)[0] + _HALF_DAY


def key_of(cls: str, chip: str | None, filt: str | None, night: dt.date | None,
           raw: str | None = None,
           version: str | None = None, extra: Mapping[str, str] | None = None) -> Key:
    """The key of a product's node: its class and data ID."""
    if extra:
        return (cls, DataId(extra, chip=chip, filter=filt, night=night, raw=raw,
                            version=version))
    return _plain_key(cls, chip, filt, night, raw, version)


@functools.lru_cache(maxsize=1 << 16)
def _plain_key(cls: str, chip: str | None, filt: str | None, night: dt.date | None,
               raw: str | None,
               version: str | None) -> Key:
    """``key_of`` without extra dimensions, built straight in the order DataId keeps (the
    universe's: chip, filter, night, raw; then ``version``, beyond it) and remembered: a
    plan asks for the same keys 10^5 times."""
    items: list[tuple[str, str]] = []
    if chip is not None:
        items.append(("chip", str(chip)))
    if filt is not None:
        items.append(("filter", str(filt)))
    if night is not None:
        items.append(("night", night.isoformat()))
    if raw is not None:
        items.append(("raw", str(raw)))
    if version is not None:
        items.append(("version", str(version)))
    return (cls, DataId.from_items(tuple(items)))


def target_key(t: Target) -> Key:
    recipe = RECIPES[t.cls]
    return key_of(t.cls, t.chip, t.filter if recipe.needs_filter else None, t.night,
                  t.raw if recipe.raw_path is not None else None, extra=t.extra)


def nights(n: int) -> str:
    return f"{n} night" + ("" if n == 1 else "s")


def describe_window(record: ObjectOut) -> str:
    start, end = record.timestamp_start, record.timestamp_end
    window = f"valid {moment(start)} .. {moment(end)}" if start and end else "no window"
    return window + ("" if record.is_valid == 1 else f", is_valid {record.is_valid}")


def calibrates(cls: str) -> bool:
    """Whether products of ``cls`` are calibrations (they have a validity window)."""
    found = _CALIBRATES.get(cls)
    if found is None:
        found = cls in registry and issubclass(registry.get(cls), CalFile)
        if cls in registry:  # a class registered later (a user's) is asked again
            _CALIBRATES[cls] = found
    return found


_CALIBRATES: dict[str, bool] = {}


@dataclass
class Node:
    cls: str
    chip: str | None  # None for a product over a sky tile (of many chips)
    filter: str | None
    night: dt.date | None  # None for a product across nights (over a sky tile)
    raw: str | None = None  # the raw frame of what is made from one (reduced frame, ...)
    action: str = "use"  # or "make", or "refuse" (the QC policy: see _policy)
    oid: str | None = None  # the object used, or made
    reasons: list[str] = field(default_factory=list)
    #: products it is made from: one node, or one per raw frame of a kind
    inputs: dict[str, Key | list[Key]] = field(default_factory=dict)
    #: ingested objects it is made from: the night's raw frames, a raw frame, a catalogue
    raws: dict[str, str | list[str]] = field(default_factory=dict)
    params: dict[str, Any] = field(default_factory=dict)
    #: what a person should know beyond the action: inputs left out by the QC policy
    notes: list[str] = field(default_factory=list)
    #: the moment its calibrations must cover: the raw frame's, or the middle of its night
    time: dt.datetime | None = None
    #: a calibration to make: the validity window it will be given
    window: tuple[dt.datetime, dt.datetime] | None = None
    #: a second object of the same class and night in one plan (its oid), else None
    version: str | None = None
    #: values of dimensions beyond chip, filter, night and raw frame (a sky tile, ...)
    extra: dict[str, str] = field(default_factory=dict)

    @property
    def data_id(self) -> DataId:
        """What the product is for: the values of its class's dimensions."""
        return DataId(self.extra, chip=self.chip, filter=self.filter, night=self.night,
                      raw=self.raw)

    @property
    def key(self) -> Key:
        return key_of(self.cls, self.chip, self.filter, self.night, self.raw, self.version,
                      self.extra)

    def input_keys(self) -> list[Key]:
        return [k for v in self.inputs.values() for k in (v if isinstance(v, list) else [v])]

    @property
    def what(self) -> str:
        """The target in words: class, chip/filter, night and raw frame (and a tile)."""
        what = self.cls + (f" {self.chip}" if self.chip else "")
        what += (f"/{self.filter}" if self.chip and self.filter else
                 f" {self.filter}" if self.filter else "")
        what += (f" {self.night}" if self.night else "") + (
            f" raw {self.raw}" if self.raw else "")
        return what + "".join(f" {k} {v}" for k, v in sorted(self.extra.items()))

    def describe(self) -> str:
        what = self.what
        notes = "".join(f" [{n}]" for n in self.notes)
        if self.action == "use":
            return f"use  {what}: {self.oid}{notes}"
        return f"{self.action:<4} {what}: " + "; ".join(self.reasons) + notes


@dataclass(frozen=True)
class Target:
    """What to get: a class for a night and chip (and filter; and raw frame for a product
    made from one), or for the dimensions beyond these (``extra``: a sky tile, with the
    filter, and no chip or night: a product across nights and chips)."""

    cls: str
    chip: str | None
    night: dt.date | None
    filter: str | None = None
    raw: str | None = None
    extra: DataId = field(default_factory=DataId)


@dataclass
class Plan:
    roots: list[Key]  # the targets asked for, in the order asked
    nodes: dict[Key, Node]

    @property
    def root(self) -> Key:
        return self.roots[0]

    @property
    def to_make(self) -> list[Node]:
        return [n for n in self.nodes.values() if n.action == "make"]

    @property
    def refused(self) -> list[Node]:
        """Nodes the QC policy will not make (and what depends on them)."""
        return [n for n in self.nodes.values() if n.action == "refuse"]

    def describe(self) -> str:
        return "\n".join(n.describe() for n in self.nodes.values())

    def input_oids(self, node: Node, made: dict[Key, str] | None = None
                   ) -> dict[str, str | list[str]]:
        """The oids of a node's product inputs: made ones from ``made``, used ones known."""
        def oid(key: Key) -> str:
            found = (made or {}).get(key) or self.nodes[key].oid
            assert found is not None, f"{self.nodes[key].describe()} was not made"
            return found

        return {ref: [oid(k) for k in keys] if isinstance(keys, list) else oid(keys)
                for ref, keys in node.inputs.items()}


async def run_all(coros: Iterable[Coroutine[Any, Any, T]]) -> list[T]:
    """Run coroutines concurrently; the first failure cancels the others and is raised."""
    tasks = [asyncio.ensure_future(c) for c in coros]
    try:
        return list(await asyncio.gather(*tasks))
    except BaseException:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        raise


RawKey = tuple[str, str, str | None, dt.date, dt.date]  # class, chip, filter, nights from-to
