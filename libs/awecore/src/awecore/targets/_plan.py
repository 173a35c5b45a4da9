"""Planning a target: walk its inputs backwards, like make, and decide what to make.

Each node is a product for (class, chip, filter, night) — or, for a reduced frame, for one
raw frame. A node is *used* when the best existing object is up to date: every input is
still the best of its kind (none newer, none invalidated), its raw frames are the night's,
its software version and parameters are current. Otherwise it is *made*, and the plan says
why. Nodes are shared, so the plan is a DAG without duplicates, in an order that makes
inputs first.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

from ..client import CatalogClient
from ..errors import InvalidRequest, NotFound
from ..model import CalFile, DBObject, ObjectOut, registry
from ..pipelines import SOFTWARE_VERSION
from ..query import And, Between, Compare, QuerySpec
from ._recipes import RECIPES, Recipe

__all__ = ["Node", "Plan", "Planner", "night_window"]

Key = tuple[str, str, str | None, str, str | None]


def night_window(night: dt.date) -> tuple[dt.datetime, dt.datetime]:
    """A night runs from noon to noon (UTC): what a calibration of that night covers."""
    start = dt.datetime.combine(night, dt.time(12), dt.UTC)
    return start, start + dt.timedelta(days=1)


@dataclass
class Node:
    cls: str
    chip: str
    filter: str | None
    night: dt.date
    raw: str | None = None  # the raw frame a reduced frame is made from
    action: str = "use"  # or "make"
    oid: str | None = None  # the object used, or made
    reasons: list[str] = field(default_factory=list)
    inputs: dict[str, Key] = field(default_factory=dict)
    raws: dict[str, list[str]] = field(default_factory=dict)
    params: dict[str, Any] = field(default_factory=dict)

    @property
    def key(self) -> Key:
        return (self.cls, self.chip, self.filter, self.night.isoformat(), self.raw)

    def describe(self) -> str:
        what = f"{self.cls} {self.chip}" + (f"/{self.filter}" if self.filter else "")
        what += f" {self.night}" + (f" raw {self.raw}" if self.raw else "")
        if self.action == "use":
            return f"use  {what}: {self.oid}"
        return f"make {what}: " + "; ".join(self.reasons)


@dataclass
class Plan:
    root: Key
    nodes: dict[Key, Node]

    @property
    def to_make(self) -> list[Node]:
        return [n for n in self.nodes.values() if n.action == "make"]

    def describe(self) -> str:
        return "\n".join(n.describe() for n in self.nodes.values())


class Planner:
    def __init__(self, catalog: CatalogClient, params: dict[str, dict[str, Any]] | None = None):
        self.catalog = catalog
        self.params = params or {}
        self._objects: dict[str, ObjectOut] = {}

    def _object(self, oid: str) -> ObjectOut:
        if oid not in self._objects:
            self._objects.update(self.catalog.get_records([oid]))
        if oid not in self._objects:
            raise NotFound(f"no object {oid}")
        return self._objects[oid]

    def _raws(self, cls: str, chip: str, filt: str | None, night: dt.date) -> list[str]:
        start, end = night_window(night)
        conds: list[Any] = [Compare(op="eq", path=("chip", "name"), value=chip),
                            Between(path=("date_obs",), low=start.isoformat(),
                                    high=end.isoformat())]
        if filt is not None:
            conds.append(Compare(op="eq", path=("filter", "name"), value=filt))
        spec = QuerySpec(cls=cls, where=And(items=tuple(conds)))
        return sorted(o.record.oid for o in self.catalog.iter_query(spec) if o.record)

    def _best(self, cls: str, chip: str, filt: str | None, when: dt.datetime) -> str | None:
        try:
            best = self.catalog.best(cls, chip, when, filt)
        except NotFound:
            return None
        assert best.record is not None
        self._objects[best.record.oid] = best.record
        return best.record.oid

    def _made_from(self, cls: str, raw: str) -> str | None:
        """The newest valid product of ``cls`` made (directly or not) from a raw frame."""
        path = ("raw",) if cls == "ReducedScienceFrame" else ("frame", "raw")
        spec = QuerySpec(cls=cls, where=And(items=(
            Compare(op="eq", path=path, value=raw),
            Compare(op="eq", path=("is_valid",), value=1))))
        found = [o.record for o in self.catalog.iter_query(spec) if o.record]
        if not found:
            return None
        newest = max(found, key=lambda r: (r.creation_date, r.oid))
        self._objects[newest.oid] = newest
        return newest.oid

    def plan(self, cls: str | type[DBObject], chip: str, night: dt.date,
             filter: str | None = None, raw: str | None = None) -> Plan:
        name = cls if isinstance(cls, str) else cls.__name__
        if name not in RECIPES:
            raise InvalidRequest(f"AWE cannot make {name}; it makes {', '.join(RECIPES)}")
        nodes: dict[Key, Node] = {}
        root = self._resolve(name, chip, filter, night, raw, nodes)
        return Plan(root, nodes)

    def _resolve(self, cls: str, chip: str, filt: str | None, night: dt.date,
                 raw: str | None, nodes: dict[Key, Node]) -> Key:
        recipe = RECIPES[cls]
        if recipe.needs_filter and filt is None:
            raise InvalidRequest(f"{cls} depends on a filter: give one")
        node = Node(cls, chip, filt if recipe.needs_filter else None, night, raw,
                    params={**recipe.params, **self.params.get(cls, {})})
        if node.key in nodes:
            return node.key
        when = night_window(night)[0] + dt.timedelta(hours=12)
        if recipe.per_raw:
            if raw is None:
                raise InvalidRequest(f"a {cls} is made from one raw frame: give it (raw=)")
            raw_obj = self._object(raw)
            when = dt.datetime.fromisoformat(str(raw_obj.attributes["date_obs"]))
            if cls == "ReducedScienceFrame":
                node.raws["raw"] = [raw]
        for inp in recipe.inputs:
            if inp.raw:
                found = self._raws(inp.cls, chip, node.filter, night)
                if len(found) < inp.least:
                    raise NotFound(f"cannot make {cls} for {chip} on {night}: {len(found)} "
                                   f"{inp.cls} that night, {inp.least} needed")
                node.raws[inp.ref] = found
            else:
                sub = RECIPES[inp.cls]
                node.inputs[inp.ref] = self._resolve(
                    inp.cls, chip, node.filter if sub.needs_filter else None, night,
                    raw if sub.per_raw else None, nodes)
        existing = (self._made_from(cls, raw) if raw is not None
                    else self._best(cls, chip, node.filter, when))
        if existing is None:
            node.action, node.reasons = "make", [f"no valid {cls} exists"]
        else:
            node.reasons = self._why_stale(self._object(existing), node, recipe, nodes)
            node.action = "make" if node.reasons else "use"
            node.oid = existing
        nodes[node.key] = node
        return node.key

    def _why_stale(self, obj: ObjectOut, node: Node, recipe: Recipe,
                   nodes: dict[Key, Node]) -> list[str]:
        reasons = []
        for ref, key in node.inputs.items():
            dep = nodes[key]
            used = obj.refs.get(ref)
            if dep.action == "make":
                reasons.append(f"its {ref} {used} must be remade ({dep.reasons[0]})")
            elif used != dep.oid:
                was = self._object(str(used)) if isinstance(used, str) else None
                why = "was invalidated" if was is not None and was.is_valid == 0 else \
                    "is no longer the best"
                reasons.append(f"its {ref} {used} {why}; the best is {dep.oid}")
        for ref, found in node.raws.items():
            used = obj.refs.get(ref)
            used_list = sorted(used) if isinstance(used, list) else [used]
            if used_list != found:
                reasons.append(f"the night's {ref} changed")
        if obj.software_version != SOFTWARE_VERSION:
            reasons.append(f"made by software {obj.software_version}, now {SOFTWARE_VERSION}")
        if (obj.process_params or {}) != node.params:
            reasons.append(f"made with {obj.process_params}, asked for {node.params}")
        if issubclass(registry.get(obj.type), CalFile) and obj.is_valid != 1:
            reasons.append("it was invalidated")
        return reasons
