"""``awe curate OID``: change what may change of a stored object (its QC verdict, who may
see it, its validity period, a comment). Everything else of an object is immutable."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any

import typer

from ._output import Format, FormatOption, emit

#: the longest comment the catalog keeps (CurationUpdate.comments)
MAX_COMMENT = 10_000


def _when(value: str | None, hint: str) -> dt.datetime | None:
    if value is None:
        return None
    try:
        when = dt.datetime.fromisoformat(value)
    except ValueError:
        raise typer.BadParameter(f"{value!r} is not ISO 8601 (e.g. 2003-02-14T12:00:00)",
                                 param_hint=hint) from None
    return when if when.tzinfo else when.replace(tzinfo=dt.UTC)


def curate(
    oid: Annotated[str, typer.Argument(help="the object's oid, or a unique start of it")],
    valid: Annotated[bool | None, typer.Option(
        "--valid/--invalid", help="the QC verdict: good (1) or bad (0)")] = None,
    comment: Annotated[str | None, typer.Option(help="why (kept with the object)")] = None,
    privileges: Annotated[int | None, typer.Option(
        min=1, max=5, help="who may see it: 1 you, 2 your project, 3 this site, 4 every site, "
                           "5 the world (also without a token, and the VO)")] = None,
    start: Annotated[str | None, typer.Option(
        help="start of validity of a calibration (ISO 8601, UTC if no zone)")] = None,
    end: Annotated[str | None, typer.Option(
        help="end of validity of a calibration (ISO 8601, UTC if no zone)")] = None,
    format: FormatOption = Format.table,
) -> None:
    """Curate an object: its QC verdict, who may see it, its validity, a comment.

    The catalogue records the change (and replicates it); what was made from an object
    marked invalid becomes stale."""
    from ..client import current

    changes: dict[str, Any] = {}
    if valid is not None:
        changes["is_valid"] = 1 if valid else 0
    if comment is not None:
        if len(comment) > MAX_COMMENT:
            raise typer.BadParameter(f"at most {MAX_COMMENT} characters",
                                     param_hint="--comment")
        changes["comments"] = comment
    if privileges is not None:
        changes["privileges"] = privileges
    if (when := _when(start, "--start")) is not None:
        changes["timestamp_start"] = when
    if (when := _when(end, "--end")) is not None:
        changes["timestamp_end"] = when
    if not changes:
        raise typer.BadParameter("say what to change: --valid/--invalid, --comment, "
                                 "--privileges, --start or --end", param_hint="OID")
    client = current()
    record = client.curate(client.resolve_oid(oid), **changes)
    row = {"oid": record.oid, "type": record.type, "is_valid": record.is_valid,
           "privileges": record.privileges, "timestamp_start": record.timestamp_start,
           "timestamp_end": record.timestamp_end, "comments": record.comments}
    emit([row], format, title="curated")


def register(app: typer.Typer) -> None:
    app.command()(curate)
