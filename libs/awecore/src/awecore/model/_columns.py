"""The columns a person wants to see of a class first, wherever a query's objects are listed
(``awe query``, the portal's object viewer): one rule, so the shell and the web page agree."""

from __future__ import annotations

from ._base import DBObject
from ._fields import Ref

__all__ = ["default_columns"]

#: the columns every object shows last: its verdict, who made it and when
_TAIL = ("is_valid", "quality_flags", "creator", "creation_date")


def default_columns(cls: type[DBObject]) -> list[str]:
    """The oid and type, its name, chip, filter and date when it has them, then the QC
    verdict, creator and creation date."""
    cols = ["oid", "type"]
    if "name" in cls.fields:
        cols.append("name")
    cols.extend(f"{ref}.name" for ref in ("chip", "filter")
                if isinstance(cls.fields.get(ref), Ref))
    cols.extend(next(([d] for d in ("date_obs", "timestamp_start") if d in cls.fields), []))
    return cols + list(_TAIL)
