"""Planning a target: walk its inputs backwards, like make, and decide what to make.

Each node is a product for a data ID (``awecore.dimensions``: the values of its class's
dimensions), and nodes are keyed by (class, data ID): a calibration's is its chip (and
filter) and night, a reduced frame's and what is made from it adds its raw frame; a recipe
may select its inputs by data ID itself (``Input.select``: a product over a sky tile across
nights and chips), and dimensions beyond these travel with the node. A node is *used* when
the best existing object is up to date (the rule of :mod:`awecore.staleness`: every input
is still the best of its kind, none newer, none invalidated, none outside its validity
window, its raw frames are the night's, its software version and parameters are current).
Otherwise it is *made*, and the plan says why. Nodes are shared, so the plan is a DAG
without duplicates, in an order that makes inputs first.

Validity drives the choice of every calibration: for an observation at time T the planner
uses the best valid calibration whose window covers T (QC policy, newest first), from any
night; its node is that calibration's own night (what it was made from), so every product of
a survey that shares it shares the node. When none covers T, one is made from the nearest
night that has enough raw calibration frames, within the class's maximum distance (the rules
of ``_rules``), and the node says which night and why. A calibration made only from other
products (a hot-pixel map from a bias) is made from the night of the one it is made from.
When nothing qualifies, NotFound names the class, chip, filter, time and the nearest
candidates with their windows.

The planner is in parts: what it reads, in batches (``_read``), how it chooses a calibration
(``_choose``), how it judges what it found (``_stale``), and here the walk. It only reads the
catalogue, through a :class:`~._ports.CatalogReader`, and awaits it: a service runs it on its
own event loop, a unit test on an in-memory catalogue, a scientist's prompt through the sync
facade (``_sync``). It walks every target concurrently and asks the catalogue in batches
(``_batch``): the best calibrations of many data IDs in one request, the records of many
oids, the raw frames of many chips; of the targets' raw frames only the few fields it needs,
where the catalogue answers so (``CatalogValues``).
"""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import Mapping, Sequence
from typing import Any

from ..dimensions import DIMENSIONS, DataId
from ..errors import InvalidRequest, NotFound
from ..model import Chip, DBObject, Filter, RawScienceFrame, registry
from ..query import MAX_IN_VALUES, Compare, In, OrderBy, QuerySpec
from ..records import ObjectOut
from ..tiles import tile
from ._choose import Chooser
from ._gc import fewer_collections
from ._nodes import (
    LOOKUP,
    Key,
    Node,
    Plan,
    Target,
    calibrates,
    key_of,
    midnight,
    night_of,
    night_window,
    run_all,
    target_key,
)
from ._ports import Calibration
from ._recipes import RECIPES, Input
from ._stale import Judge


def extra_for(cls: str, values: Mapping[str, str]) -> dict[str, str] | None:
    """The values of a data ID's dimensions beyond chip, filter, night and raw frame that a
    product of ``cls`` has (its instrument only where it has no chip to name it)."""
    if not values:  # the common case, asked for every input of every node of a plan
        return None
    dims = dimensions_of(cls)
    kept = {k: v for k, v in values.items() if k in dims
            and not (k == "instrument" and "chip" in dims)}
    return kept or None


def dimensions_of(cls: str) -> tuple[str, ...]:
    """The dimensions a class declares (for a class that declares none, those of a product
    of one chip and night: it is made for a tile only if it says so)."""
    found = registry.get(cls).dimensions if cls in registry else ()
    return found or tuple(d for d in DIMENSIONS if d != "tile")


def _way(inp: Input) -> str:
    """How the planner finds an input of a kind (the branches of ``AsyncPlanner._input``):
    by a selector of its own, a night's raw frames (or a product per raw frame), a class
    AWE cannot make, a product across chips and nights, one made from the node's raw
    frame, a calibration for the node's moment, or a product of the node's chip and night."""
    if inp.select is not None:
        return "select"
    if inp.raw or inp.each:
        return "raw"
    sub = RECIPES.get(inp.cls)
    if sub is None:
        return "unknown"
    if "chip" not in dimensions_of(inp.cls):
        return "across"
    if sub.raw_path is not None:
        return "from raw"
    return "calibration" if calibrates(inp.cls) else "plain"


__all__ = ["AsyncPlanner", "Key", "Node", "Plan", "Target", "calibrates", "key_of", "midnight",
           "night_of", "night_window"]


