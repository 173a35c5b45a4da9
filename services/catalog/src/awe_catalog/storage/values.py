"""A DSL query's results as rows of a few chosen fields: the SQL of ``POST /query/values``.

A page that draws a quantity over thousands of objects (the portal's QC charts: a value,
a time, a flag per point) needs a handful of fields of each, not whole records: a record
is some 600 bytes of JSON to build, send and read back, its fields a tenth of that. The
query is the very one ``POST /query`` runs (same compiler, same visibility rule, same
order and paging); only the columns it returns are narrowed, in SQL, so no record is
built at all. References the caller may not see are named ``HIDDEN_OID``, as in records
(``storage.hidden``).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import asyncpg

from awecore.errors import InvalidQuery
from awecore.query import QuerySpec
from awecore.visibility import HIDDEN_OID

from ..models import Caller
from .hidden import hidden_targets, remember_shared
from .sql import compile_select

__all__ = ["RECORD_FIELDS", "ValuesPage", "field_sql", "select_values"]

#: the record's own fields a row may carry, by name (the object's data are under
#: ``attributes.``, its references under ``refs.``)
RECORD_FIELDS = frozenset({
    "oid", "type", "site", "creation_date", "creator", "project", "privileges", "is_valid",
    "quality_flags", "timestamp_start", "timestamp_end", "filename", "file_size",
    "checksum", "software_version", "comments", "hlc", "curation_hlc", "curation_site"})
_KEY = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,63}$")


@dataclass
class ValuesPage:
    rows: list[list[Any]]
    next_offset: int | None


def field_sql(name: str, param: int) -> tuple[str, list[Any]]:
    """The SQL of one field over the query's rows ``q``, and its parameters (numbered
    from ``param``): a record field, ``attributes.a.b`` (null where absent) or
    ``refs.name`` (an oid, a list of oids, or null)."""
    head, _, rest = name.partition(".")
    keys = rest.split(".") if rest else []
    if not all(_KEY.match(k) for k in keys):
        raise InvalidQuery(f"field {name[:100]!r}: each part after the first is a name "
                           "(letters, digits, _)")
    if head in RECORD_FIELDS and not keys:
        return f"q.{head}", []
    if head == "attributes" and keys:
        return f"q.attributes #> ${param}::text[]", [keys]
    if head == "refs" and len(keys) == 1:
        return f"q.refs -> ${param}::text", [keys[0]]
    raise InvalidQuery(
        f"no field {name[:100]!r}: give a record field ({', '.join(sorted(RECORD_FIELDS))}), "
        "attributes.NAME[.KEY...] or refs.NAME")


def _targets(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, list):
        return [v for v in value if isinstance(v, str)]
    return []


def _hide(value: Any, hidden: set[str]) -> Any:
    if isinstance(value, str):
        return HIDDEN_OID if value in hidden else value
    if isinstance(value, list):
        return [HIDDEN_OID if isinstance(v, str) and v in hidden else v for v in value]
    return value


async def select_values(conn: asyncpg.Connection, spec: QuerySpec, fields: Sequence[str],
                        caller: Caller, offset: int, limit: int) -> ValuesPage:
    """One page of the query's objects as rows of ``fields``, in the query's order."""
    query = compile_select(spec, caller, offset, limit + 1)  # one more: is there a next?
    columns: list[str] = []
    params = list(query.params)
    for i, name in enumerate(fields):
        sql, more = field_sql(name, len(params) + 1)
        columns.append(f"{sql} AS f{i}")
        params += more
    # the query's own page, narrowed: a projection keeps its subquery's order
    sql = (f"SELECT q.oid AS _oid, q.privileges AS _privileges, {', '.join(columns)} "
           f"FROM ({query.sql}) AS q")
    refs = [i for i, name in enumerate(fields) if name.startswith("refs.")]
    got = await conn.fetch(sql, *params)
    found = got[:limit]
    hidden: set[str] = set()
    if refs and not caller.sees_all:
        remember_shared([(r["_oid"], r["_privileges"]) for r in found], caller)
        hidden = await hidden_targets(
            conn, {t for r in found for i in refs for t in _targets(r[i + 2])},
            {r["_oid"] for r in found}, caller)
    # the fields are the columns after _oid and _privileges
    rows = [list(r.values())[2:] for r in found]
    if hidden:
        for row in rows:
            for i in refs:
                row[i] = _hide(row[i], hidden)
    return ValuesPage(rows, offset + limit if len(got) > limit else None)
