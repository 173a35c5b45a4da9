"""Choosing a calibration for a moment: the best valid one whose window covers it, from any
night; else one made from the nearest night with enough raw frames within the class's
distance (the rules of ``_rules``), saying which night and why; else NotFound naming the
class, chip, filter, moment and the nearest candidates with their windows."""

from __future__ import annotations

import datetime as dt
from typing import Any

from ..errors import NotFound
from ..query import And, Compare, OrderBy, QuerySpec
from ..records import ObjectOut
from ..staleness import (
    covers,
    moment,
)
from ._nodes import (
    Key,
    calibrates,
    describe_window,
    key_of,
    midnight,
    night_of,
    nights,
    parse_time,
    run_all,
)
from ._ports import Calibration
from ._read import Reader
from ._recipes import RECIPES, Input
from ._rules import night_window

__all__ = ["Chooser"]


class Chooser(Reader):

    async def _calibration(self, cls: str, chip: str, filt: str | None, when: dt.datetime,
                           anew: bool = False) -> Key:
        """The node of the calibration of ``cls`` for a chip (and filter) at a moment
        (asked per frame: everything beneath is found once, per night or per object)."""
        known, best = self._bests.at_hand(Calibration(cls, chip, when, filt))
        # none at all (prefetched for every frame): no need to ask which is made with
        # these parameters (``_best``)
        found = None if known and best is None else await self._best(
            cls, chip, filt, when, self._params(cls))
        # every frame of a night asks this; the answer is the same for all of them once it
        # does not depend on the moment (what ``_chosen`` keeps): no walk again
        same = (cls, chip, filt, found, night_of(when) if found is None else None)
        chosen = None if anew else self._chosen.get(same)
        if chosen is not None:
            return chosen
        if found is None:
            night, why = await self._make_night(cls, chip, filt, when)
            key = await self._to_make(cls, chip, filt, night, why, when)
            # the night's node made for every moment (not one beside a used one that does
            # not cover this moment, which _to_make decides per moment)
            if key == key_of(cls, chip, filt, night) and self._nodes[key].action == "make":
                self._chosen[same] = key
            return key
        record = await self._object(found)
        night = await self.made_night(record)
        if anew:
            self._anew.add(key_of(cls, chip, filt, night))
        key = await self._node(cls, chip, filt, night, None, existing=found)
        if self._nodes[key].oid != found:  # another object of that night serves elsewhere
            key = await self._node(cls, chip, filt, night, None, existing=found,
                                   version=found)
        node = self._nodes[key]
        if node.action != "make":
            if not anew:
                self._chosen[same] = key  # used as it is, whatever the moment
            return key
        if covers(*await self._made_window(cls, chip, night), when):
            return key
        # stale, and one made anew from its night would not cover the moment (its window
        # was set by hand): made from another night if one qualifies, else used as it is
        try:
            other, why = await self._make_night(cls, chip, filt, when)
        except NotFound as exc:
            return await self._node(cls, chip, filt, night, None, existing=found,
                                    version=found, keep=f"{exc}")
        return await self._to_make(cls, chip, filt, other,
                                   f"{found} covers {moment(when)} but is stale "
                                   f"({node.reasons[0]}), and one made anew from {night} "
                                   f"would not cover it; {why}", when)

    async def _to_make(self, cls: str, chip: str, filt: str | None, night: dt.date, why: str,
                       when: dt.datetime) -> Key:
        """The node of a ``cls`` to be made from ``night`` for ``when`` (because ``why``):
        that night's node, unless it uses an object that does not cover the moment (then a
        new one beside it)."""
        key = await self._node(cls, chip, filt, night, None, existing=None, why=why)
        node = self._nodes[key]
        self._say_why(key, why, when)
        if node.action == "make" or node.oid is None or await self._covering(node.oid, when):
            return key
        key = await self._node(cls, chip, filt, night, None, existing=None, why=why,
                               version="new")
        self._say_why(key, why, when)
        return key

    def _say_why(self, key: Key, why: str, when: dt.datetime) -> None:
        """A calibration to be made that serves several nights says why it is made for
        another night (``why``, for the night of ``when``): that of the earliest such night
        (of two reasons for one night, the first in text order), whichever walk asked first,
        so the plan reads the same however its concurrent walks interleave. A reason of its
        own night (none exists) gives way; one of an existing object (stale) stays."""
        node = self._nodes[key]
        if node.action != "make" or why == f"no valid {node.cls} exists":
            return
        said = (night_of(when), why)
        before = self._said.get(key)
        if (node.reasons == [f"no valid {node.cls} exists"]
                or (before is None and node.reasons == [why])
                or (before is not None and said < before)):
            node.reasons = [why]
            self._said[key] = said

    async def _covering(self, oid: str, when: dt.datetime) -> bool:
        record = await self._object(oid)
        return covers(record.timestamp_start, record.timestamp_end, when)

    async def _make_night(self, cls: str, chip: str, filt: str | None,
                          when: dt.datetime) -> tuple[dt.date, str]:
        """The night a ``cls`` covering ``when`` is to be made from, and why: the nearest
        with enough raw frames within the class's distance (or, for one made from other
        products only, the night of the first it is made from). NotFound if none.

        The answer is the same for every moment of a night (windows run from noon to noon,
        so a made calibration covers a night whole or not at all): it is found once per
        night, and says the moment of the first frame that asked."""
        return await self._once(("make night", cls, chip, filt, night_of(when)),
                                lambda: self._find_make_night(cls, chip, filt, when))

    async def _find_make_night(self, cls: str, chip: str, filt: str | None,
                               when: dt.datetime) -> tuple[dt.date, str]:
        recipe = RECIPES[cls]
        rule = self.rules.rule(cls, await self._instrument(chip))
        tonight = night_of(when)
        counted = [i for i in recipe.inputs if i.raw or i.each]
        if not counted:
            return await self._anchored_night(cls, chip, filt, when, rule.max_distance)
        lo = tonight - dt.timedelta(days=rule.max_distance)
        hi = tonight + dt.timedelta(days=rule.max_distance)
        counts = await run_all(self._raw_nights(i.each or i.cls, chip, filt, lo, hi)
                            for i in counted)
        candidates = sorted({n for c in counts for n in c
                         if all(len(c2.get(n, [])) >= i.least
                                for c2, i in zip(counts, counted, strict=True))},
                        key=lambda n: (abs((n - tonight).days), n))
        set_aside: list[str] = []
        for night in candidates:
            if not covers(*await self._made_window(cls, chip, night), when):
                continue
            taken = await self._taken(cls, chip, filt, night, when)
            if taken is not None:
                set_aside.append(taken)
                continue
            if night == tonight:
                return night, f"no valid {cls} exists"
            made_of = ", ".join(f"{len(c[night])} {i.each or i.cls}"
                                for c, i in zip(counts, counted, strict=True))
            distance = abs((night - tonight).days)
            return night, (f"no {cls} covers {moment(when)}; made from {night}, "
                           f"{nights(distance)} away, {made_of}")
        raise NotFound(await self._nothing(cls, chip, filt, when, rule.max_distance,
                                           counted, counts, set_aside))

    async def _anchored_night(self, cls: str, chip: str, filt: str | None, when: dt.datetime,
                              distance: int) -> tuple[dt.date, str]:
        """A calibration made from other products only: from the night of the first of
        them (the best for the moment, or the one to be made)."""
        recipe = RECIPES[cls]
        anchor = next((i for i in recipe.inputs if not i.reference and calibrates(i.cls)
                       and i.cls in RECIPES), None)
        tonight = night_of(when)
        if anchor is None:
            return tonight, f"no valid {cls} exists"
        sub_filter = filt if RECIPES[anchor.cls].needs_filter else None
        node = self._nodes[await self._calibration(anchor.cls, chip, sub_filter, when)]
        assert node.night is not None, "a calibration's node has its night"
        night, away = node.night, abs((node.night - tonight).days)
        what = f"{anchor.ref} {node.oid}" if node.oid else f"{anchor.ref} (to be made)"
        if away > distance or not covers(*await self._made_window(cls, chip, night), when):
            raise NotFound(
                f"no {cls} for {self._what(chip, filt)} covers {moment(when)}, and none can "
                f"be made: its {what} is of {night}, {nights(away)} away; a {cls} is made at "
                f"most {nights(distance)} from the observation"
                + await self._nearest(cls, chip, filt, when))
        taken = await self._taken(cls, chip, filt, night, when)
        if taken is not None:
            raise NotFound(
                f"no {cls} for {self._what(chip, filt)} covers {moment(when)}, and none can "
                f"be made from {night}, where its {what} is from: {taken}"
                + await self._nearest(cls, chip, filt, when))
        if night == tonight:
            return night, f"no valid {cls} exists"
        return night, (f"no {cls} covers {moment(when)}; made from {night}, {nights(away)} "
                       f"away, where its {what} is from")

    async def _taken(self, cls: str, chip: str, filt: str | None, night: dt.date,
                     when: dt.datetime) -> str | None:
        """Why no ``cls`` is made from ``night`` for the night of ``when`` (None: one may
        be): a valid one made from that night had its window changed by a calibration
        scientist so that it no longer covers (all of) that night, and a twin made anew
        would undo that. (One whose window never covered it, made under other rules, does
        not count.)"""
        other = await self._bests.get(Calibration(cls, chip, midnight(night), filt))
        if other is None:
            return None
        start, end = night_window(night_of(when))
        outside = next((t for t in (when, midnight(night_of(when)), start,
                                    end - dt.timedelta(seconds=1))
                        if not covers(other.timestamp_start, other.timestamp_end, t)), None)
        if outside is None or await self.made_night(other) != night:
            return None
        change = await self.curation(other, outside)
        if change is None:
            return None
        return (f"the {cls} {other.oid} of {night} no longer covers it ({change}; "
                f"{describe_window(other)})")

    @staticmethod
    def _what(chip: str, filt: str | None) -> str:
        return chip + (f"/{filt}" if filt else "")

    async def _nothing(self, cls: str, chip: str, filt: str | None, when: dt.datetime,
                       distance: int, counted: list[Input],
                       counts: list[dict[dt.date, list[str]]], set_aside: list[str]) -> str:
        """Why no ``cls`` can be had for the moment, with the nearest candidates."""
        tonight = night_of(when)
        have = ", ".join(f"{len(c.get(tonight, []))} {i.each or i.cls} that night, "
                         f"{i.least} needed" for c, i in zip(counts, counted, strict=True))
        text = (f"no {cls} for {self._what(chip, filt)} covers {moment(when)}, and none can "
                f"be made on {tonight}: {have}; and none from a night within "
                f"{nights(distance)}")
        if set_aside:
            text += " but " + "; ".join(set_aside)
        beyond = []
        for c, i in zip(counts, counted, strict=True):
            near = sorted(((abs((n - tonight).days), n, len(v)) for n, v in c.items()
                           if n != tonight), key=lambda x: x[:2])
            far = near[:2] or await self._raw_beyond(i.each or i.cls, chip, filt, tonight,
                                                     distance)
            beyond += [f"{n} with {k} {i.each or i.cls}, {nights(d)} away" for d, n, k in far]
        if beyond:
            text += "; nearest nights with raw frames: " + "; ".join(beyond)
        return text + await self._nearest(cls, chip, filt, when)

    async def _raw_beyond(self, cls: str, chip: str, filt: str | None, tonight: dt.date,
                          distance: int) -> list[tuple[int, dt.date, int]]:
        """The nearest nights before and after the allowed range that have raw frames of
        the class (distance, night, how many)."""
        start = night_window(tonight - dt.timedelta(days=distance))[0]
        end = night_window(tonight + dt.timedelta(days=distance))[1]
        out = []
        for op, value, descending in (("lt", start, True), ("gt", end, False)):
            conds: list[Any] = [Compare(op="eq", path=("chip", "name"), value=chip),
                                Compare(op=op, path=("date_obs",), value=value.isoformat())]
            if filt is not None:
                conds.append(Compare(op="eq", path=("filter", "name"), value=filt))
            spec = QuerySpec(cls=cls, where=And(items=tuple(conds)),
                             order_by=(OrderBy(path=("date_obs",), descending=descending),))
            found = await self.catalog.find(spec, limit=1)
            when = parse_time(found[0].attributes.get("date_obs")) if found else None
            if when is not None:
                night = night_of(when)
                n = len(await self._raws(cls, chip, filt, night))
                out.append((abs((night - tonight).days), night, n))
        return out

    async def _nearest(self, cls: str, chip: str, filt: str | None, when: dt.datetime) -> str:
        """The existing calibrations of the class nearest the moment, with their windows."""
        found: list[ObjectOut] = []
        base: list[Any] = [Compare(op="eq", path=("chip", "name"), value=chip)]
        if filt is not None:
            base.append(Compare(op="eq", path=("filter", "name"), value=filt))
        for path, op, descending in ((("timestamp_end",), "lt", True),
                                     (("timestamp_start",), "gt", False),
                                     (("timestamp_start",), "le", True)):
            spec = QuerySpec(cls=cls, where=And(items=(*base, Compare(
                op=op, path=path, value=when.isoformat()))),
                order_by=(OrderBy(path=path, descending=descending),))
            found += [r for r in await self.catalog.find(spec, limit=2)
                      if r.oid not in {f.oid for f in found}]
        if not found:
            return f"; no {cls} exists for {self._what(chip, filt)}"
        shown = [f"{r.oid} from {await self.made_night(r)} ({describe_window(r)})"
                 for r in found[:4]]
        return f"; nearest {cls}: " + "; ".join(shown)
