"""A time series of one QC quantity as SVG: one point per object, each a link to it.

Good points are filled blue circles, proposed ones orange, bad ones (``is_valid`` 0) a
vermilion cross, and any point with quality flags gets a red ring, so a calibration
scientist sees at a glance which nights were set aside and why a trend jumps.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from markupsafe import Markup

from ._svg import (
    FLAG_COLOUR,
    SVG_OPEN,
    VALIDITY_COLOUR,
    date_ticks,
    esc,
    fmt_number,
    nice_ticks,
    validity_label,
)

__all__ = ["Point", "object_href", "series_svg"]


def object_href(oid: str) -> str:
    """Where an object's page is (the object viewer's route)."""
    return f"/objects/{oid}"


@dataclass(frozen=True)
class Point:
    """One measurement: when (the night or the exposure, as a UTC datetime), its value,
    and the object it comes from with that object's verdict and flags."""

    at: dt.datetime
    value: float
    oid: str
    is_valid: int = 1
    flags: int = 0
    #: shown in the tooltip after the date and value, e.g. the filter or the chip
    note: str = ""


_LEFT, _RIGHT, _TOP, _BOTTOM = 64, 14, 28, 30


def _utc(t: dt.datetime) -> dt.datetime:
    return t.replace(tzinfo=dt.UTC) if t.tzinfo is None else t.astimezone(dt.UTC)


def series_svg(points: Sequence[Point], *, title: str, unit: str = "",
               href: Callable[[str], str] = object_href, width: int = 640,
               height: int = 220, css_id: str | None = None) -> Markup:
    """The chart of ``points`` over time, as inline SVG markup (safe to put in a page).

    Points whose value is not finite are left out; an empty series says so in the chart
    instead of drawing empty axes."""
    timed = sorted(((_utc(p.at), p) for p in points if math.isfinite(p.value)),
                   key=lambda tp: tp[0])
    pts = [p for _, p in timed]
    ident = f' id="{esc(css_id)}"' if css_id else ""
    label = f"{title} ({unit})" if unit else title
    head = (SVG_OPEN + f'class="awe-series"{ident} '
            f'width="{width}" height="{height}" viewBox="0 0 {width} {height}" role="img" '
            f'aria-label="{esc(label)}">'
            f'<text x="{_LEFT}" y="16" font-size="13" font-weight="bold">{esc(label)}</text>')
    if not pts:  # a short strip, not a tall empty frame
        head = head.replace(f'height="{height}" viewBox="0 0 {width} {height}"',
                            f'height="44" viewBox="0 0 {width} 44"')
        return Markup(head + f'<text x="{_LEFT}" y="36" font-size="12" fill="#666" '
                      'class="empty">no data</text></svg>')

    times = [t for t, _ in timed]  # converted once: a page draws thousands of points
    t0, t1 = times[0], times[-1]
    pad = max((t1 - t0) * 0.04, dt.timedelta(hours=12))
    t0, t1 = t0 - pad, t1 + pad
    values = [p.value for p in pts]
    y0, y1 = min(values), max(values)
    pad_y = (y1 - y0) * 0.08 if y1 > y0 else (abs(y0) * 0.05 or 1.0)
    y0, y1 = y0 - pad_y, y1 + pad_y  # no point on the frame
    ticks_y = [v for v in nice_ticks(y0, y1, 5) if y0 <= v <= y1]
    plot_w = width - _LEFT - _RIGHT
    plot_h = height - _TOP - _BOTTOM
    span = (t1 - t0).total_seconds()

    def x_of(t: dt.datetime) -> float:
        return _LEFT + plot_w * (t - t0).total_seconds() / span

    def y_of(v: float) -> float:
        return _TOP + plot_h * (1 - (v - y0) / (y1 - y0))

    parts = [head, f'<rect x="{_LEFT}" y="{_TOP}" width="{plot_w}" height="{plot_h}" '
                   'fill="#fafafa" stroke="#999"/>']
    for v in ticks_y:
        y = y_of(v)
        parts.append(f'<line x1="{_LEFT}" x2="{_LEFT + plot_w}" y1="{y:.1f}" y2="{y:.1f}" '
                     f'stroke="#e4e4e4"/><text x="{_LEFT - 5}" y="{y + 4:.1f}" font-size="10" '
                     f'text-anchor="end">{esc(fmt_number(v))}</text>')
    for t in date_ticks(t0, t1, 7):
        x = x_of(t)
        text = t.strftime("%H:%M") if span < 2 * 86400 else t.strftime("%Y-%m-%d")
        parts.append(f'<line x1="{x:.1f}" x2="{x:.1f}" y1="{_TOP + plot_h}" '
                     f'y2="{_TOP + plot_h + 4}" stroke="#999"/><text x="{x:.1f}" '
                     f'y="{_TOP + plot_h + 16}" font-size="10" text-anchor="middle">'
                     f'{esc(text)}</text>')
    line = " ".join(f"{x_of(t):.1f},{y_of(p.value):.1f}" for t, p in zip(times, pts, strict=True))
    parts.append(f'<polyline points="{line}" fill="none" stroke="#bbb" stroke-width="1"/>')
    for t, p in zip(times, pts, strict=True):
        parts.append(_point(p, t, x_of(t), y_of(p.value), href(p.oid), unit))
    parts.append(_legend(width))
    parts.append("</svg>")
    return Markup("".join(parts))


