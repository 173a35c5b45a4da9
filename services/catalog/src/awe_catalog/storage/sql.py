"""Compile a query AST into parameterised SQL over the ``objects`` table (and ``sources``).

Values only ever travel as bind parameters. Identifiers (columns, JSON keys) come from the
object model after the path was resolved against it, and are checked against a strict
pattern as a second guard. Each step through a reference is an uncorrelated
``oid IN (SELECT src ...)`` sub-query, so a predicate means "some referenced object
matches", rows never multiply, and the planner can start from the referenced side (e.g.
the one chip named 'ccd53') instead of probing every candidate row.

Queries on ``Source`` (cls "Source") select rows ``s`` of the source table: its columns are
compared directly, and ``sourcelist`` joins the source list ``l`` in ``objects``, from where
the object paths go on as above. Visibility applies to the source list and every object a
path passes through.
"""

from __future__ import annotations

import datetime as dt
import math
import re
import uuid
from collections.abc import Callable
from typing import Any

from awecore.errors import InvalidQuery
from awecore.model import DBObject, Field, Ref, Scalar, Struct, registry
from awecore.query import And, Between, Compare, Expr, In, Like, Not, Or, QuerySpec
from awecore.sources import Source
from awecore.visibility import Columns, Viewer, binder, visibility_clause, visible_sql

from ..models import Caller

__all__ = ["OBJECT_COLUMNS", "SOURCE_COLUMNS", "SOURCE_TYPES", "SqlQuery", "compile_count",
           "compile_select", "compile_source_count", "compile_source_select", "source_filter"]

OBJECT_COLUMNS = (
    "oid::text AS oid, type, site, creation_date, creator, project, privileges, is_valid, "
    "quality_flags, timestamp_start, timestamp_end, filename, file_size, checksum, "
    "process_params, software_version, comments, attributes, refs, hlc, curation_hlc, "
    "curation_site"
)
_IDENT = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")
#: where a condition on a referenced oid starts; the caller that walked there fills it in
_REF_OPEN = "{ref_open}"
_CAST = {"float": "double precision", "int": "bigint", "bool": "boolean",
         "datetime": "timestamptz", "str": "text"}
_OPS = {"eq": "=", "ne": "IS DISTINCT FROM", "lt": "<", "le": "<=", "gt": ">", "ge": ">="}
#: column types of the source table (0004_sources.sql); values must fit the narrow ones
SOURCE_TYPES = {"sourcelist": "uuid", "seq": "integer", "ra": "double precision",
                "dec": "double precision", "x": "real", "y": "real",
                "flux": "double precision", "flux_err": "double precision", "mag": "real",
                "mag_err": "real", "snr": "real", "flag": "integer"}
SOURCE_COLUMNS = ("s.sourcelist::text AS sourcelist, s.seq, s.ra, s.dec, s.x, s.y, s.flux, "
                  "s.flux_err, s.mag, s.mag_err, s.snr, s.flag")
_REAL_MAX = 3.4028234663852886e38
_INT4 = 2**31

Leaf = Callable[[str, Field, str], str]


def _ident(name: str) -> str:
    if not _IDENT.match(name):
        raise InvalidQuery(f"{name!r} is not a valid attribute name")
    return name


def _is_oid(field: Field) -> bool:
    """The object's own id: a text field of the model, a uuid column in the table."""
    return isinstance(field, Scalar) and field.is_column and field.name == "oid"


class SqlQuery:
    def __init__(self, sql: str, params: list[Any]) -> None:
        self.sql = sql
        self.params = params


