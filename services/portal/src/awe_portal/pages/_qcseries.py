"""The QC quantities of a chip over nights, fetched from the catalog as the signed-in user.

Each quantity is an attribute of one class of the processing chain (the read noise of a
``ReadNoise``, the median level of a ``BiasFrame``, the zeropoint of a night's
``PhotometricParameters``, ...). Its place on the time axis is its night: for a
calibration, the middle of its validity window (the night it was made from, unless a
calibration scientist moved the window); for a per-exposure product (astrometry, source
list), the exposure time of the raw frame it was reduced from, found through its frame.
All queries of a page go out at once; the per-exposure products need one more batched
``POST /objects/get`` for their frames, never one request per point.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from awecore.query import And, Between, Compare, Expr, OrderBy, QuerySpec
from awecore.records import ObjectOut

from ..deps import Portal
from ..render import Point

__all__ = ["METRICS", "Metric", "Series", "fetch_series", "object_time"]

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


async def fetch_series(p: Portal, chip: str, filter: str | None = None,
                       start: dt.datetime | None = None, end: dt.datetime | None = None,
                       metrics: Sequence[Metric] = METRICS,
                       filter_names: dict[str, str] | None = None) -> list[Series]:
    """Every metric's series for ``chip`` (and ``filter``) with the objects of ``[start,
    end]``, as the user may see them. A class queried twice (source list) is asked once.
    ``filter_names`` (oid to name) lets a point's tooltip name its filter."""
    specs = {m.key: _spec(m, chip, filter, start, end) for m in metrics}
    unique = {s.model_dump_json(): s for s in specs.values()}
    pages = await asyncio.gather(*(p.catalog.query_page(s, 0, MAX_POINTS)
                                   for s in unique.values()))
    by_spec = dict(zip(unique, pages, strict=True))
    # per-exposure products: their reduced frame leads to the raw frame's exposure time
    frames = {ref for m in metrics if m.frame_ref
              for o in by_spec[specs[m.key].model_dump_json()].objects
              if (ref := _ref(o, m.frame_ref))}
    reduced = await p.catalog.get_records(sorted(frames)) if frames else {}
    raws = {r for f in reduced.values() if (r := _ref(f, "raw"))}
    raw_records = await p.catalog.get_records(sorted(raws)) if raws else {}
    out = []
    for m in metrics:
        page = by_spec[specs[m.key].model_dump_json()]
        series = Series(m, truncated=page.next_offset is not None)
        for o in page.objects:
            value = _value(o, m.value)
            if value is None:
                continue
            when = object_time(o)
            frame = reduced.get(_ref(o, m.frame_ref) or "")
            raw = raw_records.get(_ref(frame, "raw") or "") if frame is not None else None
            if raw is not None:
                when = object_time(raw)
            filt = _ref(o, "filter") or (_ref(frame, "filter") if frame is not None else None)
            note = (filter_names or {}).get(filt or "", "")
            series.points.append(Point(when, value, o.oid, o.is_valid, o.quality_flags, note))
        out.append(series)
    return out