def _point(p: Point, at: dt.datetime, x: float, y: float, link: str, unit: str) -> str:
    verdict = validity_label(p.is_valid)
    value = f"{fmt_number(p.value)} {unit}" if unit else fmt_number(p.value)
    tip = f"{at.isoformat(' ', 'minutes')[:16]} {value} ({verdict}"
    tip += f", flags {p.flags})" if p.flags else ")"
    if p.note:
        tip += f" {p.note}"
    colour = VALIDITY_COLOUR.get(p.is_valid, "#333")
    if p.is_valid == 0:
        mark = (f'<path d="M{x - 4:.1f},{y - 4:.1f}L{x + 4:.1f},{y + 4:.1f}M{x - 4:.1f},'
                f'{y + 4:.1f}L{x + 4:.1f},{y - 4:.1f}" stroke="{colour}" stroke-width="2.5"/>')
    else:
        mark = f'<circle cx="{x:.1f}" cy="{y:.1f}" r="4.5" fill="{colour}"/>'
    if p.flags:
        mark += (f'<circle cx="{x:.1f}" cy="{y:.1f}" r="7.5" fill="none" '
                 f'stroke="{FLAG_COLOUR}" stroke-width="1.5"/>')
    # a transparent disc makes the link easy to hit whatever the mark's shape
    hit = f'<circle cx="{x:.1f}" cy="{y:.1f}" r="8" fill="transparent"/>'
    classes = f"qc-point valid-{p.is_valid}" + (" flagged" if p.flags else "")
    return (f'<a href="{esc(link)}" class="{classes}" data-oid="{esc(p.oid)}" '
            f'data-valid="{p.is_valid}" data-flags="{p.flags}" data-value="{p.value!r}">'
            f'<title>{esc(tip)}</title>{mark}{hit}</a>')


def _legend(width: int) -> str:
    x = width - _RIGHT - 250
    items = [(VALIDITY_COLOUR[1], "good"), (VALIDITY_COLOUR[2], "proposed")]
    out = [f'<g class="legend" font-size="10" transform="translate({x},12)">']
    for i, (colour, text) in enumerate(items):
        out.append(f'<circle cx="{i * 62}" cy="0" r="4" fill="{colour}"/>'
                   f'<text x="{i * 62 + 7}" y="3.5">{text}</text>')
    out.append(f'<path d="M121,-4L129,4M121,4L129,-4" stroke="{VALIDITY_COLOUR[0]}" '
               'stroke-width="2"/><text x="133" y="3.5">bad</text>'
               f'<circle cx="172" cy="0" r="6" fill="none" stroke="{FLAG_COLOUR}"/>'
               '<text x="181" y="3.5">flagged</text></g>')
    return "".join(out)
