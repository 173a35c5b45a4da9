"""The QC quantities of a chip over nights, fetched from the catalog as the signed-in user.

Each quantity is an attribute of one class of the processing chain (the read noise of a
``ReadNoise``, the median level of a ``BiasFrame``, the zeropoint of a night's
``PhotometricParameters``, ...). Its place on the time axis is its night: for a
calibration, the middle of its validity window (the night it was made from, unless a
calibration scientist moved the window); for a per-exposure product (astrometry, source
list), the exposure time of the raw frame it was reduced from, found through its frame.
All queries of a page go out in one call, one query per class, each for the few fields
its points need (the catalog's ``POST /query/values/batch``: no whole records); the
per-exposure products need two more batched ``POST /objects/get`` for their frames, never
one request per point.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from awecore.query import And, Between, Compare, Expr, OrderBy, QuerySpec
from awecore.records import ObjectOut

from ..deps import Portal
from ..render import Point

__all__ = ["METRICS", "Metric", "Series", "ask_values", "fetch_series", "named_objects",
           "object_time", "series_asks"]

#: points one series shows (one query page); the newest when there are more
MAX_POINTS = 1000


@dataclass(frozen=True)
class Metric:
    """One QC quantity: which class holds it, where in its attributes, its unit, whether
    it is per filter, and for per-exposure products the reference to their reduced frame."""

    key: str
    label: str
    cls: str
    value: tuple[str, ...]
    unit: str = ""
    per_filter: bool = False
    frame_ref: str | None = None


METRICS: tuple[Metric, ...] = (
    Metric("read_noise", "read noise", "ReadNoise", ("read_noise",), "adu"),
    Metric("bias_level", "bias level", "BiasFrame", ("imstat", "median"), "adu"),
    Metric("flat_rms", "flat-field rms", "MasterFlatFrame", ("imstat", "stdev"), "",
           per_filter=True),
    Metric("hot_pixels", "hot pixels", "HotPixelMap", ("hot_pixels",), "pixels"),
    Metric("cold_pixels", "cold pixels", "ColdPixelMap", ("cold_pixels",), "pixels",
           per_filter=True),
    Metric("zeropoint", "zeropoint", "PhotometricParameters", ("zeropoint",), "mag",
           per_filter=True),
    Metric("astrometric_rms", "astrometric rms", "AstrometricParameters", ("rms",), "arcsec",
           per_filter=True, frame_ref="reduced"),
    Metric("seeing", "seeing", "SourceList", ("seeing",), "arcsec", per_filter=True,
           frame_ref="frame"),
    Metric("source_count", "source counts", "SourceList", ("number_of_sources",), "",
           per_filter=True, frame_ref="frame"),
)


@dataclass
class Series:
    metric: Metric
    points: list[Point] = field(default_factory=list)
    #: the class has more objects in the range than one series shows
    truncated: bool = False


def _value(record: ObjectOut, path: tuple[str, ...]) -> float | None:
    value: Any = record.attributes
    for key in path:
        if not isinstance(value, dict):
            return None
        value = value.get(key)
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


def _when(value: Any) -> dt.datetime | None:
    if isinstance(value, dt.datetime):
        return value if value.tzinfo else value.replace(tzinfo=dt.UTC)
    if isinstance(value, str):
        try:
            return _when(dt.datetime.fromisoformat(value))
        except ValueError:
            return None
    return None


def object_time(record: ObjectOut) -> dt.datetime:
    """Where an object sits on the time axis when no raw frame says it: its exposure, the
    middle of its validity window, or when it was made."""
    when = _when(record.attributes.get("date_obs"))
    if when is not None:
        return when
    if record.timestamp_start is not None and record.timestamp_end is not None:
        return record.timestamp_start + (record.timestamp_end - record.timestamp_start) / 2
    return record.creation_date


def _where(metric: Metric, chip: str, filter: str | None, start: dt.datetime | None,
           end: dt.datetime | None) -> Expr:
    items: list[Expr] = [Compare(op="eq", path=("chip", "name"), value=chip)]
    if filter and metric.per_filter:
        items.append(Compare(op="eq", path=("filter", "name"), value=filter))
    if start is not None or end is not None:
        lo = (start or dt.datetime(1900, 1, 1, tzinfo=dt.UTC)).isoformat()
        hi = (end or dt.datetime(2200, 1, 1, tzinfo=dt.UTC)).isoformat()
        if metric.frame_ref is None:  # a calibration: its window overlaps the range
            items += [Compare(op="le", path=("timestamp_start",), value=hi),
                      Compare(op="ge", path=("timestamp_end",), value=lo)]
        else:
            items.append(Between(path=(metric.frame_ref, "raw", "date_obs"), low=lo, high=hi))
    return And(items=tuple(items))


def _spec(metric: Metric, chip: str, filter: str | None, start: dt.datetime | None,
          end: dt.datetime | None) -> QuerySpec:
    order = ("timestamp_start",) if metric.frame_ref is None else ("creation_date",)
    return QuerySpec(cls=metric.cls, where=_where(metric, chip, filter, start, end),
                     order_by=(OrderBy(path=order, descending=True),))


def _ref(record: ObjectOut, name: str | None) -> str | None:
    value = record.refs.get(name) if name else None
    return value if isinstance(value, str) else None


#: the fields of a point that every series reads (``POST /query/values``)
_FIELDS = ("oid", "is_valid", "quality_flags", "timestamp_start", "timestamp_end",
           "creation_date", "attributes.date_obs", "refs.filter")


def _row_time(row: dict[str, Any]) -> dt.datetime:
    """:func:`object_time` of a row of ``_FIELDS`` (the record's times come as ISO 8601
    with their zone; only what is used is parsed: a page has thousands of rows)."""
    if row["attributes.date_obs"] is not None:
        when = _when(row["attributes.date_obs"])
        if when is not None:
            return when
    start, end = row["timestamp_start"], row["timestamp_end"]
    if start is not None and end is not None:
        lo, hi = _when(start), _when(end)
        if lo is not None and hi is not None:
            return lo + (hi - lo) / 2
    made = _when(row["creation_date"])
    return made if made is not None else dt.datetime.min.replace(tzinfo=dt.UTC)


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


def _str(value: Any) -> str | None:
    return value if isinstance(value, str) else None


#: a query for a page: the class and condition, the fields of each object, how many
Ask = tuple[QuerySpec, Sequence[str], int]
#: its answer: the objects as dicts of the fields, and whether more remain
Answer = tuple[list[dict[str, Any]], bool]


async def ask_values(p: Portal, asks: Sequence[Ask]) -> list[Answer]:
    """Each query's first page, as dicts of its fields, in one call: the catalog's ``POST
    /query/values/batch`` (visibility and order as ``POST /query``; a tenth of the
    records' weight for a chart of thousands of points, and one request for all)."""
    got = await p.catalog_api.post("/query/values/batch", json={"queries": [
        {"query": spec.model_dump(mode="json"), "fields": list(fields), "limit": limit}
        for spec, fields, limit in asks]})
    return [([dict(zip(page["fields"], row, strict=True)) for row in page["rows"]],
             page["next_offset"] is not None) for page in got["pages"]]


def names_ask(cls: str) -> Ask:
    """The names of the objects of ``cls`` the user may see (chips, filters: a few dozen)."""
    return QuerySpec(cls=cls, order_by=(OrderBy(path=("name",)),)), ("oid", "attributes.name"), \
        MAX_POINTS


def names_of(answer: Answer) -> dict[str, str]:
    """Oid to name, from the answer to :func:`names_ask`."""
    return {r["oid"]: str(r["attributes.name"]) for r in answer[0] if r["attributes.name"]}


async def named_objects(p: Portal, *classes: str) -> list[dict[str, str]]:
    """Oid to name of the objects of each class the user may see, in one call."""
    return [names_of(a) for a in await ask_values(p, [names_ask(c) for c in classes])]


async def _frame_times(p: Portal, frames: set[str]) -> dict[str, tuple[dt.datetime | None,
                                                                   str | None]]:
    """For reduced frames (by oid): the exposure time of the raw frame each was reduced
    from, and its filter; two batched look-ups for all, never one per point."""
    if not frames:
        return {}
    reduced = await p.catalog.get_records(sorted(frames))
    raws = {r for f in reduced.values() if (r := _ref(f, "raw"))}
    raw_records = await p.catalog.get_records(sorted(raws)) if raws else {}
    out: dict[str, tuple[dt.datetime | None, str | None]] = {}
    for oid, frame in reduced.items():
        raw = raw_records.get(_ref(frame, "raw") or "")
        out[oid] = (object_time(raw) if raw is not None else None, _ref(frame, "filter"))
    return out


def _asked(chip: str, filter: str | None, start: dt.datetime | None, end: dt.datetime | None,
           metrics: Sequence[Metric]) -> tuple[dict[str, QuerySpec],
                                               dict[str, tuple[QuerySpec, list[str]]]]:
    """Each metric's query (by key), and the queries asked: one per distinct query (a
    class), with the fields of every quantity it holds."""
    specs = {m.key: _spec(m, chip, filter, start, end) for m in metrics}
    asked: dict[str, tuple[QuerySpec, list[str]]] = {}
    for m in metrics:
        key = specs[m.key].model_dump_json()
        _, fields = asked.setdefault(key, (specs[m.key], list(_FIELDS)))
        for name in ("attributes." + ".".join(m.value),
                     *(("refs." + m.frame_ref,) if m.frame_ref else ())):
            if name not in fields:
                fields.append(name)
    return specs, asked


def series_asks(chip: str, filter: str | None = None, start: dt.datetime | None = None,
                end: dt.datetime | None = None, metrics: Sequence[Metric] = METRICS,
                named: Sequence[str] = ("Filter",)) -> list[Ask]:
    """The queries :func:`fetch_series` sends (in its one call), e.g. for a benchmark to
    time the API call a QC page is built from."""
    _, asked = _asked(chip, filter, start, end, metrics)
    return [names_ask(c) for c in named] + [(spec, fields, MAX_POINTS)
                                            for spec, fields in asked.values()]


async def fetch_series(p: Portal, chip: str, filter: str | None = None,
                       start: dt.datetime | None = None, end: dt.datetime | None = None,
                       metrics: Sequence[Metric] = METRICS, named: Sequence[str] = ("Filter",),
                       ) -> tuple[list[Series], list[dict[str, str]]]:
    """Every metric's series for ``chip`` (and ``filter``) with the objects of ``[start,
    end]``, as the user may see them, and the names of the objects of the classes
    ``named`` (oid to name: a point's tooltip names its filter; a form lists chips). One
    call for all: a query per class, each for the few fields its points need (the values
    of every quantity that class holds: a source list gives the seeing and the source
    counts in one)."""
    specs, asked = _asked(chip, filter, start, end, metrics)
    answers = await ask_values(p, [names_ask(c) for c in named] + [
        (spec, fields, MAX_POINTS) for spec, fields in asked.values()])
    names = [names_of(a) for a in answers[:len(named)]]
    by_spec = dict(zip(asked, answers[len(named):], strict=True))
    filters = names[list(named).index("Filter")] if "Filter" in named else {}
    # per-exposure products: their reduced frame leads to the raw frame's exposure time
    frames = {ref for m in metrics if m.frame_ref
              for row in by_spec[specs[m.key].model_dump_json()][0]
              if (ref := _str(row.get("refs." + m.frame_ref)))}
    exposures = await _frame_times(p, frames)
    out = []
    for m in metrics:
        rows, more = by_spec[specs[m.key].model_dump_json()]
        series = Series(m, truncated=more)
        value_field = "attributes." + ".".join(m.value)
        for row in rows:
            value = _number(row[value_field])
            if value is None:
                continue
            when, filt = _row_time(row), _str(row["refs.filter"])
            if m.frame_ref:
                exposure, frame_filter = exposures.get(_str(row["refs." + m.frame_ref]) or "",
                                                       (None, None))
                when, filt = exposure or when, filt or frame_filter
            series.points.append(Point(when, value, row["oid"], int(row["is_valid"]),
                                       int(row["quality_flags"]), filters.get(filt or "", "")))
        out.append(series)
    return out, names
