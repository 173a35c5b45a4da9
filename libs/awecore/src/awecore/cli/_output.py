"""Listings in three formats: a table for people, JSON and CSV for programs.

Every listing command takes ``--format``. JSON is a list of objects with full values
(datetimes in ISO 8601, references as oids); CSV has a header row and the same columns
(lists and groups of values JSON-encoded in their cell); the table shows a short set of
columns chosen for reading, and folds what does not fit.
"""

from __future__ import annotations

import csv
import datetime as dt
import enum
import json
import math
import sys
import uuid
from collections.abc import Mapping, Sequence
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table
from rich.text import Text

__all__ = ["Format", "FormatOption", "emit", "plain", "show_table"]

console = Console()


class Format(enum.StrEnum):
    table = "table"
    json = "json"
    csv = "csv"


FormatOption = Annotated[Format, typer.Option(
    "--format", case_sensitive=False,
    help="table (for reading), json (a list of objects) or csv (with a header row)")]


def plain(value: Any) -> Any:
    """A JSON value for anything a listing holds: objects become their oid, groups of
    values dicts, datetimes ISO 8601, numpy scalars numbers, NaN null."""
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, float):
        return None if math.isnan(value) else value
    if isinstance(value, dt.datetime | dt.date):
        return value.isoformat()
    if isinstance(value, uuid.UUID | enum.Enum):
        return str(value.value if isinstance(value, enum.Enum) else value)
    record = getattr(value, "record", None)
    if record is not None and hasattr(record, "oid"):  # an object of the model
        return record.oid
    if hasattr(value, "to_json"):  # a group of values (imstat)
        return plain(value.to_json())
    if hasattr(value, "model_dump"):
        return plain(value.model_dump(mode="json"))
    if isinstance(value, Mapping):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set):
        return [plain(v) for v in value]
    if hasattr(value, "item"):  # numpy scalars
        return plain(value.item())
    return str(value)


def _cell(value: Any) -> str:
    """A CSV cell: scalars as they are, lists and dicts as JSON, nothing as empty."""
    value = plain(value)
    if value is None:
        return ""
    if isinstance(value, list | dict):
        return json.dumps(value, separators=(",", ":"))
    return str(value)


def _shown(value: Any) -> str:
    """A table cell: short datetimes (to the second), compact numbers, lists joined."""
    if isinstance(value, dt.datetime):
        return value.replace(microsecond=0).isoformat(sep=" ")
    if isinstance(value, float):
        return "" if math.isnan(value) else f"{value:.6g}"
    value = plain(value)
    if value is None:
        return ""
    if isinstance(value, list):
        return ", ".join(_shown(v) for v in value)
    if isinstance(value, dict):
        return json.dumps(value, separators=(",", ":"))
    return str(value)


def show_table(title: str, headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
    """A rich table; cells are text, never markup (a FITS section [1:24] stays as it is)."""
    table = Table(title=title)
    for header in headers:
        table.add_column(header, overflow="fold")
    for row in rows:
        table.add_row(*(Text(_shown(v)) for v in row))
    console.print(table)


def emit(rows: Sequence[Mapping[str, Any]], fmt: Format, *, title: str = "",
         columns: Sequence[str] | None = None) -> None:
    """Print ``rows``: JSON and CSV with every key of the rows (full values), the table
    with ``columns`` (every key if None)."""
    keys = list(rows[0]) if rows else list(columns or [])
    if fmt is Format.json:
        typer.echo(json.dumps([{k: plain(r.get(k)) for k in keys} for r in rows], indent=1))
    elif fmt is Format.csv:
        writer = csv.writer(sys.stdout, lineterminator="\n")
        writer.writerow(keys)
        for r in rows:
            writer.writerow([_cell(r.get(k)) for k in keys])
    else:
        shown = list(columns) if columns is not None else keys
        show_table(title, shown, [[r.get(k) for k in shown] for r in rows])