class _Compiler:
    def __init__(self, caller: Caller) -> None:
        self.caller = caller
        self.params: list[Any] = []
        self._aliases = 0
        self.viewer = Viewer.of(caller)
        #: binds the caller's name and projects once, however many rows test visibility
        self._bind = binder(self.param)

    def param(self, value: Any) -> str:
        self.params.append(value)
        return f"${len(self.params)}"

    def alias(self, prefix: str) -> str:
        self._aliases += 1
        return f"{prefix}{self._aliases}"

    def visible(self, alias: str) -> str:
        """Whether the caller may see row ``alias`` (the rule is awecore.visibility's)."""
        return visible_sql(self.viewer, self._bind, Columns.at(alias))

    # -- paths -------------------------------------------------------------------------
    def scalar_sql(self, alias: str, field: Scalar, struct: str | None = None) -> str:
        name = _ident(field.name)
        if struct is not None:
            raw = f"({alias}.attributes -> '{_ident(struct)}' ->> '{name}')"
        elif field.is_column:
            return f"{alias}.{name}"
        else:
            raw = f"({alias}.attributes ->> '{name}')"
        return raw if field.type_name == "str" else f"{raw}::{_CAST[field.type_name]}"

    def on_path(self, alias: str, cls: type[DBObject], path: tuple[str, ...], leaf: Leaf,
                shown: str) -> str:
        """SQL for a predicate at the end of ``path``, starting from row ``alias``."""
        seg, rest = path[0], path[1:]
        field = cls.fields.get(seg)
        here = f"{shown}.{seg}"
        if field is None:
            raise InvalidQuery(
                f"{cls.__name__} has no attribute {seg!r} (in {here}); "
                f"it has {', '.join(sorted(cls.fields))}")
        if isinstance(field, Ref):
            r = self.alias("r")
            link = f"{r}.name = '{_ident(seg)}'"
            if not rest:
                return leaf(f"{r}.dst", field, here).replace(
                    _REF_OPEN, f"{alias}.oid IN (SELECT {r}.src FROM object_refs {r} "
                               f"WHERE {link} AND ")
            o = self.alias("o")
            inner = self.on_path(o, field.target, rest, leaf, here)
            # the type condition is redundant (references are checked on write) but lets the
            # planner start from the (type, name) index of the referenced class
            types = self.param(registry.subclass_names(field.target))
            return (f"{alias}.oid IN (SELECT {r}.src FROM object_refs {r} JOIN objects {o}"
                    f" ON {o}.oid = {r}.dst WHERE {link} AND {o}.type = ANY({types}::text[])"
                    f" AND {self.visible(o)} AND {inner})")
        if isinstance(field, Struct):
            if len(rest) != 1:
                raise InvalidQuery(
                    f"{here} is a group of values; name one of {sorted(field.struct.fields)}")
            sub = field.struct.fields.get(rest[0])
            if sub is None:
                raise InvalidQuery(f"{here} has no field {rest[0]!r}; "
                                   f"it has {sorted(field.struct.fields)}")
            return leaf(self.scalar_sql(alias, sub, struct=seg), sub, f"{here}.{rest[0]}")
        if rest:
            raise InvalidQuery(f"{here} is a value, not a reference: cannot follow .{rest[0]}")
        assert isinstance(field, Scalar)
        return leaf(self.scalar_sql(alias, field), field, here)

    # -- values ------------------------------------------------------------------------
    def coerce(self, field: Field, value: Any, shown: str) -> Any:
        if isinstance(field, Ref):
            if not isinstance(value, str):
                raise InvalidQuery(f"{shown} is a reference; compare it with an object or oid")
            try:
                return uuid.UUID(value)
            except ValueError:
                hint = (f" (to match by name: {shown}.name)" if "name" in field.target.fields
                        else "")
                raise InvalidQuery(
                    f"{shown} is a reference; {value!r} is not an oid{hint}") from None
        assert isinstance(field, Scalar)
        kind = field.type_name
        wrong = InvalidQuery(
            f"{shown} is {'an' if kind == 'int' else 'a'} {kind}; "
            f"{value!r} is a {type(value).__name__}")
        if kind == "float":
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise wrong
            return float(value)
        if kind == "int":
            if isinstance(value, bool) or not isinstance(value, int):
                raise wrong
            if abs(value) >= 2**63:
                raise InvalidQuery(f"{shown}: {value} is out of range")
            return value
        if kind == "bool":
            if not isinstance(value, bool):
                raise wrong
            return value
        if kind == "datetime":
            if not isinstance(value, str):
                raise wrong
            try:
                when = dt.datetime.fromisoformat(value)
            except ValueError:
                raise InvalidQuery(
                    f"{shown} is a datetime; {value!r} is not ISO 8601 "
                    "(e.g. 2003-02-14T12:00:00)") from None
            return when if when.tzinfo else when.replace(tzinfo=dt.UTC)
        if not isinstance(value, str):
            raise wrong
        if "\x00" in value:
            raise InvalidQuery(f"{shown}: text values cannot contain NUL characters")
        if _is_oid(field):  # a uuid column: compared as one, so its index serves
            try:
                return uuid.UUID(value)
            except ValueError:
                raise InvalidQuery(f"{shown} is an oid; {value!r} is not one") from None
        return value

    def array_type(self, field: Field) -> str:
        if isinstance(field, Ref) or _is_oid(field):
            return "uuid"
        return _CAST[field.type_name]  # type: ignore[attr-defined]

    # -- expressions -------------------------------------------------------------------
    def expr(self, node: Expr, predicate: Callable[[tuple[str, ...], Leaf], str]) -> str:
        """SQL for ``node``; ``predicate(path, leaf)`` walks a path from the query's root."""
        if isinstance(node, And):
            return "(" + " AND ".join(self.expr(i, predicate) for i in node.items) + ")"
        if isinstance(node, Or):
            return "(" + " OR ".join(self.expr(i, predicate) for i in node.items) + ")"
        if isinstance(node, Not):
            return f"(NOT {self.expr(node.item, predicate)})"
        if isinstance(node, Compare):
            return predicate(node.path, self._compare(node))
        if isinstance(node, Like):
            return predicate(node.path, self._like(node))
        if isinstance(node, In):
            return predicate(node.path, self._in(node))
        return predicate(node.path, self._between(node))

    def object_path(self, cls: type[DBObject]) -> Callable[[tuple[str, ...], Leaf], str]:
        def predicate(path: tuple[str, ...], leaf: Leaf) -> str:
            return self.on_path("o", cls, path, leaf, cls.__name__)
        return predicate

    @staticmethod
    def _ref_leaf(cond: str) -> str:
        """A condition on the referenced oid; whoever walked to the reference opens it."""
        return f"{_REF_OPEN}{cond})"

    def _compare(self, node: Compare) -> Leaf:
        def leaf(sql: str, field: Field, shown: str) -> str:
            if node.value is None:
                if node.op not in ("eq", "ne"):
                    raise InvalidQuery(f"{shown}: only == and != can compare with None")
                if isinstance(field, Ref):
                    cond = self._ref_leaf("TRUE")
                    return f"NOT {cond}" if node.op == "eq" else cond
                return f"{sql} IS {'NOT ' if node.op == 'ne' else ''}NULL"
            value = self.coerce(field, node.value, shown)
            if isinstance(field, Ref):
                if node.op not in ("eq", "ne"):
                    raise InvalidQuery(f"{shown} is a reference: only == and != apply")
                cond = self._ref_leaf(f"{sql} = {self.param(value)}")
                return cond if node.op == "eq" else f"NOT {cond}"
            if field.type_name == "bool" and node.op not in ("eq", "ne"):  # type: ignore[attr-defined]
                raise InvalidQuery(f"{shown} is a bool: only == and != apply")
            return f"{sql} {_OPS[node.op]} {self.param(value)}"
        return leaf

    def _like(self, node: Like) -> Leaf:
        def leaf(sql: str, field: Field, shown: str) -> str:
            if not isinstance(field, Scalar) or field.type_name != "str" or _is_oid(field):
                raise InvalidQuery(f"{shown}: like() applies to text attributes only"
                                   + (" (an oid is a UUID: compare it with ==)"
                                      if _is_oid(field) else ""))
            pattern = self.coerce(field, node.pattern, shown)
            escaped = (pattern.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
                       .replace("*", "%").replace("?", "_"))
            return f"{sql} LIKE {self.param(escaped)} ESCAPE '\\'"
        return leaf

    def _in(self, node: In) -> Leaf:
        def leaf(sql: str, field: Field, shown: str) -> str:
            if not node.values:
                return "FALSE"
            if any(v is None for v in node.values):
                raise InvalidQuery(f"{shown}: in_() takes no None; use == None")
            values = [self.coerce(field, v, shown) for v in node.values]
            cond = f"{sql} = ANY({self.param(values)}::{self.array_type(field)}[])"
            return self._ref_leaf(cond) if isinstance(field, Ref) else cond
        return leaf

    def _between(self, node: Between) -> Leaf:
        def leaf(sql: str, field: Field, shown: str) -> str:
            if isinstance(field, Ref) or node.low is None or node.high is None:
                raise InvalidQuery(f"{shown}: between() needs two values of a scalar attribute")
            low = self.coerce(field, node.low, shown)
            high = self.coerce(field, node.high, shown)
            return f"{sql} BETWEEN {self.param(low)} AND {self.param(high)}"
        return leaf

    # -- whole query -------------------------------------------------------------------
    def where(self, spec: QuerySpec) -> tuple[type[DBObject], str]:
        if spec.cls not in registry:
            hint = " (sources are queried at /sources/query)" if spec.cls == "Source" else ""
            raise InvalidQuery(f"unknown class {spec.cls!r}{hint}; "
                               f"known classes: {', '.join(registry.names())}")
        cls = registry.get(spec.cls)
        parts = [f"o.type = ANY({self.param(registry.subclass_names(cls))}::text[])",
                 self.visible("o")]
        if spec.scope == "user":
            parts.append(f"o.creator = {self.param(self.caller.name)}")
        elif spec.scope == "project":
            parts.append(f"o.project = {self.param(spec.project or self.caller.default_project)}")
        if spec.where is not None:
            parts.append(self.expr(spec.where, self.object_path(cls)))
        return cls, " AND ".join(p for p in parts if p != "TRUE") or "TRUE"

    def order(self, cls: type[DBObject], spec: QuerySpec) -> str:
        terms = []
        for item in spec.order_by:
            def leaf(sql: str, field: Field, shown: str) -> str:
                return sql
            if isinstance(cls.fields.get(item.path[0]), Ref):
                raise InvalidQuery(
                    f"cannot order by {'.'.join(item.path)}: ordering follows no references")
            sql = self.on_path("o", cls, item.path, leaf, cls.__name__)
            terms.append(f"{sql} {'DESC NULLS LAST' if item.descending else 'ASC NULLS LAST'}")
        terms.append("o.oid DESC" if spec.order_by and spec.order_by[-1].descending else "o.oid")
        return ", ".join(terms)


