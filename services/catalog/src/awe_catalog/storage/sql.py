"""Compile a query AST into parameterised SQL over the ``objects`` table.

Values only ever travel as bind parameters. Identifiers (columns, JSON keys) come from the
object model after the path was resolved against it, and are checked against a strict
pattern as a second guard. Each step through a reference is an uncorrelated
``oid IN (SELECT src ...)`` sub-query, so a predicate means "some referenced object
matches", rows never multiply, and the planner can start from the referenced side (e.g.
the one chip named 'ccd53') instead of probing every candidate row.
"""

from __future__ import annotations

import datetime as dt
import re
import uuid
from collections.abc import Callable
from typing import Any

from awecore.errors import InvalidQuery
from awecore.model import DBObject, Field, Ref, Scalar, Struct, registry
from awecore.query import And, Between, Compare, Expr, In, Like, Not, Or, QuerySpec

from ..models import Caller

__all__ = ["OBJECT_COLUMNS", "SqlQuery", "compile_count", "compile_select"]

OBJECT_COLUMNS = (
    "oid::text AS oid, type, site, creation_date, creator, project, privileges, is_valid, "
    "quality_flags, timestamp_start, timestamp_end, filename, file_size, checksum, "
    "process_params, software_version, comments, attributes, refs, hlc, curation_hlc, "
    "curation_site"
)
_IDENT = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")
_CAST = {"float": "double precision", "int": "bigint", "bool": "boolean",
         "datetime": "timestamptz", "str": "text"}
_OPS = {"eq": "=", "ne": "IS DISTINCT FROM", "lt": "<", "le": "<=", "gt": ">", "ge": ">="}


def _ident(name: str) -> str:
    if not _IDENT.match(name):
        raise InvalidQuery(f"{name!r} is not a valid attribute name")
    return name


class SqlQuery:
    def __init__(self, sql: str, params: list[Any]) -> None:
        self.sql = sql
        self.params = params


class _Compiler:
    def __init__(self, caller: Caller) -> None:
        self.caller = caller
        self.params: list[Any] = []
        self._aliases = 0
        self._user_p: str | None = None
        self._projects_p: str | None = None

    def param(self, value: Any) -> str:
        self.params.append(value)
        return f"${len(self.params)}"

    def alias(self, prefix: str) -> str:
        self._aliases += 1
        return f"{prefix}{self._aliases}"

    def visible(self, alias: str) -> str:
        """Own objects, own projects' objects (privileges >= 2), and everything shared."""
        if self.caller.sees_all:
            return "TRUE"
        if self._user_p is None:
            self._user_p = self.param(self.caller.name)
            self._projects_p = self.param(self.caller.projects)
        return (f"({alias}.creator = {self._user_p} OR {alias}.privileges >= 3 OR "
                f"({alias}.privileges = 2 AND {alias}.project = ANY({self._projects_p}::text[])))")

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

    def on_path(self, alias: str, cls: type[DBObject], path: tuple[str, ...],
                leaf: Callable[[str, Field, str], str], shown: str) -> str:
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
                return (leaf(f"{r}.dst", field, here).replace("{owner}", alias)
                        .replace("{refs}", r).replace("{link}", link))
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
                raise InvalidQuery(f"{shown} is a reference; {value!r} is not an oid") from None
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
        return value

    def array_type(self, field: Field) -> str:
        return "uuid" if isinstance(field, Ref) else _CAST[field.type_name]  # type: ignore[attr-defined]

    # -- expressions -------------------------------------------------------------------
    def expr(self, cls: type[DBObject], node: Expr) -> str:
        if isinstance(node, And):
            return "(" + " AND ".join(self.expr(cls, i) for i in node.items) + ")"
        if isinstance(node, Or):
            return "(" + " OR ".join(self.expr(cls, i) for i in node.items) + ")"
        if isinstance(node, Not):
            return f"(NOT {self.expr(cls, node.item)})"
        if isinstance(node, Compare):
            return self.on_path("o", cls, node.path, self._compare(node), cls.__name__)
        if isinstance(node, Like):
            return self.on_path("o", cls, node.path, self._like(node), cls.__name__)
        if isinstance(node, In):
            return self.on_path("o", cls, node.path, self._in(node), cls.__name__)
        return self.on_path("o", cls, node.path, self._between(node), cls.__name__)

    @staticmethod
    def _ref_leaf(cond: str) -> str:
        """A condition on the referenced oid; on_path fills in {owner}, {refs} and {link}."""
        return (f"{{owner}}.oid IN (SELECT {{refs}}.src FROM object_refs {{refs}} "
                f"WHERE {{link}} AND {cond})")

    def _compare(self, node: Compare) -> Callable[[str, Field, str], str]:
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

    def _like(self, node: Like) -> Callable[[str, Field, str], str]:
        def leaf(sql: str, field: Field, shown: str) -> str:
            if not isinstance(field, Scalar) or field.type_name != "str":
                raise InvalidQuery(f"{shown}: like() applies to text attributes only")
            pattern = self.coerce(field, node.pattern, shown)
            escaped = (pattern.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
                       .replace("*", "%").replace("?", "_"))
            return f"{sql} LIKE {self.param(escaped)} ESCAPE '\\'"
        return leaf

    def _in(self, node: In) -> Callable[[str, Field, str], str]:
        def leaf(sql: str, field: Field, shown: str) -> str:
            if not node.values:
                return "FALSE"
            if any(v is None for v in node.values):
                raise InvalidQuery(f"{shown}: in_() takes no None; use == None")
            values = [self.coerce(field, v, shown) for v in node.values]
            cond = f"{sql} = ANY({self.param(values)}::{self.array_type(field)}[])"
            return self._ref_leaf(cond) if isinstance(field, Ref) else cond
        return leaf

    def _between(self, node: Between) -> Callable[[str, Field, str], str]:
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
            raise InvalidQuery(
                f"unknown class {spec.cls!r}; known classes: {', '.join(registry.names())}")
        cls = registry.get(spec.cls)
        parts = [f"o.type = ANY({self.param(registry.subclass_names(cls))}::text[])",
                 self.visible("o")]
        if spec.scope == "user":
            parts.append(f"o.creator = {self.param(self.caller.name)}")
        elif spec.scope == "project":
            parts.append(f"o.project = {self.param(spec.project or self.caller.default_project)}")
        if spec.where is not None:
            parts.append(self.expr(cls, spec.where))
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
    c = _Compiler(caller)
    c.params = [None] * (first_param - 1)
    sql = c.visible(alias)
    return sql, c.params[first_param - 1:]
