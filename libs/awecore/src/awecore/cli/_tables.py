"""Query results as an astropy Table, written as a VOTable or FITS for the VO's tools.

``awe query ... --format votable`` is what TOPCAT, Aladin and pyvo read; ``--format fits``
a binary table for any FITS reader. Columns keep the model's units (where they are valid
VOUnits, so a strict VOTable parser accepts them) and descriptions; a missing value is
masked, not a string.
"""

from __future__ import annotations

import enum
import io
import json
import sys
from collections.abc import Mapping, Sequence
from typing import Annotated, Any

import numpy as np
import typer
from astropy import units as u
from astropy.table import Column, MaskedColumn, Table

from ..model import Field, Scalar
from ._output import plain

__all__ = ["QueryFormat", "QueryFormatOption", "to_astropy", "vo_unit", "write_table"]


class QueryFormat(enum.StrEnum):
    table = "table"
    json = "json"
    csv = "csv"
    votable = "votable"
    fits = "fits"


QueryFormatOption = Annotated[QueryFormat, typer.Option(
    "--format", case_sensitive=False,
    help="table (for reading), json (a list of objects), csv (with a header row), votable "
         "(VOTable 1.4 XML, for TOPCAT, Aladin, pyvo) or fits (a binary table)")]


def vo_unit(unit: str | None) -> str | None:
    """The unit as a VOUnit string, or None where VOUnit has no name for it."""
    if not unit:
        return None
    try:
        return str(u.Unit(unit, format="vounit").to_string("vounit"))
    except (ValueError, TypeError):
        try:
            return str(u.Unit(unit).to_string("vounit"))
        except (ValueError, TypeError):
            return None


def _column(name: str, values: list[Any], field: Field | None) -> Column:
    """One column: booleans, integers or floats where every value is one (missing ones
    masked), else text (lists and groups of values as JSON)."""
    present = [v for v in values if v is not None]
    mask = [v is None for v in values]
    description = field.doc if field is not None and field.doc else None
    unit = vo_unit(field.unit) if isinstance(field, Scalar) else None
    data: Any
    if present and all(isinstance(v, bool) for v in present):
        data = np.array([bool(v) for v in (False if v is None else v for v in values)])
    elif present and all(isinstance(v, int) and not isinstance(v, bool) for v in present):
        data = np.array([0 if v is None else v for v in values], dtype=np.int64)
    elif present and all(isinstance(v, int | float) and not isinstance(v, bool)
                         for v in present):
        data = np.array([np.nan if v is None else float(v) for v in values])
    else:
        unit = None
        data = np.array(["" if v is None else json.dumps(v, separators=(",", ":"))
                         if isinstance(v, list | dict) else str(v) for v in values]
                        or [""], dtype=str)[:len(values)]
    if any(mask):
        return MaskedColumn(data, name=name, mask=mask, unit=unit, description=description)
    return Column(data, name=name, unit=unit, description=description)


def to_astropy(rows: Sequence[Mapping[str, Any]], columns: Sequence[str],
               fields: Mapping[str, Field | None]) -> Table:
    """Rows (values as listings hold them) as a Table; ``fields`` gives a column's unit and
    description (None: none known)."""
    table = Table()
    for name in columns:
        table.add_column(_column(name, [plain(r.get(name)) for r in rows], fields.get(name)))
    return table


def write_table(table: Table, fmt: QueryFormat) -> None:
    """Write the table to standard output: VOTable as text, FITS as bytes."""
    buf = io.BytesIO()
    if fmt is QueryFormat.votable:
        table.write(buf, format="votable")
    else:
        table.write(buf, format="fits")
    sys.stdout.flush()
    sys.stdout.buffer.write(buf.getvalue())
    sys.stdout.buffer.flush()
