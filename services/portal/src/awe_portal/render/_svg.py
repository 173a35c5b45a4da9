"""Small helpers shared by the SVG charts: escaping, colours, and axis ticks.

The charts are written as SVG text by hand rather than drawn by a plotting library so that
each point or bar can be a real link (``<a href>``) a person clicks and a test follows, the
page needs no script, and a chart costs well under a millisecond per point.
"""

from __future__ import annotations

import datetime as dt
import math
from html import escape

__all__ = ["FLAG_COLOUR", "SVG_OPEN", "VALIDITY", "VALIDITY_COLOUR", "date_ticks", "esc",
           "fmt_number", "nice_ticks", "validity_label"]

#: is_valid as a person reads it
VALIDITY = {0: "bad", 1: "good", 2: "proposed"}
#: fill of a point or a bar by is_valid (colour-blind safe: blue, vermilion, orange)
VALIDITY_COLOUR = {0: "#d55e00", 1: "#0072b2", 2: "#e69f00"}
#: how every chart starts (the page's sans-serif font, not the SVG default serif)
SVG_OPEN = '<svg xmlns="http://www.w3.org/2000/svg" font-family="system-ui, sans-serif" '
#: outline of something with quality flags set
FLAG_COLOUR = "#cc0000"


def esc(text: object) -> str:
    """Text made safe inside SVG/HTML, quotes included (it also goes into attributes)."""
    return escape(str(text), quote=True)


def validity_label(is_valid: int) -> str:
    return VALIDITY.get(is_valid, str(is_valid))


def fmt_number(value: float) -> str:
    """A value short enough for a tick or a tooltip (4 significant digits)."""
    if value == 0 or not math.isfinite(value):
        return str(value) if not math.isfinite(value) else "0"
    return f"{value:.4g}"


def nice_ticks(lo: float, hi: float, most: int = 6) -> list[float]:
    """Round tick values covering [lo, hi], at most about ``most`` of them (1, 2, 5 steps)."""
    if not (math.isfinite(lo) and math.isfinite(hi)):
        return []
    if hi <= lo:
        hi = lo + (abs(lo) * 0.1 or 1.0)
    raw = (hi - lo) / max(most - 1, 1)
    mag = 10 ** math.floor(math.log10(raw))
    step = next(m * mag for m in (1, 2, 2.5, 5, 10) if m * mag >= raw)
    first = math.ceil(lo / step - 1e-9) * step
    ticks = []
    value = first
    while value <= hi + step * 1e-9:
        ticks.append(round(value, 12))
        value += step
    return ticks


#: steps of a time axis, in days
_DAY_STEPS = (1, 2, 7, 14, 30, 61, 91, 182, 365)


def date_ticks(lo: dt.datetime, hi: dt.datetime, most: int = 8) -> list[dt.datetime]:
    """Midnights (UTC) between ``lo`` and ``hi``, a whole number of days apart, at most
    about ``most`` of them; hours when the span is under two days."""
    span = (hi - lo).total_seconds()
    if span <= 0:
        return [lo]
    if span < 2 * 86400:
        hours = next((h for h in (1, 2, 3, 6, 12, 24) if span / (h * 3600) <= most), 24)
        start = lo.replace(minute=0, second=0, microsecond=0)
        out = []
        t = start
        while t <= hi:
            if t >= lo and t.hour % hours == 0:
                out.append(t)
            t += dt.timedelta(hours=1)
        return out
    days = span / 86400
    step = next((s for s in _DAY_STEPS if days / s <= most), _DAY_STEPS[-1])
    t = lo.replace(hour=0, minute=0, second=0, microsecond=0)
    if t < lo:
        t += dt.timedelta(days=1)
    out = []
    while t <= hi:
        out.append(t)
        t += dt.timedelta(days=step)
    return out
