"""Reading the catalogue for a plan, in batches: records, the best calibrations of many data
IDs, the raw frames of many chips and nights, the products made from raw frames, the night a
calibration was made from, and who curated one (its history). What one plan learns is kept
for that plan (``_reset``); each question is asked once (``_once``)."""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import Awaitable, Callable, Hashable, Iterable, Mapping, Sequence
from typing import Any, NamedTuple, cast

from ..errors import AweError, NotFound
from ..model import Ref, registry
from ..query import MAX_IN_VALUES, And, Between, Compare, In, OrderBy, QuerySpec
from ..records import ObjectOut
from ..staleness import (
    covers,
    curated,
    window_change,
)
from ._batch import Batcher
from ._nodes import (
    LOOKUP,
    Key,
    Node,
    RawKey,
    T,
    night_of,
    parse_time,
    run_all,
)
from ._ports import Calibration, CatalogReader
from ._recipes import RECIPES, Input
from ._rules import CalibrationRules, night_window

__all__ = ["RawFrame", "Reader", "dimension_conditions", "night_path"]

#: what the planner reads of a target's raw frame (``RawFrame``), as ``POST /query/values``
#: fields
RAW_FIELDS = ("oid", "type", "refs.chip", "refs.filter", "attributes.date_obs",
              "attributes.ra", "attributes.dec")
#: what it reads of a night's raw frames (``Reader._frames``)
FRAME_FIELDS = ("oid", "refs.chip", "attributes.date_obs", "attributes.ra", "attributes.dec")


def _sky(ra: Any, dec: Any) -> tuple[float, float] | None:
    """A frame's position from ``POST /query/values`` fields (null where it has none)."""
    return None if ra is None or dec is None else (float(ra), float(dec))


def _position_in(attributes: Mapping[str, Any]) -> tuple[float, float] | None:
    """A frame's position from its record's attributes (None where it gives none)."""
    a = attributes
    return (float(a["ra"]), float(a["dec"])) if "ra" in a and "dec" in a else None


class RawFrame(NamedTuple):
    """What the planner needs of a target's raw frame: its class, its chip's and filter's
    oids and its ``date_obs`` as stored (each None where it has none); its moment and
    position go to ``Reader._times`` and ``_positions``."""

    type: str
    chip: Any
    filter: Any
    date_obs: Any


