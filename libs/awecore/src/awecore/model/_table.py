"""Query results as astropy Tables."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from astropy.table import Table

from ._fields import Scalar, Struct

if TYPE_CHECKING:
    pass

__all__ = ["to_table"]


def _default_columns(cls: type[Any]) -> list[str]:
    cols = ["oid", "type", "creation_date"]
    for name, field in cls.fields.items():
        if name in cols or name in ("hlc", "site", "creator", "project", "comments"):
            continue
        if isinstance(field, Scalar):
            cols.append(name)
        elif isinstance(field, Struct):
            cols.extend(f"{name}.{sub}" for sub in field.struct.fields)
    return cols


def _value(obj: Any, path: str) -> Any:
    value: Any = obj
    for part in path.split("."):
        if value is None:
            return None
        value = getattr(value, part)
    return value


def to_table(objects: Sequence[Any], cls: type[Any],
             columns: Sequence[str] | None = None) -> Table:
    """One row per object; dotted columns follow references (batched per page)."""
    names = list(columns) if columns is not None else _default_columns(cls)
    rows = {name: [_value(o, name) for o in objects] for name in names}
    table = Table()
    for name in names:
        values = rows[name]
        if all(v is None or (isinstance(v, int | float) and not isinstance(v, bool))
               for v in values) and any(v is not None for v in values):
            table[name] = [float("nan") if v is None else v for v in values]
        else:
            table[name] = ["" if v is None else str(v) for v in values]
        field = cls.fields.get(name)
        if isinstance(field, Scalar) and field.unit:
            table[name].unit = field.unit
    return table