class _SourceCompiler(_Compiler):
    """Rows ``s`` of the source table; ``l``, their source list, is joined when needed."""

    def __init__(self, caller: Caller) -> None:
        super().__init__(caller)
        self.joins_list = False

    def source_path(self, path: tuple[str, ...], leaf: Leaf) -> str:
        seg, rest = path[0], path[1:]
        field = Source.fields.get(seg)
        here = f"Source.{seg}"
        if field is None:
            raise InvalidQuery(f"Source has no attribute {seg!r}; "
                               f"it has {', '.join(sorted(Source.fields))}")
        if isinstance(field, Ref):
            if not rest:  # the source list's oid is a column here: no object_refs step
                return leaf("s.sourcelist", field, here).replace(_REF_OPEN, "(")
            self.joins_list = True
            return self.on_path("l", field.target, rest, leaf, here)
        if rest:
            raise InvalidQuery(f"{here} is a value, not a reference: cannot follow .{rest[0]}")
        return leaf(f"s.{_ident(seg)}", field, here)

    def coerce(self, field: Field, value: Any, shown: str) -> Any:
        """As for objects, and the value must fit the source table's narrower columns."""
        got = super().coerce(field, value, shown)
        kind = SOURCE_TYPES.get(field.name) if Source.fields.get(field.name) is field else None
        if kind == "real" and math.isfinite(got) and abs(got) > _REAL_MAX:
            raise InvalidQuery(f"{shown}: {value} is out of range (a 4-byte float)")
        if kind == "integer" and not -_INT4 <= got < _INT4:
            raise InvalidQuery(f"{shown}: {value} is out of range (a 4-byte integer)")
        return got

    def array_type(self, field: Field) -> str:
        if Source.fields.get(field.name) is field and field.name != "sourcelist":
            return SOURCE_TYPES[field.name]  # in_() on a real column compares as real
        return super().array_type(field)

    def source_where(self, spec: QuerySpec | None) -> str:
        if spec is not None and spec.cls != "Source":
            raise InvalidQuery(f"a source query selects Source, not {spec.cls!r} "
                               "(objects are queried at /query)")
        parts = [self.visible("l")]
        if spec is not None and spec.scope == "user":
            parts.append(f"l.creator = {self.param(self.caller.name)}")
        elif spec is not None and spec.scope == "project":
            parts.append(f"l.project = {self.param(spec.project or self.caller.default_project)}")
        parts = [p for p in parts if p != "TRUE"]
        self.joins_list = self.joins_list or bool(parts)
        if spec is not None and spec.where is not None:
            parts.append(self.expr(spec.where, self.source_path))
        return " AND ".join(parts) or "TRUE"

    def source_order(self, spec: QuerySpec) -> str:
        terms = []
        for item in spec.order_by:
            if len(item.path) > 1 and isinstance(Source.fields.get(item.path[0]), Ref):
                raise InvalidQuery(
                    f"cannot order by {'.'.join(item.path)}: ordering follows no references")
            sql = self.source_path(item.path, lambda sql, field, shown: sql)
            terms.append(f"{sql} {'DESC NULLS LAST' if item.descending else 'ASC NULLS LAST'}")
        descending = bool(spec.order_by) and spec.order_by[-1].descending
        terms.append("s.sourcelist DESC, s.seq DESC" if descending else "s.sourcelist, s.seq")
        return ", ".join(terms)

    def source_from(self) -> str:
        return ("sources s JOIN objects l ON l.oid = s.sourcelist" if self.joins_list
                else "sources s")


