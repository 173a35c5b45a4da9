"""Planning a target: walk its inputs backwards, like make, and decide what to make.

Each node is a product for (class, chip, filter, night) — or, for a reduced frame and what
is made from it, for one raw frame. A node is *used* when the best existing object is up to
date (the rule of :mod:`awecore.staleness`: every input is still the best of its kind, none
newer, none invalidated, its raw frames are the night's, its software version and parameters
are current). Otherwise it is *made*, and the plan says why. Nodes are shared, so the plan is
a DAG without duplicates, in an order that makes inputs first.

The planner only reads the catalogue, through a :class:`~._ports.CatalogReader`, and awaits
it: a service runs it on its own event loop, a unit test on an in-memory catalogue, a
scientist's prompt through the sync facade (``_sync``).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from ..errors import InvalidRequest, NotFound
from ..model import CalFile, Chip, DBObject, Filter, RawScienceFrame, registry
from ..pipelines import SOFTWARE_VERSION
from ..query import MAX_IN_VALUES, And, Between, Compare, In, OrderBy, QuerySpec
from ..records import ObjectOut
from ..staleness import InputState, input_reasons, input_set_changed, inputs_remade, own_reasons
from ._policy import describe, refused_flags
from ._ports import Calibration, CatalogReader
from ._recipes import RECIPES

__all__ = ["AsyncPlanner", "Key", "Node", "Plan", "Target", "night_of", "night_window"]

Key = tuple[str, str, str | None, str, str | None]


def night_of(when: dt.datetime) -> dt.date:
    """The night a moment belongs to (nights run from noon to noon, UTC)."""
    return (when.astimezone(dt.UTC) - dt.timedelta(hours=12)).date()


def _key(t: Target) -> Key:
    recipe = RECIPES[t.cls]
    return (t.cls, t.chip, t.filter if recipe.needs_filter else None, t.night.isoformat(),
            t.raw if recipe.raw_path is not None else None)


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

    @property
    def key(self) -> Key:
        return (self.cls, self.chip, self.filter, self.night.isoformat(), self.raw)

    def input_keys(self) -> list[Key]:
        return [k for v in self.inputs.values() for k in (v if isinstance(v, list) else [v])]

    @property
    def what(self) -> str:
        """The target in words: class, chip/filter, night and raw frame."""
        what = f"{self.cls} {self.chip}" + (f"/{self.filter}" if self.filter else "")
        return what + f" {self.night}" + (f" raw {self.raw}" if self.raw else "")

    def describe(self) -> str:
        what = self.what
        notes = "".join(f" [{n}]" for n in self.notes)
        if self.action == "use":
            return f"use  {what}: {self.oid}{notes}"
        return f"{self.action:<4} {what}: " + "; ".join(self.reasons) + notes


@dataclass(frozen=True)
class Target:
    """What to get: a class for a night and chip (and filter; and raw frame for a product
    made from one)."""

    cls: str
    chip: str
    night: dt.date
    filter: str | None = None
    raw: str | None = None


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


class AsyncPlanner:
    """Plans targets against a catalogue reader; keeps what it read for its next plans
    (one planner per request, or per a scientist's question: the catalogue changes)."""

    def __init__(self, catalog: CatalogReader,
                 params: dict[str, dict[str, Any]] | None = None) -> None:
        self.catalog = catalog
        self.params = params or {}
        self._objects: dict[str, ObjectOut] = {}
        self._references: dict[tuple[str, tuple[float, float] | None], str] = {}
        #: raw frames of the targets, whose products are looked up together per class
        self._batch: list[str] = []
        self._in_batch: frozenset[str] = frozenset()
        self._made: dict[str, dict[str, str | None]] = {}
        self._anew: set[Key] = set()  # targets to make even where an up-to-date one exists
        self._names: set[tuple[str, str]] = set()  # chips and filters known to exist

    async def _object(self, oid: str) -> ObjectOut:
        if oid not in self._objects:
            self._objects.update(await self.catalog.get_records([oid]))
        if oid not in self._objects:
            raise NotFound(f"no object {oid}")
        return self._objects[oid]

    async def _raws(self, cls: str, chip: str, filt: str | None, night: dt.date) -> list[str]:
        start, end = night_window(night)
        conds: list[Any] = [Compare(op="eq", path=("chip", "name"), value=chip),
                            Between(path=("date_obs",), low=start.isoformat(),
                                    high=end.isoformat())]
        if filt is not None:
            conds.append(Compare(op="eq", path=("filter", "name"), value=filt))
        spec = QuerySpec(cls=cls, where=And(items=tuple(conds)))
        records = await self.catalog.find(spec)
        self._objects.update((r.oid, r) for r in records)
        return sorted(r.oid for r in records)

    async def _best(self, cls: str, chip: str, filt: str | None, when: dt.datetime,
                    params: dict[str, Any]) -> str | None:
        """The best calibration for the chip at that time; among those made with other
        parameters (a user's tuned product), the newest made with these, if any."""
        (best,) = await self.catalog.best([Calibration(cls, chip, when, filt)])
        if best is None:
            return None
        self._objects[best.oid] = best
        if (best.process_params or {}) == params:
            return best.oid
        conds: list[Any] = [Compare(op="eq", path=("chip", "name"), value=chip),
                            Compare(op="eq", path=("is_valid",), value=1),
                            Compare(op="le", path=("timestamp_start",), value=when.isoformat()),
                            Compare(op="ge", path=("timestamp_end",), value=when.isoformat())]
        if filt is not None:
            conds.append(Compare(op="eq", path=("filter", "name"), value=filt))
        spec = QuerySpec(cls=cls, where=And(items=tuple(conds)),
                         order_by=(OrderBy(path=("creation_date",), descending=True),))
        same = next((r for r in await self.catalog.find(spec, limit=100)
                     if (r.process_params or {}) == params), None)
        if same is None:
            return best.oid
        self._objects[same.oid] = same
        return same.oid

    async def _reference(self, cls: str, position: tuple[float, float] | None) -> str:
        """The newest valid reference catalogue that covers a position (RA, Dec)."""
        if (cls, position) not in self._references:
            self._references[cls, position] = await self._find_reference(cls, position)
        return self._references[cls, position]

    async def _find_reference(self, cls: str, position: tuple[float, float] | None) -> str:
        conds: list[Any] = [Compare(op="eq", path=("is_valid",), value=1)]
        if position is not None:
            ra, dec = position
            conds += [Compare(op="le", path=("ra_min",), value=ra),
                      Compare(op="ge", path=("ra_max",), value=ra),
                      Compare(op="le", path=("dec_min",), value=dec),
                      Compare(op="ge", path=("dec_max",), value=dec)]
        spec = QuerySpec(cls=cls, where=And(items=tuple(conds)),
                         order_by=(OrderBy(path=("creation_date",), descending=True),))
        found = next(iter(await self.catalog.find(spec, limit=1)), None)
        if found is None:
            where = f" covering RA {position[0]:.4f}, Dec {position[1]:.4f}" if position else ""
            raise NotFound(f"no valid {cls}{where}: ingest one first (awe ingest FILE)")
        self._objects[found.oid] = found
        return found.oid

    async def _position(self, raw: str) -> tuple[float, float] | None:
        a = (await self._object(raw)).attributes
        return (float(a["ra"]), float(a["dec"])) if "ra" in a and "dec" in a else None

    @staticmethod
    def _rank(record: ObjectOut, params: dict[str, Any]) -> tuple[bool, dt.datetime, str]:
        """Made with the parameters asked for first, then the newest."""
        return ((record.process_params or {}) == params, record.creation_date, record.oid)

    async def _made_from(self, cls: str, path: tuple[str, ...], raw: str,
                   params: dict[str, Any]) -> str | None:
        """The newest valid product of ``cls`` made (directly or not) from a raw frame (made
        with ``params`` if there is one). For the targets' own raw frames, one query per
        class answers for all of them."""
        batch = raw in self._in_batch
        if batch and cls in self._made:
            return self._made[cls].get(raw)
        raws = self._batch if batch else [raw]
        newest: dict[str, ObjectOut] = {}
        for i in range(0, len(raws), MAX_IN_VALUES):
            spec = QuerySpec(cls=cls, where=And(items=(
                In(path=path, values=tuple(raws[i:i + MAX_IN_VALUES])),
                Compare(op="eq", path=("is_valid",), value=1))))
            records = await self.catalog.find(spec)
            for record, made_from in zip(records, await self._follow(records, path),
                                         strict=True):
                if made_from not in newest or self._rank(record, params) > self._rank(
                        newest[made_from], params):
                    newest[made_from] = record
        self._objects.update((r.oid, r) for r in newest.values())
        found = {r: (newest[r].oid if r in newest else None) for r in raws}
        if batch:
            self._made[cls] = found
        return found[raw]

    async def _follow(self, records: list[ObjectOut], path: tuple[str, ...]) -> list[str]:
        """The oids at the end of a path of references; each step fetched in one batch."""
        oids = [str(r.refs[path[0]]) for r in records]
        for step in path[1:]:
            self._objects.update(await self.catalog.get_records(
                [o for o in set(oids) if o not in self._objects]))
            oids = [str(self._objects[o].refs[step]) for o in oids]
        return oids

    async def plan(self, cls: str | type[DBObject], chip: str, night: dt.date,
                   filter: str | None = None, raw: str | None = None,
                   anew: bool = False) -> Plan:
        name = cls if isinstance(cls, str) else cls.__name__
        return await self.plan_many([Target(name, chip, night, filter, raw)], anew)

    def _params(self, cls: str) -> dict[str, Any]:
        return {**RECIPES[cls].params, **self.params.get(cls, {})}

    async def check(self, target: Target) -> None:
        """Refuse a target that cannot be: an unknown class, a missing filter or raw frame,
        a raw frame of another kind, chip, filter or night than the target says."""
        recipe = RECIPES.get(target.cls)
        if recipe is None:
            raise InvalidRequest(f"AWE cannot make {target.cls}; it makes {', '.join(RECIPES)}")
        if recipe.needs_filter and target.filter is None:
            raise InvalidRequest(f"{target.cls} depends on a filter: give one")
        await self._known(Chip, target.chip)
        if recipe.needs_filter and target.filter is not None:
            await self._known(Filter, target.filter)
        if recipe.raw_path is None:
            return
        if target.raw is None:
            raise InvalidRequest(f"a {target.cls} is made from one raw frame: give it (raw=)")
        raw = await self._object(target.raw)
        if raw.type not in registry.subclass_names(RawScienceFrame):
            raise InvalidRequest(f"{target.raw} is a {raw.type}, not a raw science frame")
        if "chip" not in raw.refs or "filter" not in raw.refs or "date_obs" not in raw.attributes:
            raise InvalidRequest(f"raw frame {target.raw} lacks its chip, filter or date_obs")
        chip = str((await self._object(str(raw.refs["chip"]))).attributes["name"])
        filt = str((await self._object(str(raw.refs["filter"]))).attributes["name"])
        night = night_of(dt.datetime.fromisoformat(str(raw.attributes["date_obs"])))
        if (chip, filt, night) != (target.chip, target.filter, target.night):
            raise InvalidRequest(
                f"raw frame {target.raw} is of chip {chip}, filter {filt}, night {night}; "
                f"the target says {target.chip}, {target.filter}, {target.night}")

    async def _known(self, cls: type[Chip | Filter], name: str) -> None:
        """A chip or filter the catalogue knows; if not, a NotFound that lists those it
        knows (of the chip's instrument where one goes by that name elsewhere)."""
        if (cls.__name__, name) in self._names:
            return
        spec = QuerySpec(cls=cls.__name__, where=Compare(op="eq", path=("name",), value=name))
        if await self.catalog.find(spec, limit=1):
            self._names.add((cls.__name__, name))
            return
        every = QuerySpec(cls=cls.__name__, order_by=(OrderBy(path=("name",)),))
        known = sorted({str(r.attributes.get("name"))
                        for r in await self.catalog.find(every, limit=500)})
        raise NotFound(f"no {cls.__name__.lower()} {name!r}; known: "
                       + (", ".join(known) if known else "none (ingest raw data first)"))

    async def existing(self, target: Target) -> str | None:
        """The object getting the target would start from (up to date or not), if any."""
        await self.check(target)
        recipe = RECIPES[target.cls]
        if recipe.raw_path is not None:
            assert target.raw is not None
            return await self._made_from(target.cls, recipe.raw_path, target.raw,
                                   self._params(target.cls))
        when = night_window(target.night)[0] + dt.timedelta(hours=12)
        return await self._best(target.cls, target.chip,
                                target.filter if recipe.needs_filter else None, when,
                                self._params(target.cls))

    async def target_of(self, record: ObjectOut) -> Target:
        """The target an existing product answers: its class, chip, filter, night, raw."""
        recipe = RECIPES.get(record.type)
        if recipe is None:
            raise InvalidRequest(f"a {record.type} is not made by AWE: it has no target")
        chip = str((await self._object(str(record.refs["chip"]))).attributes["name"])
        filt = (str((await self._object(str(record.refs["filter"]))).attributes["name"])
                if recipe.needs_filter else None)
        raw = (await self._follow([record], recipe.raw_path))[0] if recipe.raw_path else None
        if raw is not None:
            when = dt.datetime.fromisoformat(
                str((await self._object(raw)).attributes["date_obs"]))
        else:
            assert record.timestamp_start is not None, f"{record.oid} has no validity"
            when = record.timestamp_start
        return Target(record.type, chip, night_of(when), filt, raw)

    async def plan_many(self, targets: Sequence[Target], anew: bool = False) -> Plan:
        """One plan for many targets: what they share is planned (and made) once. With
        ``anew`` the targets themselves are made even where an up-to-date one exists."""
        unknown = sorted(set(self.params) - set(RECIPES))
        if unknown:
            raise InvalidRequest(f"parameters for {', '.join(unknown)}, which AWE does not "
                                 f"make; it makes {', '.join(RECIPES)}")
        self._batch = sorted({t.raw for t in targets if t.raw is not None})
        self._in_batch, self._made = frozenset(self._batch), {}
        missing = [r for r in self._batch if r not in self._objects]
        if missing:
            self._objects.update(await self.catalog.get_records(missing))
        for t in targets:
            await self.check(t)
        self._anew = {_key(t) for t in targets} if anew else set()
        nodes: dict[Key, Node] = {}
        roots = [await self._resolve(t.cls, t.chip, t.filter, t.night, t.raw, nodes)
                 for t in targets]
        return Plan(roots, nodes)

    async def _resolve(self, cls: str, chip: str, filt: str | None, night: dt.date,
                       raw: str | None, nodes: dict[Key, Node]) -> Key:
        recipe = RECIPES[cls]
        node = Node(cls, chip, filt if recipe.needs_filter else None, night, raw,
                    params=self._params(cls))
        if node.key in nodes:
            return node.key
        position = None  # where on the sky: what a reference catalogue must cover
        if raw is not None and recipe.raw_path is not None:
            position = await self._position(raw)
            if recipe.raw_path == ("raw",):
                node.raws["raw"] = raw
        for inp in recipe.inputs:
            sub_filter = node.filter if inp.cls in RECIPES and RECIPES[inp.cls].needs_filter \
                else None
            if inp.raw or inp.each:
                found = await self._raws(inp.each or inp.cls, chip, node.filter, night)
                if len(found) < inp.least:
                    raise NotFound(f"cannot make {cls} for {chip} on {night}: {len(found)} "
                                   f"{inp.each or inp.cls} that night, {inp.least} needed")
                if inp.raw:
                    node.raws[inp.ref] = found
                else:
                    node.inputs[inp.ref] = [await self._resolve(inp.cls, chip, sub_filter,
                                                                night, r, nodes)
                                            for r in found]
                    position = position or await self._position(found[0])
            elif inp.reference:
                node.raws[inp.ref] = await self._reference(inp.cls, position)
            else:
                node.inputs[inp.ref] = await self._resolve(
                    inp.cls, chip, sub_filter, night,
                    raw if RECIPES[inp.cls].raw_path is not None else None, nodes)
        refused = await self._policy(node, nodes)
        existing = await self.existing(Target(cls, chip, night, node.filter, raw))
        if refused:
            node.action, node.reasons = "refuse", refused
        elif existing is None:
            node.action, node.reasons = "make", [f"no valid {cls} exists"]
        else:
            node.reasons = await self._why_stale(await self._object(existing), node, nodes)
            if not node.reasons and node.key in self._anew:
                node.reasons = ["asked to make it anew"]
            node.action = "make" if node.reasons else "use"
            node.oid = existing
        nodes[node.key] = node
        return node.key

    async def _policy(self, node: Node, nodes: dict[Key, Node]) -> list[str]:
        """The QC policy (see _policy) on inputs known already: an input of a kind with
        flags the class refuses is left out (noted); a refused single input, or one whose
        own making is refused, refuses the node (the reasons)."""
        reasons = []
        for ref, keys in list(node.inputs.items()):
            many = isinstance(keys, list)
            kept = []
            for key in keys if isinstance(keys, list) else [keys]:
                dep = nodes[key]
                flags = refused_flags(node.cls, await self._object(dep.oid)) \
                    if dep.action == "use" and dep.oid else None
                if dep.action == "refuse" or flags:
                    why = f"its {ref} {dep.oid or dep.describe()} " + (
                        f"has {describe(flags)}, which {node.cls} refuses" if flags
                        else "is refused")
                    if many:
                        node.notes.append(f"left out: {why}")
                        continue
                    reasons.append(why)
                kept.append(key)
            if many:
                node.inputs[ref] = kept
                if not kept:
                    reasons.append(f"every one of its {ref} is refused by the QC policy")
        return reasons

    async def _why_stale(self, obj: ObjectOut, node: Node,
                         nodes: dict[Key, Node]) -> list[str]:
        """The rule of :mod:`awecore.staleness` on what the plan found: each input must
        still be what the plan would use, none must be remade, nor the object itself."""
        reasons = []
        for ref, keys in node.inputs.items():
            used = obj.refs.get(ref)
            if isinstance(keys, list):
                deps = [nodes[k] for k in keys]
                remade = [d for d in deps if d.action == "make"]
                if remade:
                    reasons.append(inputs_remade(ref, len(remade), remade[0].reasons[0]))
                elif sorted(used if isinstance(used, list) else []) != sorted(
                        str(d.oid) for d in deps):
                    reasons.append(input_set_changed(ref, products=True))
                continue
            dep = nodes[keys]
            if dep.action == "make":  # what it would be made from now is to be made
                reasons += input_reasons(InputState(ref, str(used), stale=dep.reasons[0]))
            elif used != dep.oid:
                was = await self._object(str(used)) if isinstance(used, str) else None
                reasons += input_reasons(InputState(
                    ref, str(used), invalidated=was is not None and was.is_valid == 0,
                    best=dep.oid))
        for ref, found in node.raws.items():
            used = obj.refs.get(ref)
            if isinstance(found, str):
                reasons += input_reasons(InputState(ref, str(used), best=found))
            elif sorted(used if isinstance(used, list) else [str(used)]) != found:
                reasons.append(input_set_changed(ref, products=False))
        calibration = issubclass(registry.get(obj.type), CalFile)
        return reasons + own_reasons(obj.type, obj.software_version, SOFTWARE_VERSION,
                                     invalidated=calibration and obj.is_valid != 1,
                                     made_with=obj.process_params, asked=node.params)
