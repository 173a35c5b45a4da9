"""The planner asks a catalogue that answers for spans of time (``CatalogSpans``) once per
night, class and chip for the frames of that night, and per moment only where the catalogue
says the best changes within the span; the plan is the one it makes asking per moment. (The
catalogue's own answer for spans is tested against PostgreSQL in tests/test_best_spans.py.)"""

from __future__ import annotations

import datetime as dt
import gc
from collections.abc import Sequence

from test_planner_fakes import CHIP, FILTER, NIGHT, FakeCatalog, Night, within_windows

from awecore.records import ObjectOut
from awecore.targets import Calibration, Target
from awecore.targets._gc import YOUNG, fewer_collections


class SpanCatalog(FakeCatalog):
    """The fake catalogue with the span look-up, by the catalogue's rule over a span: the
    newest valid candidate whose window meets the span is the best throughout when its
    window covers the span (none meeting it: none throughout), else the best varies."""

    def __init__(self) -> None:
        super().__init__()
        self.spans: list[Calibration] = []
        self.moments: list[Calibration] = []

    async def best(self, wanted: Sequence[Calibration]) -> list[ObjectOut | None]:
        self.moments += wanted
        return await super().best(wanted)

    async def best_over(self, wanted: Sequence[Calibration]
                        ) -> list[tuple[ObjectOut | None, bool]]:
        self._call("best_over")
        self.spans += wanted
        out: list[tuple[ObjectOut | None, bool]] = []
        for c in wanted:
            start, end = c.time, c.until or c.time
            meets = [o for o in self.objects.values()
                     if o.type == c.cls and o.is_valid == 1
                     and c.chip in self._values(o, ("chip", "name"))
                     and (c.filter is None or c.filter in self._values(o, ("filter", "name")))
                     and o.timestamp_start is not None and o.timestamp_end is not None
                     and o.timestamp_start <= end and o.timestamp_end >= start]
            newest = max(meets, key=lambda o: o.creation_date, default=None)
            if newest is None:
                out.append((None, True))
            elif newest.timestamp_start <= start and newest.timestamp_end >= end:  # type: ignore[operator]
                out.append((newest, True))
            else:
                out.append((None, False))
        return out


def frames(night: Night, n: int) -> list[Target]:
    return [Target("ReducedScienceFrame", CHIP, NIGHT, FILTER,
                   night.raw("RawScienceFrame", 500.0)) for _ in range(n)]


async def test_a_night_is_asked_once_and_per_moment_only_where_the_best_changes() -> None:
    night = Night()
    spans = SpanCatalog()
    spans.objects = night.catalog.objects  # the same objects, seen by both catalogues
    spans.histories = night.catalog.histories
    await night.maker().make(await night.reduced(night.science))
    wanted = frames(night, 4)
    asked = await night.planner().plan_many(wanted)
    planner = night.planner()
    planner.catalog = spans
    plan = await planner.plan_many(wanted)
    assert plan.describe() == asked.describe()
    assert spans.calls["best_over"] == 1
    times = sorted(dt.datetime.fromisoformat(night.catalog.objects[t.raw or ""].attributes[
        "date_obs"]) for t in wanted)
    # every calibration of the frames' night answered by its span: none asked per moment
    assert {(c.cls, c.time, c.until) for c in spans.spans} >= {
        ("BiasFrame", times[0], times[-1]), ("MasterFlatFrame", times[0], times[-1])}
    assert not [c for c in spans.moments if c.time in times]
    # the bias shortened to end between the second and the third frame: the bias's span
    # varies, and only its moments are asked one by one
    bias = night.catalog.of_type("BiasFrame")[0]
    night.catalog.curate(bias.oid, timestamp_start=bias.timestamp_start,
                         timestamp_end=times[1] + (times[2] - times[1]) / 2)
    asked = await night.planner().plan_many(wanted)
    spans.spans.clear()
    spans.moments.clear()
    plan = await planner.plan_many(wanted)
    assert plan.describe() == asked.describe()
    within_windows(plan, night.catalog)
    per_moment = {c.cls for c in spans.moments if c.time in times}
    assert per_moment == {"BiasFrame"}, per_moment
    assert sum(c.time in times for c in spans.moments) == 4
    root = plan.nodes[plan.roots[3]]
    assert plan.nodes[root.inputs["bias"]].action == "make"  # type: ignore[index]
    assert plan.nodes[plan.nodes[plan.roots[0]].inputs["bias"]].oid == bias.oid  # type: ignore[index]


def test_fewer_collections_while_planning_and_restored_after() -> None:
    before = gc.get_threshold()
    with fewer_collections():
        assert gc.get_threshold()[0] == max(before[0], YOUNG)
        with fewer_collections():  # plans that overlap
            assert gc.get_threshold()[0] == max(before[0], YOUNG)
        assert gc.get_threshold()[0] == max(before[0], YOUNG)
    assert gc.get_threshold() == before
    try:
        with fewer_collections():
            raise RuntimeError("a failed plan")
    except RuntimeError:
        pass
    assert gc.get_threshold() == before
