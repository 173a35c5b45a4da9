"""The calibration timeline as SVG (Astro-WISE's CalTS): one row per calibration, its
validity window a bar on a shared time axis, coloured by its verdict, outlined in red when
it carries quality flags, and a link (to the object, or to the window's edit form).

Overlaps and gaps between windows are what a calibration scientist looks for, so every
window keeps its own row instead of being packed into lanes.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Collection, Sequence

from markupsafe import Markup

from awecore.records import TimelineEntry

from ._svg import FLAG_COLOUR, SVG_OPEN, VALIDITY_COLOUR, date_ticks, esc, validity_label
from .series import object_href

__all__ = ["timeline_span", "timeline_svg"]

_LABEL_W, _RIGHT, _TOP, _ROW, _BOTTOM = 210, 16, 30, 22, 8


def _utc(t: dt.datetime) -> dt.datetime:
    return t.replace(tzinfo=dt.UTC) if t.tzinfo is None else t.astimezone(dt.UTC)


def timeline_span(entries: Sequence[TimelineEntry]) -> tuple[dt.datetime, dt.datetime] | None:
    """The time the windows of ``entries`` cover (open ends ignored), padded by a tenth;
    None when no entry has a start or an end."""
    times = [_utc(t) for e in entries for t in (e.timestamp_start, e.timestamp_end)
             if t is not None]
    if not times:
        return None
    lo, hi = min(times), max(times)
    pad = max((hi - lo) / 10, dt.timedelta(hours=12))
    return lo - pad, hi + pad


def _label(e: TimelineEntry) -> str:
    words = [e.type]
    if e.filter:
        words.append(e.filter)
    words.append("…" + e.oid[-6:])  # an oid starts with its time: its end tells apart
    return " ".join(words)


def timeline_svg(entries: Sequence[TimelineEntry], *, start: dt.datetime | None = None,
                 end: dt.datetime | None = None, href: Callable[[str], str] = object_href,
                 highlight: Collection[str] = (), width: int = 960) -> Markup:
    """The windows of ``entries`` between ``start`` and ``end`` (by default the time they
    cover) as inline SVG markup. Windows open at one end run to the edge of the axis with
    an arrow; ``highlight`` names oids drawn with a heavy outline (the one being edited)."""
    span = timeline_span(entries)
    lo = _utc(start) if start else (span[0] if span else None)
    hi = _utc(end) if end else (span[1] if span else None)
    rows = sorted(entries, key=lambda e: (_utc(e.timestamp_start) if e.timestamp_start
                                          else dt.datetime.min.replace(tzinfo=dt.UTC),
                                          e.type, e.oid))
    height = _TOP + max(len(rows), 1) * _ROW + _BOTTOM
    head = (SVG_OPEN + f'class="awe-timeline" width="{width}" '
            f'height="{height}" viewBox="0 0 {width} {height}" role="img" '
            'aria-label="calibration timeline">')
    if not rows or lo is None or hi is None or hi <= lo:
        return Markup(head + '<text x="8" y="40" font-size="12" fill="#666" class="empty">'
                      'no calibrations in this range</text></svg>')
    plot_w = width - _LABEL_W - _RIGHT
    total = (hi - lo).total_seconds()

    def x_of(t: dt.datetime) -> float:
        f = (_utc(t) - lo).total_seconds() / total
        return _LABEL_W + plot_w * min(max(f, 0.0), 1.0)

    parts = [head]
    bottom = _TOP + len(rows) * _ROW
    for t in date_ticks(lo, hi, 9):
        x = x_of(t)
        if x > width - _RIGHT - 30:  # its label would be cut at the edge
            continue
        text = t.strftime("%Y-%m-%d") if total >= 2 * 86400 else t.strftime("%m-%d %H:%M")
        parts.append(f'<line x1="{x:.1f}" x2="{x:.1f}" y1="{_TOP - 4}" y2="{bottom}" '
                     f'stroke="#e4e4e4"/><text x="{x:.1f}" y="{_TOP - 9}" font-size="10" '
                     f'text-anchor="middle">{esc(text)}</text>')
    for i, e in enumerate(rows):
        parts.append(_row(e, i, x_of, lo, hi, href(e.oid), e.oid in highlight))
    parts.append("</svg>")
    return Markup("".join(parts))


def _row(e: TimelineEntry, i: int, x_of: Callable[[dt.datetime], float], lo: dt.datetime,
         hi: dt.datetime, link: str, heavy: bool) -> str:
    y = _TOP + i * _ROW
    shade = "#f6f6f6" if i % 2 else "#fff"
    out = [f'<rect x="0" y="{y}" width="100%" height="{_ROW}" fill="{shade}"/>'
           f'<text x="6" y="{y + 15}" font-size="11">{esc(_label(e))}</text>']
    start = _utc(e.timestamp_start) if e.timestamp_start else None
    end = _utc(e.timestamp_end) if e.timestamp_end else None
    x1 = x_of(start) if start else x_of(lo)
    x2 = x_of(end) if end else x_of(hi)
    outside = (start is not None and start >= hi) or (end is not None and end <= lo)
    colour = VALIDITY_COLOUR.get(e.is_valid, "#333")
    stroke = FLAG_COLOUR if e.quality_flags else ("#111" if heavy else colour)
    dash = ' stroke-dasharray="4 2"' if e.quality_flags else ""
    verdict = validity_label(e.is_valid)
    tip = (f"{e.type} {e.oid}\n{start:%Y-%m-%d %H:%M} to " if start else
           f"{e.type} {e.oid}\n(open) to ") + (f"{end:%Y-%m-%d %H:%M}" if end else "(open)")
    tip += f"\nis_valid {e.is_valid} ({verdict})"
    if e.quality_flags:
        tip += f", quality flags {e.quality_flags}"
    if e.last_curation is not None:
        c = e.last_curation
        tip += f"\nlast changed by {c.who} at {c.at:%Y-%m-%d %H:%M}"
        if c.reason:
            tip += f": {c.reason}"
    classes = "window" + (" flagged" if e.quality_flags else "") + (" edited" if heavy else "")
    if outside:
        classes += " outside"
    bar_w = max(x2 - x1, 2.0)
    arrows = ""
    if start is None:
        arrows += f'<text x="{x1 + 2:.1f}" y="{y + 15}" font-size="11" fill="#fff">&#9664;</text>'
    if end is None:
        arrows += f'<text x="{x2 - 11:.1f}" y="{y + 15}" font-size="11" fill="#fff">&#9654;</text>'
    flag = (f'<text x="{x1 + bar_w + 3:.1f}" y="{y + 15}" font-size="11" '
            f'fill="{FLAG_COLOUR}">&#9873;</text>' if e.quality_flags else "")
    out.append(
        f'<a href="{esc(link)}" class="{classes}" data-oid="{esc(e.oid)}" '
        f'data-valid="{e.is_valid}" data-flags="{e.quality_flags}" '
        f'data-start="{start.isoformat() if start else ""}" '
        f'data-end="{end.isoformat() if end else ""}"><title>{esc(tip)}</title>'
        f'<rect x="{x1:.1f}" y="{y + 4}" width="{bar_w:.1f}" height="{_ROW - 8}" rx="3" '
        f'fill="{colour}" fill-opacity="{0.35 if e.is_valid == 0 else 0.8}" '
        f'stroke="{stroke}" stroke-width="{2.5 if heavy else 1.2}"{dash}/>{arrows}</a>{flag}')
    return "".join(out)