class Reader:
    """What a planner reads and keeps; the planner's parts (``_choose``, ``_stale``, ``_plan``)
    build on it."""


    def __init__(self, catalog: CatalogReader,
                 params: dict[str, dict[str, Any]] | None = None,
                 rules: CalibrationRules | None = None) -> None:
        self.catalog = catalog
        self.params = params or {}
        self.rules = rules if rules is not None else CalibrationRules.from_env()
        self._objects: dict[str, ObjectOut] = {}
        self._records: Batcher[str, ObjectOut | None] = Batcher(self._fetch_records, 1000)
        self._names: dict[tuple[str, str], list[ObjectOut]] = {}  # chips, filters by name
        self._has_values = True  # until the catalogue says it cannot (``_values``)
        self._reset()

    def _reset(self) -> None:
        """What one plan learns (the catalogue may change between plans)."""
        self._bests: Batcher[Calibration, ObjectOut | None] = Batcher(self._fetch_bests)
        self._ranges: Batcher[RawKey, dict[dt.date, list[str]]] = Batcher(self._fetch_raws)
        #: raw frames of a night by (class, chip, filter), from the ranges fetched
        self._seen_raws: dict[tuple[str, str, str | None], list[RawKey]] = {}
        self._memo: dict[Hashable, asyncio.Future[Any]] = {}
        #: the calibration node chosen for a (class, chip, filter, best found, night) where
        #: the choice does not depend on the moment (``Chooser._calibration``)
        self._chosen: dict[tuple[str, str, str | None, str | None, dt.date | None], Key] = {}
        self._nodes: dict[Key, Node] = {}
        #: raw frames of the targets, whose products are looked up together per class
        self._batch: list[str] = []
        self._in_batch: frozenset[str] = frozenset()
        self._anew: set[Key] = set()  # targets to make even where an up-to-date one exists
        #: products made from raw frames outside the targets', by (class, path, params):
        #: asked by many nodes at once (a night's standard frames), fetched together
        self._made: dict[tuple[str, tuple[str, ...], str], Batcher[str, str | None]] = {}
        # what the walk asks per node and is the same each time (a plan asks it 10^4 times):
        #: the targets' raw frames, by oid (``_raw_frames``)
        self._raw: dict[str, RawFrame] = {}
        #: a raw frame's moment and position, by oid
        self._times: dict[str, dt.datetime | None] = {}
        self._positions: dict[str, tuple[float, float] | None] = {}
        #: a class's process parameters (read only: a node takes a copy)
        self._params_of: dict[str, dict[str, Any]] = {}
        #: the window a calibration of a class made for a chip from a night will be given
        self._windows: dict[tuple[str, str, dt.date], tuple[dt.datetime, dt.datetime]] = {}
        #: products made from the targets' raw frames, by (class, extra dimensions): raw
        #: frame -> the newest (``_made_from``, once it has answered)
        self._made_batch: dict[tuple[str, tuple[tuple[str, str], ...]],
                               dict[str, str | None]] = {}
        #: a calibration to be made for other nights: the night whose reason it gives, and
        #: that reason (``Chooser._say_why``)
        self._said: dict[Key, tuple[dt.date, str]] = {}
        #: the reference catalogue of a class for a position (``_reference``)
        self._references: dict[tuple[str, tuple[float, float] | None], str] = {}
        #: per class, how each of its inputs is found (``AsyncPlanner._ways``)
        self._ways_of: dict[str, list[tuple[Input, str, bool]]] = {}
        #: the raw science frame classes (what a target's raw frame must be)
        self._raw_science: frozenset[str] | None = None
        #: whether any node was refused yet (until then the QC policy has less to look at)
        self._refusing = False

    # -- reading, in batches ----------------------------------------------------------
    def _remember(self, records: Iterable[ObjectOut]) -> None:
        for r in records:
            self._objects[r.oid] = r

    async def _fetch_records(self, oids: list[str]) -> list[ObjectOut | None]:
        got = await self.catalog.get_records(oids)
        self._remember(got.values())
        return [got.get(o) for o in oids]

    async def _fetch_bests(self, wanted: list[Calibration]) -> list[ObjectOut | None]:
        found = await self.catalog.best(wanted)
        self._remember(r for r in found if r is not None)
        return found

    async def _object(self, oid: str) -> ObjectOut:
        found = self._objects.get(oid) or await self._records.get(oid)
        if found is None:
            raise NotFound(f"no object {oid}")
        return found

    async def _objects_of(self, oids: Sequence[str]) -> None:
        """Have these records at hand (one request for those that are not)."""
        missing = [o for o in dict.fromkeys(oids) if o not in self._objects]
        if missing:
            await self._records.many(missing)

    async def _raw_frames(self, oids: Sequence[str]) -> None:
        """Have at hand what the walk needs of raw frames (``RawFrame``, moment, position):
        from a catalogue that answers with a few fields (``CatalogValues``) only those, in
        one request per 10^4 (their whole records were most of a large plan's reading);
        otherwise from their records. One the caller may not see is left out, as a record
        is."""
        wanted = [o for o in dict.fromkeys(oids) if o not in self._raw]
        if not wanted:
            return
        rows = await self._raw_rows(wanted)
        if rows is not None:
            for oid, cls, chip, filt, date_obs, ra, dec in rows:
                self._keep_raw(oid, RawFrame(cls, chip, filt, date_obs), _sky(ra, dec))
            return
        await self._objects_of(wanted)  # (an older catalogue, or a reader without values)
        for oid in wanted:
            r = self._objects.get(oid)
            if r is not None:
                self._keep_raw(oid, RawFrame(r.type, r.refs.get("chip"), r.refs.get("filter"),
                                             r.attributes.get("date_obs")),
                               _position_in(r.attributes))

    async def _raw_rows(self, oids: list[str]) -> list[list[Any]] | None:
        """The RAW_FIELDS of raw frames, from a catalogue that answers so (else None)."""
        rows: list[list[Any]] = []
        for i in range(0, len(oids), MAX_IN_VALUES):
            got = await self._values(QuerySpec(cls="DBObject", where=In(
                path=("oid",), values=tuple(oids[i:i + MAX_IN_VALUES]))), RAW_FIELDS)
            if got is None:
                return None
            rows += got
        return rows

    async def _values(self, spec: QuerySpec, fields: Sequence[str]) -> list[list[Any]] | None:
        """A few fields of each object a query selects, from a catalogue that answers so
        (``CatalogValues``); None from one that does not: read the records."""
        values = getattr(self.catalog, "values", None)
        if values is None or not self._has_values:
            return None
        found = cast("list[list[Any]] | None", await values(spec, fields))
        self._has_values = found is not None  # (an older catalogue is asked once)
        return found

    def _keep_raw(self, oid: str, raw: RawFrame, position: tuple[float, float] | None) -> None:
        self._raw[oid] = raw
        self._times[oid] = parse_time(raw.date_obs)
        self._positions[oid] = position

    async def _raw_frame(self, oid: str) -> RawFrame:
        """A raw frame's ``RawFrame`` (read now if it is not at hand); NotFound if there is
        none the caller may see."""
        if oid not in self._raw:
            await self._raw_frames([oid])
        found = self._raw.get(oid)
        if found is None:
            raise NotFound(f"no object {oid}")
        return found

    async def _once(self, key: Hashable, make: Callable[[], Awaitable[T]]) -> T:
        """``make()`` once per plan for ``key``; every asker gets the same answer. The first
        asker runs it itself (no task: a plan asks this 10^5 times), the others await it."""
        future = self._memo.get(key)
        if future is not None:
            if future.done():
                return cast(T, future.result())
            # not shielded: an asker is cancelled only when the whole plan is (plan_many)
            return cast(T, await future)
        future = asyncio.get_running_loop().create_future()
        self._memo[key] = future
        try:
            value = await make()
        except BaseException as exc:
            if isinstance(exc, asyncio.CancelledError):
                future.cancel()
            else:
                future.set_exception(exc)
                future.exception()  # retrieved: whoever else asked has it raised
            raise
        future.set_result(value)
        return value

    def _chip_oids(self, chip: str) -> list[str]:
        return [r.oid for r in self._names.get(("Chip", chip), [])]

    async def _fetch_raws(self, keys: list[RawKey]) -> list[dict[dt.date, list[str]]]:
        """Raw frames of a class for many chips and night ranges: one query per class,
        filter and span of nights, for every chip at once. Ranges that overlap or touch
        are read as one span (every night of a survey asks for the nights around it: read
        apart, the same frames came again for each)."""
        groups: dict[tuple[str, str | None], list[RawKey]] = {}
        for key in keys:
            groups.setdefault((key[0], key[2]), []).append(key)
        spans: list[tuple[str, str | None, dt.date, dt.date, list[RawKey]]] = []
        for (cls, filt), members in groups.items():
            members.sort(key=lambda k: (k[3], k[4]))
            current: list[RawKey] = []
            hi = members[0][4]
            for k in members:
                if current and k[3] <= hi + dt.timedelta(days=1):
                    current.append(k)
                    hi = max(hi, k[4])
                    continue
                if current:
                    spans.append((cls, filt, current[0][3], hi, current))
                current, hi = [k], k[4]
            spans.append((cls, filt, current[0][3], hi, current))
        found: dict[RawKey, dict[dt.date, list[str]]] = {k: {} for k in keys}

        async def one(cls: str, filt: str | None, lo: dt.date, hi: dt.date,
                      members: list[RawKey]) -> None:
            by_chip: dict[str, list[RawKey]] = {}
            for k in members:
                by_chip.setdefault(k[1], []).append(k)
            chip_of = {oid: chip for chip in by_chip for oid in self._chip_oids(chip)}
            start, end = night_window(lo)[0], night_window(hi)[1]
            conds: list[Any] = [Between(path=("date_obs",), low=start.isoformat(),
                                        high=end.isoformat())]
            if filt is not None:
                conds.append(Compare(op="eq", path=("filter", "name"), value=filt))
            oids = sorted(chip_of)
            for i in range(0, len(oids), MAX_IN_VALUES):
                spec = QuerySpec(cls=cls, where=And(items=(
                    In(path=("chip",), values=tuple(oids[i:i + MAX_IN_VALUES])), *conds)))
                for oid, ref, when in await self._frames(spec):
                    chip = chip_of.get(str(ref))
                    if chip is None or when is None:
                        continue
                    night = night_of(when)
                    for k in by_chip[chip]:
                        if k[3] <= night <= k[4]:
                            found[k].setdefault(night, []).append(oid)

        await run_all([one(*span) for span in spans])
        for nights in found.values():
            for oids in nights.values():
                oids.sort()
        return [found[k] for k in keys]

    async def _frames(self, spec: QuerySpec) -> list[tuple[str, Any, dt.datetime | None]]:
        """The raw frames a query selects: oid, chip reference and moment each; their
        moments and positions kept for the walk. Only those fields from a catalogue that
        answers so (a survey's nights of calibration frames are thousands of records)."""
        rows = await self._values(spec, FRAME_FIELDS)
        if rows is None:
            records = await self.catalog.find(spec)
            self._remember(records)
            return [(r.oid, r.refs.get("chip"), parse_time(r.attributes.get("date_obs")))
                    for r in records]
        out = []
        for oid, chip, date_obs, ra, dec in rows:
            when = self._times[oid] = parse_time(date_obs)
            self._positions[oid] = _sky(ra, dec)
            out.append((oid, chip, when))
        return out

    async def _raw_nights(self, cls: str, chip: str, filt: str | None, lo: dt.date,
                          hi: dt.date) -> dict[dt.date, list[str]]:
        """The raw frames of a class for a chip (and filter) by night, nights lo to hi."""
        for seen in self._seen_raws.get((cls, chip, filt), []):
            if seen[3] <= lo and hi <= seen[4] and self._ranges.known(seen):
                got = await self._ranges.get(seen)
                return {n: v for n, v in got.items() if lo <= n <= hi}
        key = (cls, chip, filt, lo, hi)
        self._seen_raws.setdefault((cls, chip, filt), []).append(key)
        return await self._ranges.get(key)

    async def _raws(self, cls: str, chip: str, filt: str | None, night: dt.date) -> list[str]:
        return (await self._raw_nights(cls, chip, filt, night, night)).get(night, [])

    async def _best(self, cls: str, chip: str, filt: str | None, when: dt.datetime,
                    params: dict[str, Any]) -> str | None:
        """The best calibration for the chip at that time; among those made with other
        parameters (a user's tuned product), the newest made with these, if any."""
        best = await self._bests.get(Calibration(cls, chip, when, filt))
        if best is None:
            return None
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
        found = self._references.get((cls, position))
        if found is None:  # (every frame of a field asks: once it is known, at hand)
            found = self._references[(cls, position)] = await self._once(
                ("reference", cls, position), lambda: self._find_reference(cls, position))
        return found

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
        if raw in self._positions:
            return self._positions[raw]
        found = _position_in((await self._object(raw)).attributes)
        self._positions[raw] = found
        return found

    async def _observed(self, raw: str) -> dt.datetime | None:
        """A raw frame's moment (parsed once a plan: every node made from it asks)."""
        if raw in self._times:
            return self._times[raw]
        found = parse_time((await self._object(raw)).attributes.get("date_obs"))
        self._times[raw] = found
        return found

    @staticmethod
    def _rank(record: ObjectOut, params: dict[str, Any]) -> tuple[bool, dt.datetime, str]:
        """Made with the parameters asked for first, then the newest."""
        return ((record.process_params or {}) == params, record.creation_date, record.oid)

    async def _made_from(self, cls: str, path: tuple[str, ...], raw: str,
                         params: dict[str, Any], extra: Mapping[str, str] | None = None
                         ) -> str | None:
        """The newest valid product of ``cls`` made (directly or not) from a raw frame (made
        with ``params`` if there is one), for the dimensions beyond the raw frame's given in
        ``extra`` (a sky tile). For the targets' own raw frames, one query per class (and
        extra dimensions) answers for all of them."""
        conds = dimension_conditions(cls, extra)
        dims = tuple(sorted((extra or {}).items()))
        if raw in self._in_batch:
            found = self._made_batch.get((cls, dims))
            if found is None:
                found = await self._once(("made", cls, dims), lambda: self._find_made(
                    cls, path, self._batch, params, conds))
                self._made_batch[(cls, dims)] = found
            return found[raw]
        which = (cls, path, repr((sorted(params.items()), dims)))
        batcher = self._made.get(which)
        if batcher is None:
            async def fetch(raws: list[str]) -> list[str | None]:
                found = await self._find_made(cls, path, raws, params, conds)
                return [found[r] for r in raws]

            batcher = self._made[which] = Batcher(fetch, MAX_IN_VALUES)
        return await batcher.get(raw)

    async def _find_made(self, cls: str, path: tuple[str, ...], raws: list[str],
                         params: dict[str, Any], conds: tuple[Any, ...] = ()
                         ) -> dict[str, str | None]:
        newest: dict[str, ObjectOut] = {}
        for i in range(0, len(raws), MAX_IN_VALUES):
            spec = QuerySpec(cls=cls, where=And(items=(
                In(path=path, values=tuple(raws[i:i + MAX_IN_VALUES])),
                Compare(op="eq", path=("is_valid",), value=1), *conds)))
            records = await self.catalog.find(spec)
            for record, made_from in zip(records, await self._follow(records, path),
                                         strict=True):
                if made_from is None:
                    continue
                if made_from not in newest or self._rank(record, params) > self._rank(
                        newest[made_from], params):
                    newest[made_from] = record
        self._remember(newest.values())
        return {r: (newest[r].oid if r in newest else None) for r in raws}

    async def _made_for(self, cls: str, filt: str | None, extra: Mapping[str, str],
                        params: dict[str, Any]) -> str | None:
        """The newest valid product of ``cls`` for a data ID without chip, night or raw
        frame (a filter and a sky tile: a product across nights and chips), made with
        ``params`` if there is one."""
        conds: list[Any] = [Compare(op="eq", path=("is_valid",), value=1),
                            *dimension_conditions(cls, extra)]
        if filt is not None:
            conds.append(Compare(op="eq", path=("filter", "name"), value=filt))
        spec = QuerySpec(cls=cls, where=And(items=tuple(conds)),
                         order_by=(OrderBy(path=("creation_date",), descending=True),))
        found = [r for r in await self.catalog.find(spec, limit=100) if r.type == cls]
        if not found:
            return None
        best = max(found, key=lambda r: self._rank(r, params))
        self._objects[best.oid] = best
        return best.oid

    async def _follow(self, records: list[ObjectOut], path: tuple[str, ...]
                      ) -> list[str | None]:
        """The oid at the end of a path of references (the first of a list), for each
        record; each step fetched in one batch. None where the path ends early."""
        def first(ref: Any) -> str | None:
            if isinstance(ref, list):
                return str(ref[0]) if ref else None
            return None if ref is None else str(ref)

        oids = [first(r.refs.get(path[0])) for r in records]
        for step in path[1:]:
            await self._objects_of([o for o in oids if o is not None])
            oids = [first(self._objects[o].refs.get(step)) if o in self._objects else None
                    for o in oids]
        return oids

    # -- calibration rules ------------------------------------------------------------
    async def _instrument(self, chip: str) -> str | None:
        """The name of a chip's instrument (what per-instrument rules are keyed by)."""
        records = self._names.get(("Chip", chip)) or []
        ref = records[0].refs.get("instrument") if records else None
        if not isinstance(ref, str):
            return None
        try:
            return str((await self._object(ref)).attributes.get("name") or "") or None
        except NotFound:
            return None

    async def _made_window(self, cls: str, chip: str,
                           night: dt.date) -> tuple[dt.datetime, dt.datetime]:
        """The window a ``cls`` made from ``night`` will be given (found once a plan)."""
        key = (cls, chip, night)
        found = self._windows.get(key)
        if found is None:
            found = self._windows[key] = self.rules.window(cls, night,
                                                           await self._instrument(chip))
        return found

    async def made_night(self, record: ObjectOut) -> dt.date:
        """The night a calibration was made from: its raw frames' (followed through the
        products it was made from). One not made from raw frames by AWE stands for the
        middle of its window."""
        return await self._once(("night", record.oid), lambda: self._find_night(record))

    async def _find_night(self, record: ObjectOut) -> dt.date:
        path = night_path(record.type)
        if path is not None:
            (raw,) = await self._follow([record], path)
            if raw is not None:
                try:
                    when = await self._observed(raw)
                except NotFound:
                    when = None
                if when is not None:
                    return night_of(when)
        start, end = record.timestamp_start, record.timestamp_end
        if start is not None and end is not None:
            return night_of(start + (end - start) / 2)
        return night_of(record.creation_date)

    def _params(self, cls: str) -> dict[str, Any]:
        """A class's process parameters: the recipe's, with those asked for. Found once a
        plan and shared: read it, or copy it (a node's own)."""
        found = self._params_of.get(cls)
        if found is None:
            found = self._params_of[cls] = {**RECIPES[cls].params, **self.params.get(cls, {})}
        return found

    async def _used(self, oid: Any) -> ObjectOut | None:
        if not isinstance(oid, str):
            return None
        try:
            return await self._object(oid)
        except NotFound:
            return None

    async def curation(self, record: ObjectOut, when: dt.datetime | None = None) -> str | None:
        """Who set a calibration aside, in words from its curation history: the curation
        that invalidated it, or (``when``) the one after which its window no longer
        covered that moment. None when the history says nothing (or cannot be read)."""
        try:
            history = await self.catalog.history(record.oid)
        except AweError:
            return None  # a catalogue without the history endpoint: the reason stands alone
        window = (record.timestamp_start, record.timestamp_end)
        for change in reversed(history):
            fields = change.changes
            if when is None:
                if "is_valid" in fields and fields["is_valid"].new == 0:
                    return curated("invalidated", change.by, change.at, change.reason)
                continue
            if "timestamp_start" not in fields and "timestamp_end" not in fields:
                continue
            old = (parse_time(fields["timestamp_start"].old) if "timestamp_start" in fields
                   else window[0],
                   parse_time(fields["timestamp_end"].old) if "timestamp_end" in fields
                   else window[1])
            if covers(*old, when) and not covers(*window, when):
                return curated(window_change(old, window), change.by, change.at,
                               change.reason)
            window = old
        return None

    async def _node(self, cls: str, chip: str, filt: str | None, night: dt.date,
                    raw: str | None, *, existing: str | None = LOOKUP,
                    why: str | None = None, version: str | None = None,
                    keep: str | None = None, extra: dict[str, str] | None = None) -> Key:
        """The node of a product (the planner's: ``_plan``)."""
        raise NotImplementedError