def compile_select(spec: QuerySpec, caller: Caller, offset: int, limit: int) -> SqlQuery:
    c = _Compiler(caller)
    cls, where = c.where(spec)
    order = c.order(cls, spec)
    sql = (f"SELECT {OBJECT_COLUMNS} FROM objects o WHERE {where} ORDER BY {order} "
           f"LIMIT {c.param(limit)} OFFSET {c.param(offset)}")
    return SqlQuery(sql, c.params)


def compile_count(spec: QuerySpec, caller: Caller) -> SqlQuery:
    c = _Compiler(caller)
    _, where = c.where(spec)
    return SqlQuery(f"SELECT count(*) FROM objects o WHERE {where}", c.params)


def visibility(caller: Caller, alias: str, first_param: int) -> tuple[str, list[Any]]:
    """The visibility predicate alone, for hand-written statements (get, changes)."""
    return visibility_clause(Viewer.of(caller), Columns.at(alias), first_param)


def compile_source_select(spec: QuerySpec, caller: Caller, offset: int,
                          limit: int) -> SqlQuery:
    """A page of source rows (ordered, then by source list and number, so pages are stable)."""
    c = _SourceCompiler(caller)
    where = c.source_where(spec)
    order = c.source_order(spec)
    sql = (f"SELECT {SOURCE_COLUMNS} FROM {c.source_from()} WHERE {where} ORDER BY {order} "
           f"LIMIT {c.param(limit)} OFFSET {c.param(offset)}")
    return SqlQuery(sql, c.params)


def compile_source_count(spec: QuerySpec, caller: Caller) -> SqlQuery:
    c = _SourceCompiler(caller)
    where = c.source_where(spec)
    return SqlQuery(f"SELECT count(*) FROM {c.source_from()} WHERE {where}", c.params)


def source_filter(spec: QuerySpec | None, caller: Caller, first_param: int) -> SqlQuery:
    """Visibility, scope and condition of a Source query over rows ``s`` joined to their
    source list ``l``, for hand-written statements (the cone search)."""
    if spec is not None and spec.order_by:
        raise InvalidQuery("this search has its own order; drop order_by")
    c = _SourceCompiler(caller)
    c.params = [None] * (first_param - 1)
    sql = c.source_where(spec)
    return SqlQuery(sql, c.params[first_param - 1:])
