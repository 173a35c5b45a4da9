"""Running a TAP query: the request's parameters checked, the ADQL compiled for the caller,
the SQL run read-only, the rows written as a VOTable (overflow marked)."""

from __future__ import annotations

import asyncio
import datetime as dt
import decimal
import re
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import asyncpg

from awecore.visibility import Viewer

from ..storage import read_only
from ..votable import Field, VOError, rows_bytes
from .adql import Compiled, compile_adql

__all__ = ["Query", "check_query", "run_query"]

_LANGS = {"ADQL", "ADQL-2.0", "ADQL-2.1"}
_FORMATS = {"votable", "application/x-votable+xml", "text/xml", "votable/td",
            "application/x-votable+xml;serialization=tabledata"}
#: PostgreSQL result types -> (VOTable datatype, xtype)
_PG_TYPES = {"int2": ("short", None), "int4": ("int", None), "int8": ("long", None),
             "float4": ("float", None), "float8": ("double", None),
             "numeric": ("double", None), "bool": ("boolean", None),
             "timestamptz": ("char", "timestamp"), "timestamp": ("char", "timestamp"),
             "date": ("char", "timestamp")}
#: SQLSTATE classes a query (not the server) is the cause of
_QUERY_CLASSES = frozenset({"0A", "22", "42", "53", "54"})
_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
#: PostgreSQL types whose values are converted for the VOTable (the others are written as
#: asyncpg returns them); unknown types are written as text
_CONVERTED = frozenset({"uuid", "timestamptz", "timestamp", "date", "numeric"})


#: queries parsed at once (each in a thread, so the event loop keeps answering while ANTLR
#: works): more wait their turn instead of sharing two cores ever more thinly
_PARSING = asyncio.Semaphore(2)


async def compile_off_loop(adql: str, viewer: Viewer, base_url: str, maxrec: int) -> Compiled:
    """``compile_adql`` in a worker thread: parsing takes from milliseconds to the parser's
    time budget (``adql.PARSE_SECONDS``), too long to hold the event loop."""
    async with _PARSING:
        return await asyncio.to_thread(compile_adql, adql, viewer, base_url, maxrec)


@dataclass(frozen=True)
class Query:
    adql: str
    maxrec: int


def check_query(params: Mapping[str, str | None], default_maxrec: int,
                hard_maxrec: int) -> Query:
    """A TAP request's parameters (names upper-cased) as a query, or a VOError saying what
    is wrong with them."""
    request = (params.get("REQUEST") or "doQuery").strip()
    if request.lower() != "doquery":
        raise VOError(f"REQUEST={request} is not supported; use REQUEST=doQuery")
    lang = (params.get("LANG") or "").strip()
    if not lang:
        raise VOError("parameter LANG is required (LANG=ADQL)")
    if lang.upper() not in _LANGS:
        raise VOError(f"LANG={lang} is not supported; use ADQL")
    fmt = (params.get("RESPONSEFORMAT") or params.get("FORMAT") or "votable").strip().lower()
    if fmt.replace(" ", "") not in _FORMATS:
        raise VOError(f"RESPONSEFORMAT={fmt} is not supported; use votable")
    if params.get("UPLOAD"):
        raise VOError("UPLOAD is not supported")
    adql = params.get("QUERY") or ""
    if not adql.strip():
        raise VOError("parameter QUERY is required")
    text = params.get("MAXREC")
    maxrec = default_maxrec
    if text is not None and text.strip():
        try:
            maxrec = int(text)
        except ValueError:
            raise VOError(f"MAXREC must be a whole number, not {text!r}") from None
        if maxrec < 0:
            raise VOError("MAXREC must not be negative")
    return Query(adql, min(maxrec, hard_maxrec))


def _field(name: str, pg_type: str, known: Field | None) -> Field:
    datatype, xtype = _PG_TYPES.get(pg_type, ("char", None))
    if known is not None and known.datatype == datatype:
        return Field(name, known.datatype, known.description, unit=known.unit, ucd=known.ucd,
                     utype=known.utype, xtype=known.xtype, arraysize=known.arraysize)
    return Field(name, datatype, xtype=xtype)


def _value(v: Any) -> Any:
    if isinstance(v, uuid.UUID):
        return str(v)
    if isinstance(v, dt.datetime):
        if v.tzinfo is not None:
            v = v.astimezone(dt.UTC).replace(tzinfo=None)
        return v.isoformat(timespec="milliseconds")
    if isinstance(v, dt.date):
        return v.isoformat()
    if isinstance(v, decimal.Decimal):
        return float(v)
    return v


def _names(raw: list[str]) -> list[str]:
    """Output names as VOTable FIELD names: unique, and identifiers."""
    out: list[str] = []
    for i, name in enumerate(raw):
        base = name if _NAME.match(name) else f"col{i + 1}"
        candidate, n = base, 1
        while candidate in out:
            n += 1
            candidate = f"{base}_{n}"
        out.append(candidate)
    return out


async def run_query(pool: asyncpg.Pool, timeout_ms: int, query: Query, viewer: Viewer,
                    base_url: str) -> tuple[bytes, int, bool]:
    """The VOTable of a query, its number of rows and whether MAXREC cut it short."""
    compiled = await compile_off_loop(query.adql, viewer, base_url, query.maxrec)
    try:
        async with read_only(pool, timeout_ms) as conn:
            statement = await conn.prepare(compiled.sql)
            attributes = statement.get_attributes()
            rows = await statement.fetch(*compiled.params)
    except asyncpg.QueryCanceledError:
        raise VOError(f"the query ran longer than {timeout_ms / 1000:g} s; narrow it (a "
                      "smaller region, TOP, MAXREC)", status=408) from None
    except (asyncpg.PostgresSyntaxError, asyncpg.UndefinedFunctionError,
            asyncpg.DataError, asyncpg.DatatypeMismatchError,
            asyncpg.GroupingError, asyncpg.AmbiguousColumnError,
            asyncpg.UndefinedColumnError, asyncpg.InvalidColumnReferenceError) as exc:
        raise VOError(f"the query cannot run: {exc.args[0] if exc.args else exc}") from None
    except (asyncpg.exceptions.DataError, ValueError, TypeError, OverflowError) as exc:
        raise VOError(f"a value of the query is not usable: {exc}") from None
    except asyncpg.PostgresError as exc:
        # data (22), syntax or access (42), an unsupported feature (0A), too complex (54),
        # too large for the server's memory or temporary files (53): the query's doing
        if exc.sqlstate and exc.sqlstate[:2] in _QUERY_CLASSES:
            raise VOError(f"the query cannot run: {exc}") from None
        raise
    except asyncpg.exceptions.InterfaceError as exc:
        if "arguments" in str(exc):  # more bind parameters than PostgreSQL takes
            raise VOError(f"the query cannot run: {exc}") from None
        raise
    overflow = len(rows) > query.maxrec
    rows = rows[:query.maxrec]
    names = _names([a.name for a in attributes])
    fields = [_field(n, a.type.name, compiled.columns.get(a.name))
              for n, a in zip(names, attributes, strict=True)]
    # values PostgreSQL types that VOTable has not (uuid, timestamps, numeric) as text or
    # float, column by column; the others go as they are
    convert = [a.type.name in _CONVERTED for a in attributes]
    data: list[Any] = rows
    if any(convert):
        data = [tuple(_value(v) if c else v for v, c in zip(r, convert, strict=True))
                for r in rows]
    return rows_bytes(fields, data, overflow=overflow), len(data), overflow