def night_path(cls: str) -> tuple[str, ...] | None:
    """The references from a product of ``cls`` to a raw frame of the night it was made
    from: its own raw frames, or those of the first product it was made from."""
    recipe = RECIPES.get(cls)
    if recipe is None:
        return None
    if recipe.raw_path is not None:
        return recipe.raw_path
    for inp in recipe.inputs:
        if inp.raw:
            return (inp.ref,)
        if inp.each and inp.cls in RECIPES:
            return (inp.ref, *(RECIPES[inp.cls].raw_path or ()))
    for inp in recipe.inputs:
        if not inp.reference and inp.cls in RECIPES and inp.cls != cls:
            sub = night_path(inp.cls)
            if sub is not None:
                return (inp.ref, *sub)
    return None


def dimension_conditions(cls: str, extra: Mapping[str, str] | None) -> tuple[Any, ...]:
    """Query conditions that select products of ``cls`` by the dimensions of a data ID
    beyond chip, filter, night and raw frame: each is an attribute of the product of the
    same name (``tile``), or a reference named by its name (``instrument``)."""
    if not extra or cls not in registry:
        return ()
    fields = registry.get(cls).fields
    conds: list[Any] = []
    for name, value in sorted(extra.items()):
        field = fields.get(name)
        if field is None:
            continue
        path = (name, "name") if isinstance(field, Ref) else (name,)
        conds.append(Compare(op="eq", path=path, value=value))
    return tuple(conds)
