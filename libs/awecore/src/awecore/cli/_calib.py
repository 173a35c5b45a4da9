"""``awe calib``: the calibration timeline for calibration scientists (Astro-WISE's CalTS).

A calibration is used for an observation when it is valid and its validity window covers
the observation's time; a calibration scientist moves windows and sets calibrations aside.
``list`` shows one chip's timeline (windows, verdicts, flags, who set them, and the windows
drawn as bars so overlaps and gaps show at a glance); ``window`` and ``invalidate`` change
one calibration, with a reason; ``history`` shows every change of one, as the catalogue
keeps it (and replicates it to every site).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console
from rich.table import Table
from rich.text import Text

from ._curate import _when
from ._output import Format, FormatOption, emit

if TYPE_CHECKING:
    from ..records import CurationChange, ObjectOut, TimelineEntry

__all__ = ["bar", "calib_app", "register"]

console = Console()
calib_app = typer.Typer(no_args_is_help=True,
                        help="Calibration timeline: validity windows, verdicts, history.")

#: characters of a timeline bar in the table
BAR_WIDTH = 40
#: the longest reason the catalogue keeps (CurationUpdate.reason)
MAX_REASON = 2_000

ReasonOption = Annotated[str | None, typer.Option(
    help="why (kept in the calibration's history, replicated with it)")]


def _day_or_time(value: str | None, hint: str, end_of_day: bool) -> dt.datetime | None:
    """ISO 8601 time, or a date: its start (``--from``) or its end (``--to``), UTC."""
    if value is None:
        return None
    try:
        day = dt.date.fromisoformat(value)
    except ValueError:
        return _when(value, hint)
    start = dt.datetime.combine(day, dt.time(), dt.UTC)
    return start + dt.timedelta(days=1, microseconds=-1) if end_of_day else start


def _reason(reason: str | None, required: bool) -> str | None:
    if reason is not None and not reason.strip():
        reason = None
    if reason is None and required:
        raise typer.BadParameter("say why (it is kept in the history)", param_hint="--reason")
    if reason is not None and len(reason) > MAX_REASON:
        raise typer.BadParameter(f"at most {MAX_REASON} characters", param_hint="--reason")
    return reason


def bar(start: dt.datetime | None, end: dt.datetime | None, span: tuple[dt.datetime,
        dt.datetime], width: int = BAR_WIDTH) -> str:
    """A window drawn across ``span``: ``█`` where it is valid, ``·`` where not; ``◂``/``▸``
    at an edge when the window goes on beyond the span."""
    lo, hi = span
    total = (hi - lo).total_seconds()
    if start is None or end is None or total <= 0:
        return "?" * width
    cells = []
    for i in range(width):
        a = lo + dt.timedelta(seconds=total * i / width)
        b = lo + dt.timedelta(seconds=total * (i + 1) / width)
        cells.append("█" if start < b and end >= a else "·")
    if start < lo and cells[0] == "█":
        cells[0] = "◂"
    if end > hi and cells[-1] == "█":
        cells[-1] = "▸"
    return "".join(cells)


def _span(entries: Sequence[TimelineEntry], start: dt.datetime | None,
          end: dt.datetime | None) -> tuple[dt.datetime, dt.datetime] | None:
    """What the bars cover: the asked span, or from the first window's start to the last's
    end where an end is open."""
    starts = [e.timestamp_start for e in entries if e.timestamp_start is not None]
    ends = [e.timestamp_end for e in entries if e.timestamp_end is not None]
    lo = start or (min(starts) if starts else None)
    hi = end or (max(ends) if ends else None)
    return (lo, hi) if lo is not None and hi is not None and hi > lo else None


def _row(e: TimelineEntry) -> dict[str, Any]:
    last = e.last_curation
    return {"oid": e.oid, "type": e.type, "chip": e.chip, "filter": e.filter,
            "timestamp_start": e.timestamp_start, "timestamp_end": e.timestamp_end,
            "is_valid": e.is_valid, "quality_flags": e.quality_flags, "creator": e.creator,
            "creation_date": e.creation_date, "site": e.site,
            "curated_by": last.by if last else None, "curated_at": last.at if last else None,
            "curated_site": last.site if last else None,
            "reason": last.reason if last else None}


def _set_by(e: TimelineEntry) -> tuple[str, str]:
    """Who set the window and verdict as they are (the last curator, else the maker), and
    why."""
    last = e.last_curation
    if last is None:
        return f"{e.owner} {_short(e.creation_date)} (made)", ""
    return f"{last.who} {_short(last.at)}", last.reason or ""


_VALIDITY = {0: ("bad", "red"), 1: ("good", "green"), 2: ("proposed", "yellow")}


def _table(entries: Sequence[TimelineEntry], title: str,
           span: tuple[dt.datetime, dt.datetime] | None) -> None:
    table = Table(title=title, caption=(
        f"window: {_short(span[0])} .. {_short(span[1])} UTC; █ valid, ◂ ▸ goes on "
        "beyond" if span else None))
    for header in ("oid", "type", "filter", "start (UTC)", "end (UTC)", "is_valid", "flags",
                   "set by", "why"):
        table.add_column(header, overflow="fold")
    if span is not None:
        table.add_column("window", no_wrap=True)
    for e in entries:
        word, colour = _VALIDITY[e.is_valid]
        cells = [Text(e.oid), Text(e.type), Text(e.filter or ""),
                 Text(_short(e.timestamp_start)), Text(_short(e.timestamp_end)),
                 Text(word, style=colour), Text(str(e.quality_flags)),
                 *(Text(t) for t in _set_by(e))]
        if span is not None:
            cells.append(Text(bar(e.timestamp_start, e.timestamp_end, span),
                              style="green" if e.is_valid == 1 else f"{colour} dim"))
        table.add_row(*cells)
    console.print(table)


def _short(when: dt.datetime | None) -> str:
    """To the second, in UTC (the tables say so once)."""
    if when is None:
        return ""
    if when.tzinfo is not None:
        when = when.astimezone(dt.UTC)
    return when.replace(microsecond=0, tzinfo=None).isoformat(sep=" ")


@calib_app.command("list")
def list_(
    cls: Annotated[str, typer.Argument(
        metavar="CLASS", help="a calibration class (its subclasses too), e.g. BiasFrame")],
    chip: Annotated[str, typer.Option(help="the chip's name (or oid)")],
    filter: Annotated[str | None, typer.Option(help="the filter's name (or oid)")] = None,
    start: Annotated[str | None, typer.Option(
        "--from", help="from (ISO 8601 date or time, UTC if no zone); open if absent")] = None,
    end: Annotated[str | None, typer.Option(
        "--to", help="to (a date means its end); open if absent")] = None,
    format: FormatOption = Format.table,
) -> None:
    """The calibration timeline of a chip: windows, verdicts, flags, who set them.

    Every calibration whose validity overlaps the span, by window start. The table draws
    each window as a bar across the span; JSON and CSV have one object per calibration
    with full values."""
    from ..client import current

    lo = _day_or_time(start, "--from", end_of_day=False)
    hi = _day_or_time(end, "--to", end_of_day=True)
    if lo is not None and hi is not None and hi < lo:
        raise typer.BadParameter("--to is before --from", param_hint="--to")
    entries = current().timeline(cls, chip, filter, lo, hi)
    if format is not Format.table:
        emit([_row(e) for e in entries], format)
        return
    where = f"{cls} on {chip}" + (f", filter {filter}" if filter else "")
    title = f"{where}: {len(entries)} calibration(s)"
    _table(entries, title, _span(entries, lo, hi))


def _curated(record: ObjectOut, format: Format, title: str) -> None:
    emit([{"oid": record.oid, "type": record.type, "is_valid": record.is_valid,
           "timestamp_start": record.timestamp_start,
           "timestamp_end": record.timestamp_end}], format, title=title)


@calib_app.command("window")
def window(
    oid: Annotated[str, typer.Argument(help="the calibration's oid, or a unique start of it")],
    start: Annotated[str | None, typer.Option(
        help="new start of validity (ISO 8601, UTC if no zone)")] = None,
    end: Annotated[str | None, typer.Option(
        help="new end of validity (ISO 8601, UTC if no zone)")] = None,
    reason: ReasonOption = None,
    format: FormatOption = Format.table,
) -> None:
    """Move a calibration's validity window: extend or shorten it.

    From then on it is chosen for the observations it covers, and what was made with it
    for an observation it no longer covers becomes stale."""
    from ..client import current

    changes: dict[str, Any] = {}
    if (when := _when(start, "--start")) is not None:
        changes["timestamp_start"] = when
    if (when := _when(end, "--end")) is not None:
        changes["timestamp_end"] = when
    if not changes:
        raise typer.BadParameter("give --start, --end or both", param_hint="OID")
    if "timestamp_start" in changes and "timestamp_end" in changes and (
            changes["timestamp_end"] < changes["timestamp_start"]):
        raise typer.BadParameter("the window would end before it starts", param_hint="--end")
    client = current()
    record = client.curate(client.resolve_oid(oid), reason=_reason(reason, False), **changes)
    _curated(record, format, "window moved")


@calib_app.command("invalidate")
def invalidate(
    oid: Annotated[str, typer.Argument(help="the calibration's oid, or a unique start of it")],
    reason: ReasonOption = None,
    format: FormatOption = Format.table,
) -> None:
    """Set a calibration aside (is_valid = 0), saying why.

    It is chosen no more, and what was made from it becomes stale."""
    from ..client import current

    why = _reason(reason, True)
    client = current()
    record = client.curate(client.resolve_oid(oid), reason=why, is_valid=0)
    _curated(record, format, "invalidated")


def _change_lines(change: CurationChange) -> str:
    return "\n".join(f"{name}: {_value(c.old)} -> {_value(c.new)}"
                     for name, c in change.changes.items())


def _value(value: Any) -> str:
    if isinstance(value, str):
        try:
            return _short(dt.datetime.fromisoformat(value))
        except ValueError:
            return value
    return "null" if value is None else str(value)


@calib_app.command("history")
def history(
    oid: Annotated[str, typer.Argument(help="the object's oid, or a unique start of it")],
    format: FormatOption = Format.table,
) -> None:
    """Every change of an object, oldest first: when, who, where, why, old and new.

    JSON and CSV: one object per change, its changes as {field: {old, new}}."""
    from ..client import current

    client = current()
    changes = client.history(client.resolve_oid(oid))
    rows = [{"at": c.at, "by": c.by, "site": c.site, "reason": c.reason,
             "changes": {k: v.model_dump() for k, v in c.changes.items()}} for c in changes]
    if format is not Format.table:
        emit(rows, format)
        return
    table = Table(title=f"history of {changes[0].oid if changes else oid}: "
                        f"{len(changes)} change(s)")
    for header in ("at (UTC)", "by", "site", "reason", "changes"):
        table.add_column(header, overflow="fold")
    for c in changes:
        table.add_row(Text(_short(c.at)), Text(c.by), Text(c.site), Text(c.reason or ""),
                      Text(_change_lines(c)))
    console.print(table)


def register(app: typer.Typer) -> None:
    app.add_typer(calib_app, name="calib")