class AsyncPlanner(Chooser, Judge):
    """Plans targets against a catalogue reader; keeps the records it read for its next
    plans (one planner per request, or per a scientist's question: the catalogue changes).
    ``rules`` are the calibration rules (``_rules``; by default from the environment)."""


    # -- checking targets ---------------------------------------------------------------
    async def plan(self, cls: str | type[DBObject], chip: str | None, night: dt.date | None,
                   filter: str | None = None, raw: str | None = None,
                   anew: bool = False, extra: dict[str, str] | None = None) -> Plan:
        name = cls if isinstance(cls, str) else cls.__name__
        return await self.plan_many([Target(name, chip, night, filter, raw,
                                            DataId(extra or {}))], anew)

    async def check(self, target: Target) -> None:
        """Refuse a target that cannot be: an unknown class, a missing filter or raw frame,
        a raw frame of another kind, chip, filter or night than the target says."""
        recipe = RECIPES.get(target.cls)
        if recipe is None:
            raise InvalidRequest(f"AWE cannot make {target.cls}; it makes {', '.join(RECIPES)}")
        if recipe.needs_filter and target.filter is None:
            raise InvalidRequest(f"{target.cls} depends on a filter: give one")
        dims = dimensions_of(target.cls)
        beyond = sorted(set(target.extra) - set(dims)) if target.extra else []
        if beyond:
            raise InvalidRequest(f"{target.cls} has no dimension {', '.join(beyond)}; its "
                                 f"dimensions are {', '.join(dims)}")
        if "tile" in target.extra:
            tile(target.extra["tile"])  # a name of the tiling, or refused saying why
        elif "tile" in dims:
            raise InvalidRequest(f"a {target.cls} is made for a sky tile: give it (tile=; "
                                 "`awe tiles --ra RA --dec DEC` says which cover a position)")
        if "chip" not in dims:  # across chips and nights (a sky tile's)
            if target.chip is not None or target.night is not None:
                raise InvalidRequest(f"a {target.cls} is made across chips and nights: give "
                                     "its " + ", ".join(d for d in dims if d != "instrument")
                                     + ", not a chip or night")
            if target.filter is not None:
                await self._known(Filter, target.filter)
            return
        if target.chip is None or target.night is None:
            raise InvalidRequest(f"{target.cls}: give the night and the chip")
        # (every target of a plan asks: the names were fetched for all of them at once)
        if ("Chip", target.chip) not in self._names:
            await self._known(Chip, target.chip)
        if recipe.needs_filter and target.filter is not None \
                and ("Filter", target.filter) not in self._names:
            await self._known(Filter, target.filter)
        if recipe.raw_path is None:
            return
        if target.raw is None:
            raise InvalidRequest(f"a {target.cls} is made from one raw frame: give it (raw=)")
        raw = await self._raw_frame(target.raw)
        if self._raw_science is None:  # once a plan, not once a target
            self._raw_science = frozenset(registry.subclass_names(RawScienceFrame))
        if raw.type not in self._raw_science:
            raise InvalidRequest(f"{target.raw} is a {raw.type}, not a raw science frame")
        if raw.chip is None or raw.filter is None or raw.date_obs is None:
            raise InvalidRequest(f"raw frame {target.raw} lacks its chip, filter or date_obs")
        if raw.chip not in self._objects or raw.filter not in self._objects:
            await self._objects_of([str(raw.chip), str(raw.filter)])
        chip = str((await self._object(str(raw.chip))).attributes["name"])
        filt = str((await self._object(str(raw.filter))).attributes["name"])
        when = self._times[target.raw]  # (parsed once, for the walk too)
        night = night_of(when if when is not None else
                         dt.datetime.fromisoformat(str(raw.date_obs)))
        if (chip, filt, night) != (target.chip, target.filter, target.night):
            raise InvalidRequest(
                f"raw frame {target.raw} is of chip {chip}, filter {filt}, night {night}; "
                f"the target says {target.chip}, {target.filter}, {target.night}")

    async def _prefetch_names(self, chips: set[str], filters: set[str]) -> None:
        """The chips and filters of many targets, in one query each."""
        for cls, names in ((Chip, chips), (Filter, filters)):
            wanted = sorted(n for n in names if (cls.__name__, n) not in self._names)
            for i in range(0, len(wanted), MAX_IN_VALUES):
                spec = QuerySpec(cls=cls.__name__, where=In(
                    path=("name",), values=tuple(wanted[i:i + MAX_IN_VALUES])))
                for r in await self.catalog.find(spec):
                    self._names.setdefault((cls.__name__, str(r.attributes.get("name"))),
                                           []).append(r)

    async def _known(self, cls: type[Chip | Filter], name: str) -> None:
        """A chip or filter the catalogue knows; if not, a NotFound that lists those it
        knows (of the chip's instrument where one goes by that name elsewhere)."""
        if (cls.__name__, name) in self._names:
            return
        spec = QuerySpec(cls=cls.__name__, where=Compare(op="eq", path=("name",), value=name))
        found = await self.catalog.find(spec)
        if found:
            self._names[(cls.__name__, name)] = found
            return
        every = QuerySpec(cls=cls.__name__, order_by=(OrderBy(path=("name",)),))
        known = sorted({str(r.attributes.get("name"))
                        for r in await self.catalog.find(every, limit=500)})
        raise NotFound(f"no {cls.__name__.lower()} {name!r}; known: "
                       + (", ".join(known) if known else "none (ingest raw data first)"))

    async def existing(self, target: Target) -> str | None:
        """The object getting the target would start from (up to date or not), if any: for
        a calibration, the best whose window covers the middle of the night."""
        await self.check(target)
        recipe = RECIPES[target.cls]
        if recipe.raw_path is not None:
            assert target.raw is not None
            return await self._made_from(target.cls, recipe.raw_path, target.raw,
                                         self._params(target.cls), target.extra)
        if target.night is None:
            return await self._made_for(target.cls, target.filter, target.extra,
                                        self._params(target.cls))
        if not calibrates(target.cls):
            return None
        assert target.chip is not None
        return await self._best(target.cls, target.chip,
                                target.filter if recipe.needs_filter else None,
                                midnight(target.night), self._params(target.cls))

    async def target_of(self, record: ObjectOut) -> Target:
        """The target an existing product answers: its class, chip, filter, night, raw (a
        calibration's night is the one it was made from)."""
        recipe = RECIPES.get(record.type)
        if recipe is None:
            raise InvalidRequest(f"a {record.type} is not made by AWE: it has no target")
        dims = dimensions_of(record.type)
        extra = DataId({d: record.attributes.get(d) for d in dims
                        if d not in ("instrument", "chip", "filter", "night", "raw")})
        if "chip" not in dims:
            ref = record.refs.get("filter")
            filt = (str((await self._object(str(ref))).attributes["name"])
                    if isinstance(ref, str) else None)
            return Target(record.type, None, None, filt, None, extra)
        await self._objects_of([str(record.refs[r]) for r in ("chip", "filter")
                                if isinstance(record.refs.get(r), str)])
        chip = str((await self._object(str(record.refs["chip"]))).attributes["name"])
        filt = (str((await self._object(str(record.refs["filter"]))).attributes["name"])
                if recipe.needs_filter else None)
        raw = (await self._follow([record], recipe.raw_path))[0] if recipe.raw_path else None
        if raw is not None:
            when = await self._observed(raw)
            assert when is not None, f"raw frame {raw} has no date_obs"
            night = night_of(when)
        else:
            night = await self.made_night(record)
        return Target(record.type, chip, night, filt, raw, extra)

    # -- planning ---------------------------------------------------------------------
    async def plan_many(self, targets: Sequence[Target], anew: bool = False) -> Plan:
        """One plan for many targets: what they share is planned (and made) once. With
        ``anew`` the targets themselves are made even where an up-to-date one exists.
        The collector runs less often meanwhile (``_gc``)."""
        with fewer_collections():
            return await self._plan_many(targets, anew)

    async def _plan_many(self, targets: Sequence[Target], anew: bool) -> Plan:
        unknown = sorted(set(self.params) - set(RECIPES))
        if unknown:
            raise InvalidRequest(f"parameters for {', '.join(unknown)}, which AWE does not "
                                 f"make; it makes {', '.join(RECIPES)}")
        self._reset()
        self._batch = sorted({t.raw for t in targets if t.raw is not None})
        self._in_batch = frozenset(self._batch)
        await self._raw_frames(self._batch)
        # the chips and filters of the targets' raw frames, for the checks: one request
        await self._objects_of([ref for r in self._batch if r in self._raw
                                for ref in (self._raw[r].chip, self._raw[r].filter)
                                if isinstance(ref, str)])
        await self._prefetch_names({t.chip for t in targets if t.chip is not None},
                                   {t.filter for t in targets if t.filter is not None})
        for t in targets:
            await self.check(t)
        await self._prefetch_calibrations(targets)
        # one target of each chip, filter, night and class first, together: they walk what
        # the others share (the calibrations, each asked for once a batch); the others then
        # find every shared node made, and are walked without waiting on the catalogue
        first: dict[tuple[str, str | None, str | None, dt.date | None], int] = {}
        for i, t in enumerate(targets):
            first.setdefault((t.cls, t.chip, t.filter, t.night), i)
        lead = sorted(first.values())
        try:
            roots = dict(zip(lead, await run_all(self._root(targets[i], anew) for i in lead),
                             strict=True))
            rest = [i for i in range(len(targets)) if i not in roots]
            roots.update(zip(rest, await run_all(self._root(targets[i], anew) for i in rest),
                             strict=True))
        except BaseException:
            for future in self._memo.values():
                future.cancel()
            await asyncio.gather(*self._memo.values(), return_exceptions=True)
            raise
        return Plan([roots[i] for i in range(len(targets))], self._nodes)

    async def _prefetch_calibrations(self, targets: Sequence[Target]) -> None:
        """Ask at once for the calibrations every frame of the targets needs at its own
        moment (the bias, flat, ... of each reduced frame): one request for thousands, before
        the walk asks them one frame at a time."""
        wanted: dict[Calibration, dt.date] = {}  # each, with the night of its moment
        #: per class of target: the calibrations a frame of it needs (class, by filter),
        #: found once (through the products made from the same frame)
        needs: dict[str, list[tuple[str, bool]]] = {}

        def per_frame(cls: str, out: list[tuple[str, bool]]) -> list[tuple[str, bool]]:
            for inp in RECIPES[cls].inputs:
                sub = RECIPES.get(inp.cls)
                if sub is None or inp.raw or inp.each or inp.reference:
                    continue
                if sub.raw_path is not None:
                    per_frame(inp.cls, out)
                elif calibrates(inp.cls):
                    out.append((inp.cls, sub.needs_filter))
            return out

        for t in targets:
            if t.raw is not None and t.chip is not None \
                    and RECIPES[t.cls].raw_path is not None:
                when = (self._times[t.raw] if t.raw in self._times  # (check() parsed it)
                        else await self._observed(t.raw))
                if when is None:
                    continue
                if t.cls not in needs:
                    needs[t.cls] = per_frame(t.cls, [])
                night = night_of(when)
                for cls, by_filter in needs[t.cls]:
                    wanted[Calibration(cls, t.chip, when, t.filter if by_filter else None)] = \
                        night
        await self._prefetch_spans(wanted)
        await self._bests.many(sorted((c for c in wanted if not self._bests.known(c)),
                                      key=lambda c: (c.cls, c.chip, c.time)))

    async def _prefetch_spans(self, wanted: Mapping[Calibration, dt.date]) -> None:
        """The moments of a night that want the same class for the same chip (and filter)
        asked as one span, when the catalogue answers for spans (``CatalogSpans``): where
        it says one calibration (or none) is the best over the whole span, every moment
        of it has that answer; the others are left to be asked per moment. The catalogue
        decides what is best; the planner does not judge windows itself. (``wanted``: each
        look-up with the night of its moment.)"""
        over = getattr(self.catalog, "best_over", None)
        if over is None:
            return
        groups: dict[tuple[str, str, str | None, dt.date], list[Calibration]] = {}
        for c, night in wanted.items():
            groups.setdefault((c.cls, c.chip, c.filter, night), []).append(c)
        spans = {k: Calibration(k[0], k[1], min(c.time for c in g), k[2],
                                max(c.time for c in g))
                 for k, g in groups.items() if len(g) > 1}
        if not spans:
            return
        found = await over(list(spans.values()))
        for key, (best, whole) in zip(spans, found, strict=True):
            if not whole:
                continue
            if best is not None:
                self._remember([best])
            for c in groups[key]:
                self._bests.put(c, best)

    async def _root(self, t: Target, anew: bool) -> Key:
        recipe = RECIPES[t.cls]
        filt = t.filter if recipe.needs_filter else None
        if recipe.raw_path is None and calibrates(t.cls):
            assert t.chip is not None and t.night is not None
            return await self._calibration(t.cls, t.chip, filt, midnight(t.night), anew)
        if anew:
            self._anew.add(target_key(t))
        return await self._node(t.cls, t.chip, filt, t.night,
                                t.raw if recipe.raw_path is not None else None,
                                extra=extra_for(t.cls, t.extra))

    async def _node(self, cls: str, chip: str | None, filt: str | None,
                    night: dt.date | None, raw: str | None, *,
                    existing: str | None = LOOKUP,
                    why: str | None = None, version: str | None = None,
                    keep: str | None = None, extra: dict[str, str] | None = None) -> Key:
        """The node of a product (built once per plan, whoever asks): ``existing`` is the
        object found for it (or None: none, to be made, because ``why``)."""
        key = key_of(cls, chip, filt, night, raw, version, extra)
        if key in self._nodes:  # built already (what ``_once`` would answer, without it)
            return key
        return await self._once(("node", key), lambda: self._build(
            key, cls, chip, filt, night, raw, existing, why, version, keep, extra or {}))

    async def _build(self, key: Key, cls: str, chip: str | None, filt: str | None,
                     night: dt.date | None, raw: str | None, existing: str | None, why: str | None,
                     version: str | None, keep: str | None, extra: dict[str, str]) -> Key:
        """Build the node ``key`` (its class and data ID: ``Node.key`` of what is given)."""
        recipe = RECIPES[cls]
        node = Node(cls, chip, filt, night, raw, params=dict(self._params(cls)),
                    version=version, time=midnight(night) if night is not None else None,
                    extra=extra)
        position = None  # where on the sky: what a reference catalogue must cover
        if "tile" in extra:
            on = tile(extra["tile"])
            position = (on.ra, on.dec)
        if raw is not None and recipe.raw_path is not None:
            # (what the walk asks of every node of a raw frame: at hand after the first)
            position = (self._positions[raw] if raw in self._positions
                        else await self._position(raw))
            node.time = (self._times[raw] if raw in self._times
                         else await self._observed(raw)) or node.time
            if recipe.raw_path == ("raw",):
                node.raws["raw"] = raw
        # one after the other: a plan walks thousands of nodes at once, so the catalogue is
        # asked in batches anyway, and a coroutine per input would cost more than it saves
        inputs = self._ways(cls)
        got = []
        for way in inputs:  # a loop, not a comprehension: that would be a coroutine more
            got.append(await self._input(node, *way))
        for (inp, _, _), (value, first) in zip(inputs, got, strict=True):
            if inp.raw:
                node.raws[inp.ref] = value
            else:
                node.inputs[inp.ref] = value
            if position is None and first is not None:
                position = await self._position(first)
        for inp in recipe.inputs:
            if inp.reference:
                node.raws[inp.ref] = await self._reference(inp.cls, position)
        # (node.inputs is in the recipe's order already: filled in that order above)
        refused = [] if self._nothing_to_refuse(node) else await self._policy(node)
        if existing == LOOKUP:
            existing = await self._existing(node)
        if refused:
            node.action, node.reasons = "refuse", refused
            self._refusing = True
        elif existing is None:
            node.action, node.reasons = "make", [why or f"no valid {cls} exists"]
        else:
            node.reasons = await self._why_stale(await self._object(existing), node)
            if not node.reasons and key in self._anew:
                node.reasons = ["asked to make it anew"]
            node.action = "make" if node.reasons else "use"
            node.oid = existing
            if keep is not None and node.action == "make":
                node.notes.append("stale (" + "; ".join(node.reasons) + "), but not made anew:"
                                  " one made anew would not cover the moment it serves, and "
                                  f"{keep}")
                node.action, node.reasons = "use", []
        if node.action == "make" and calibrates(cls) and chip is not None and night is not None:
            node.window = await self._made_window(cls, chip, night)
        self._nodes[key] = node
        return key

    def _ways(self, cls: str) -> list[tuple[Input, str, bool]]:
        """How each input of a class that is not a reference catalogue is found, and
        whether it is by the node's filter (``_input``): worked out once a plan per class,
        not once per node (a plan has 10^4 nodes of a handful of classes)."""
        found = self._ways_of.get(cls)
        if found is None:
            found = self._ways_of[cls] = [
                (i, _way(i), i.cls in RECIPES and RECIPES[i.cls].needs_filter)
                for i in RECIPES[cls].inputs if not i.reference]
        return found

    async def _input(self, node: Node, inp: Input, way: str, by_filter: bool
                     ) -> tuple[Any, str | None]:
        """One input of a node, found the ``way`` of its kind (``_way``): its value (raw
        frames, a node's key, a list of keys) and a raw frame that says where on the sky
        the node is (or None)."""
        chip, night = node.chip, node.night
        sub_filter = node.filter if by_filter else None
        if way == "select":  # the recipe finds its inputs' data IDs itself
            assert inp.select is not None
            found_ids = await inp.select(self.catalog, node.data_id)
            if len(found_ids) < inp.least:
                raise NotFound(f"cannot make {node.what}: {len(found_ids)} {inp.cls} "
                               f"selected, {inp.least} needed")
            # the chips and filters of what was selected, in one query each (the walk
            # beneath finds raw frames by chip)
            await self._prefetch_names({d["chip"] for d in found_ids if "chip" in d},
                                       {d["filter"] for d in found_ids if "filter" in d})
            await self._objects_of(sorted({d["raw"] for d in found_ids if "raw" in d}))
            return [await self._node_of(inp.cls, d) for d in sorted(found_ids)], None
        if way == "raw":
            if chip is None or night is None:
                raise InvalidRequest(f"{node.cls} is made across chips and nights: it cannot "
                                     f"take a night's {inp.each or inp.cls}")
            found = await self._raws(inp.each or inp.cls, chip, node.filter, night)
            if len(found) < inp.least:
                raise NotFound(f"cannot make {node.cls} for {chip} on {night}: {len(found)} "
                               f"{inp.each or inp.cls} that night, {inp.least} needed")
            if inp.raw:
                return found, None
            keys = [await self._node(inp.cls, chip, sub_filter, night, r) for r in found]
            return keys, found[0]
        if way == "unknown":
            raise InvalidRequest(f"{node.cls} is made from {inp.cls}, which AWE cannot make")
        extra = extra_for(inp.cls, node.extra) if node.extra else None
        if way == "across":  # a product across chips and nights (of the node's tile)
            return await self._node(inp.cls, None, sub_filter, None, None, extra=extra), None
        if chip is None or night is None:
            raise InvalidRequest(f"{node.cls} is made across chips and nights, so it cannot "
                                 f"take one {inp.cls}: select them (Input.select)")
        if way == "from raw":
            return await self._node(inp.cls, chip, sub_filter, night, node.raw,
                                    extra=extra), None
        if way == "calibration":
            assert node.time is not None
            return await self._calibration(inp.cls, chip, sub_filter, node.time), None
        return await self._node(inp.cls, chip, sub_filter, night, None, extra=extra), None

    async def _node_of(self, cls: str, data_id: DataId) -> Key:
        """The node of a product given by its data ID (the dimensions beyond chip, filter,
        night and raw frame travel with it)."""
        if cls not in RECIPES:
            raise InvalidRequest(f"AWE cannot make {cls}; it makes {', '.join(RECIPES)}")
        known = {"chip", "filter", "night", "raw"}
        night = data_id.get("night")
        when = dt.date.fromisoformat(night) if night else None
        extra = extra_for(cls, {k: v for k, v in data_id.items() if k not in known})
        if "chip" not in dimensions_of(cls):
            return await self._node(cls, None, data_id.get("filter"), None, None,
                                    extra=extra or None)
        if when is None or "chip" not in data_id:
            raise InvalidRequest(f"{cls} {data_id}: the planner needs a night and a chip")
        if calibrates(cls) and RECIPES[cls].raw_path is None and not extra:
            return await self._calibration(cls, data_id["chip"], data_id.get("filter"),
                                           midnight(when))
        return await self._node(cls, data_id["chip"], data_id.get("filter"), when,
                                data_id.get("raw"), extra=extra)

    async def _existing(self, node: Node) -> str | None:
        recipe = RECIPES[node.cls]
        if recipe.raw_path is not None and node.raw is not None:
            if not node.extra and node.raw in self._in_batch:
                done = self._made_batch.get((node.cls, ()))
                if done is not None:  # what ``_made_from`` would answer, at hand
                    return done[node.raw]
            return await self._made_from(node.cls, recipe.raw_path, node.raw, node.params,
                                         node.extra)
        if node.chip is None or node.night is None:
            return await self._made_for(node.cls, node.filter, node.extra, node.params)
        if not calibrates(node.cls):
            return None
        return await self._best(node.cls, node.chip, node.filter, midnight(node.night),
                                node.params)
