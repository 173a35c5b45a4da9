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

import base64
import datetime as dt
import json
import math
import re
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from awecore.errors import InvalidQuery
from awecore.model import DBObject, Field, Ref, Scalar, Struct, registry
from awecore.query import And, Between, Compare, Expr, In, Like, Not, Or, QuerySpec
from awecore.sources import Source
from awecore.users import UserId
from awecore.visibility import (
    Columns,
    Viewer,
    binder,
    owner_sql,
    visibility_clause,
    visible_sql,
)

from ..models import Caller

__all__ = ["DIMENSION_COLUMNS", "OBJECT_COLUMNS", "SOURCE_COLUMNS", "SOURCE_TYPES", "SqlQuery",
           "compile_count", "compile_lookups", "compile_select", "compile_source_count",
           "compile_source_select",
           "row_cursor", "sort_keys", "source_filter"]

OBJECT_COLUMNS = (
    "oid::text AS oid, type, site, creation_date, creator, project, privileges, is_valid, "
    "quality_flags, timestamp_start, timestamp_end, filename, file_size, checksum, "
    "process_params, software_version, comments, attributes, refs, hlc, curation_hlc, "
    "curation_site"
)
#: single references that are data-ID columns of ``objects`` too (0013_dimensions.sql)
DIMENSION_REFS = frozenset({"instrument", "chip", "filter", "raw"})
#: targets of a data-ID path resolved beforehand at most (more: compiled as a sub-query)
MAX_RESOLVED = 1000
#: attributes that are columns too, with the type a class must declare them with
DIMENSION_SCALARS = {"tile": "str", "date_obs": "datetime"}
DIMENSION_COLUMNS = {"instrument": "dim_instrument", "chip": "dim_chip", "filter": "dim_filter",
                     "raw": "dim_raw", "tile": "dim_tile", "date_obs": "obs_time"}
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
    def __init__(self, caller: Caller, dimensions: bool = True,
                 resolved: list[list[uuid.UUID] | None] | None = None) -> None:
        self.caller = caller
        #: read data-ID conditions from the dimension columns (0013); without, through
        #: object_refs and JSONB as before them (the migration test's reference path)
        self.dimensions = dimensions
        #: collect, instead of compiling, the look-ups of the targets of dimension paths
        #: (``chip.name == X``: the chips named X) into ``lookups``
        self.collect = False
        self.lookups: list[SqlQuery] = []
        #: the oids those look-ups found, in the order met (None: too many, inline it)
        self.resolved = resolved
        self._met = 0
        #: the condition being compiled (a collected look-up compiles it afresh)
        self._node: Compare | Like | In | Between | None = None
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
        elif self.dimensions and DIMENSION_SCALARS.get(name) == field.type_name:
            return f"{alias}.{DIMENSION_COLUMNS[name]}"
        else:
            raw = f"({alias}.attributes ->> '{name}')"
        return raw if field.type_name == "str" else f"{raw}::{_CAST[field.type_name]}"

    def dimension_ref(self, alias: str, seg: str, field: Ref, rest: tuple[str, ...],
                      leaf: Leaf, here: str) -> str:
        """A single reference that is also a data-ID column of the row (0013): compared in
        place, or, further along the path, ``column IN (the visible targets that match)``,
        so the (type, dim_chip, dim_filter) index serves instead of object_refs. The same
        rows as through object_refs: the column is generated from the same reference."""
        column = f"{alias}.{DIMENSION_COLUMNS[seg]}"
        if not rest:
            return leaf(column, field, here).replace(_REF_OPEN, f"({column} IS NOT NULL AND ")
        if self.collect:
            assert self._node is not None
            sub = _Compiler(self.caller, self.dimensions)
            t = sub.alias("t")
            inner = sub.on_path(t, field.target, rest, sub.leaf_of(self._node), here)
            self.lookups.append(SqlQuery(
                f"SELECT {t}.oid FROM objects {t} WHERE {sub.type_is(t, field.target)} AND "
                f"{sub.visible(t)} AND {inner} LIMIT {MAX_RESOLVED + 1}", sub.params))
            return "TRUE"  # the SQL of this pass is not used when it collected look-ups
        if self.resolved is not None:
            oids = self.resolved[self._met]
            self._met += 1
            if oids is not None:
                # constants, so the planner walks (type, dim_chip, dim_filter, oid) in order
                # and a page reads its rows only, however many match
                cond = (f"{column} = {self.param(oids[0])}" if len(oids) == 1 else
                        f"{column} = ANY({self.param(oids)}::uuid[])" if oids else "FALSE")
                return f"({column} IS NOT NULL AND {cond})"
        o = self.alias("o")
        inner = self.on_path(o, field.target, rest, leaf, here)
        return (f"({column} IS NOT NULL AND {column} IN (SELECT {o}.oid FROM objects {o} "
                f"WHERE {self.type_is(o, field.target)} AND {self.visible(o)} AND {inner}))")

    def type_is(self, alias: str, cls: type[DBObject]) -> str:
        """Row ``alias`` is a ``cls`` (or of a subclass): one class is an equality, so the
        planner walks the (type, ...) indexes in their order."""
        names = registry.subclass_names(cls)
        if len(names) == 1:
            return f"{alias}.type = {self.param(names[0])}"
        return f"{alias}.type = ANY({self.param(names)}::text[])"

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
        if self.dimensions and isinstance(field, Ref) and not field.many \
                and seg in DIMENSION_REFS:
            return self.dimension_ref(alias, seg, field, rest, leaf, here)
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
        self._node = node
        return predicate(node.path, self.leaf_of(node))

    def leaf_of(self, node: Compare | Like | In | Between) -> Leaf:
        if isinstance(node, Compare):
            return self._compare(node)
        if isinstance(node, Like):
            return self._like(node)
        if isinstance(node, In):
            return self._in(node)
        return self._between(node)

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
            if field.is_column and field.name == "creator" and node.op in ("eq", "ne"):  # type: ignore[attr-defined]
                owner = self._owner(sql, str(value), shown)
                if owner is not None:
                    return owner if node.op == "eq" else f"NOT {owner}"
            return f"{sql} {_OPS[node.op]} {self.param(value)}"
        return leaf

    def _owner(self, sql: str, value: str, shown: str) -> str | None:
        """``creator == "bob@site"``: that user (``awecore.users``), however each object's
        site keeps them (bare at their own site, whole at another's); a bare name is this
        site's user. None: compare the column as it is (a bare name where the site is not
        known, or one that is no user's name)."""
        here = self.viewer.site
        if "@" not in value and here is None:
            return None
        try:
            whole = UserId.parse(value, here or "")
        except ValueError as exc:
            if "@" not in value:
                return None
            raise InvalidQuery(f"{shown}: {exc}") from None
        site = f"{sql.rpartition('.')[0]}.site" if "." in sql else "site"
        return (f"(({sql} = {self.param(whole.name)} AND {site} = {self.param(whole.site)}) "
                f"OR {sql} = {self.param(str(whole))})")

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
        parts = [self.type_is("o", cls), self.visible("o")]
        if spec.scope == "user":
            parts.append(owner_sql(self.viewer, self._bind, Columns.at("o")))
        elif spec.scope == "project":
            parts.append(f"o.project = {self.param(spec.project or self.caller.default_project)}")
        if spec.where is not None:
            parts.append(self.expr(spec.where, self.object_path(cls)))
        return cls, " AND ".join(p for p in parts if p != "TRUE") or "TRUE"

    def order_keys(self, cls: type[DBObject], spec: QuerySpec) -> list[_Key]:
        """The sort keys: the query's terms, then the oid (unique: pages are stable and a
        cursor names one position)."""
        keys = []
        found: list[Scalar] = []

        def leaf(sql: str, field: Field, shown: str) -> str:
            assert isinstance(field, Scalar)
            found.append(field)
            return sql
        for item in spec.order_by:
            if isinstance(cls.fields.get(item.path[0]), Ref):
                raise InvalidQuery(
                    f"cannot order by {'.'.join(item.path)}: ordering follows no references")
            sql = self.on_path("o", cls, item.path, leaf, cls.__name__)
            keys.append(_Key(sql, found[-1], item.descending))
        oid = DBObject.fields["oid"]
        assert isinstance(oid, Scalar)
        keys.append(_Key("o.oid", oid, bool(spec.order_by) and spec.order_by[-1].descending))
        return keys

    def order(self, cls: type[DBObject], spec: QuerySpec) -> str:
        keys = self.order_keys(cls, spec)
        terms = [f"{k.sql} {'DESC NULLS LAST' if k.descending else 'ASC NULLS LAST'}"
                 for k in keys[:-1]]
        terms.append("o.oid DESC" if keys[-1].descending else "o.oid")
        return ", ".join(terms)

    def keyset(self, keys: list[_Key], cursor: str) -> str:
        """Rows after the cursor's position in the order of ``keys`` (each NULLS LAST, the
        oid last and never NULL): lexicographically, "greater on one key and equal on every
        key before it". With no order_by that is ``o.oid > $n``: one index range."""
        values = decode_cursor(cursor, len(keys))
        coerced = [None if v is None else self.cursor_value(k.field, v)
                   for k, v in zip(keys, values, strict=True)]
        sql = ""
        for k, v in reversed(list(zip(keys, coerced, strict=True))):
            if v is None:
                after = "FALSE"  # nothing sorts after NULL (NULLS LAST) but its equals
                equal = f"{k.sql} IS NULL"
            else:
                p = self.param(v)
                after = f"{k.sql} {'<' if k.descending else '>'} {p}"
                if k is not keys[-1]:
                    after = f"({after} OR {k.sql} IS NULL)"
                equal = f"{k.sql} = {p}"
            sql = after if not sql else f"({after} OR ({equal} AND {sql}))"
        return sql

    @staticmethod
    def cursor_value(field: Scalar, value: Any) -> Any:
        kind = "uuid" if _is_oid(field) else field.type_name
        try:
            if kind == "uuid":
                return uuid.UUID(str(value))
            if kind == "datetime":
                return dt.datetime.fromisoformat(str(value))
            want = {"float": (int, float), "int": (int,), "bool": (bool,), "str": (str,)}[kind]
            if not isinstance(value, want) or (kind != "bool" and isinstance(value, bool)):
                raise ValueError(value)
            return float(value) if kind == "float" else value
        except ValueError:
            raise InvalidQuery("the cursor ('after') does not belong to this query") from None


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
            parts.append(owner_sql(self.viewer, self._bind, Columns.at("l")))
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


def compile_lookups(spec: QuerySpec, caller: Caller) -> list[SqlQuery]:
    """The look-ups to run before ``compile_select`` (its ``resolved``): for each condition
    through a data-ID reference (``chip.name == X``), the visible targets that match (at
    most MAX_RESOLVED + 1 rows of one oid). The page's query then compares the column with
    constants, which lets the planner read a (type, chip, filter, oid) range in order and
    stop after a page, where a sub-query would make it fetch and sort every match."""
    c = _Compiler(caller)
    c.collect = True
    c.where(spec)
    return c.lookups


def compile_select(spec: QuerySpec, caller: Caller, offset: int, limit: int,
                   after: str | None = None, *, dimensions: bool = True,
                   resolved: list[list[uuid.UUID] | None] | None = None) -> SqlQuery:
    """A page of objects: from ``offset``, or (keyset pagination) after the position
    ``after``, a cursor a previous page's row gave (``row_cursor``); each row carries the
    values of its sort keys (``_k0``...) to make one. ``dimensions=False``: the SQL of the
    schema before 0013 (references through object_refs, attributes in JSONB);
    ``resolved``: what ``compile_lookups`` found, in its order (None where it found more
    than MAX_RESOLVED: that condition stays a sub-query)."""
    c = _Compiler(caller, dimensions, resolved)
    cls, where = c.where(spec)
    keys = c.order_keys(cls, spec)
    order = c.order(cls, spec)
    if after is not None:
        where = f"{where} AND {c.keyset(keys, after)}"
    extra = "".join(f", {k.sql} AS _k{i}" for i, k in enumerate(keys[:-1]))
    sql = (f"SELECT {OBJECT_COLUMNS}{extra} FROM objects o WHERE {where} ORDER BY {order} "
           f"LIMIT {c.param(limit)}")
    if offset:
        sql += f" OFFSET {c.param(offset)}"
    return SqlQuery(sql, c.params)


def row_cursor(row: Mapping[str, Any], keys: int) -> str:
    """The cursor of a row of ``compile_select`` (its sort keys' values, then its oid):
    opaque to clients, url-safe."""
    values = [_jsonable(row[f"_k{i}"]) for i in range(keys)] + [row["oid"]]
    return base64.urlsafe_b64encode(json.dumps(values).encode()).decode().rstrip("=")


def sort_keys(spec: QuerySpec) -> int:
    """How many ``_k`` values a row of ``compile_select`` carries for ``spec``."""
    return len(spec.order_by)


def decode_cursor(cursor: str, keys: int) -> list[Any]:
    try:
        values = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
    except ValueError:
        values = None
    if not isinstance(values, list) or len(values) != keys or values[-1] is None:
        raise InvalidQuery("the cursor ('after') does not belong to this query")
    return values


def _jsonable(value: Any) -> Any:
    if isinstance(value, dt.datetime):
        return value.isoformat()
    if isinstance(value, uuid.UUID):
        return str(value)
    return value


@dataclass(frozen=True)
class _Key:
    sql: str
    field: Scalar
    descending: bool


def compile_count(spec: QuerySpec, caller: Caller, *, dimensions: bool = True) -> SqlQuery:
    c = _Compiler(caller, dimensions)
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
