"""ADQL to parameterised PostgreSQL.

The query is parsed by queryparser-python3 (an ANTLR grammar of ADQL 2.x, kept by the
GAVO/AIP people); its parse tree is then written out as SQL by this module, node by node,
so that what reaches PostgreSQL is only what this module wrote:

* every literal (string or number) becomes a ``$n`` parameter: a quote in a string cannot
  end it, a number cannot carry SQL;
* every table is one of ``awe_vo.tables`` (a whitelist), written as its sub-select, which
  applies the privilege rule of ``awecore.visibility`` for the caller to each row; every
  column must be one of that table's columns, and is written quoted and qualified;
* keywords and functions pass only from a whitelist (an unknown function or token is an
  error, not something to try);
* the geometry functions become arithmetic: ``CONTAINS(POINT, CIRCLE)``,
  ``CONTAINS(POINT, POLYGON)`` (convex) and ``DISTANCE(POINT, POINT) < r`` are an exact
  great-circle test, and over a table with a HEALPix index (``awe.sources``) also a set of
  index ranges that cover the region (``healpix BETWEEN lo AND hi OR ...``) so PostgreSQL
  reads only the index ranges of the region; no spherical extension is needed. A region
  column (ObsCore's ``s_region``) is approximated by the circle around it (``s_ra``,
  ``s_dec``, ``s_fov``).
* ``TOP n`` becomes ``LIMIT n``; the caller's MAXREC limits the outermost query to MAXREC+1
  rows, so the result can say whether it overflowed.
"""

from __future__ import annotations

import ast
import math
import operator
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import antlr4
from antlr4.atn.PredictionMode import PredictionMode
from antlr4.error.ErrorListener import ErrorListener
from antlr4.error.Errors import ParseCancellationException, RecognitionException
from antlr4.error.ErrorStrategy import BailErrorStrategy
from antlr4.tree.Tree import ParseTree, TerminalNodeImpl
from queryparser.adql.ADQLLexer import ADQLLexer
from queryparser.adql.ADQLParser import ADQLParser

from awecore.healpix import ranges_for_cone
from awecore.visibility import Viewer, binder

from ..tables import SourceSpec, TableDef, by_name
from ..votable import Field, VOError
from .sky import bounding_cone, polygon_normals

__all__ = ["Compiled", "compile_adql", "warm_up"]

#: the longest ADQL text accepted
MAX_QUERY = 100_000
#: the most tokens a query may have (a POLYGON of 100 vertices has some 400; each literal
#: becomes a bind parameter, and PostgreSQL takes at most 32767)
MAX_TOKENS = 10_000
#: the deepest nesting of parentheses accepted (ANTLR's Python runtime recurses, and
#: spends about a tenth of a second per level on a cold cache)
MAX_DEPTH = 25
#: the longest the parser may spend on one query (seconds): ANTLR's adaptive prediction
#: can take minutes on pathological input
PARSE_SECONDS = 5.0
_NAMES: list[str] = list(ADQLParser.symbolicNames)

#: tokens written as they are (keywords, operators, aggregate and numeric functions)
_PASS = frozenset({
    "SELECT", "FROM", "WHERE", "AND", "OR", "NOT", "AS", "JOIN", "ON", "INNER", "LEFT",
    "RIGHT", "FULL", "OUTER", "NATURAL", "CROSS", "USING", "GROUP", "BY", "ORDER", "ASC",
    "DESC", "HAVING", "DISTINCT", "ALL", "IS", "NULL", "LIKE", "ILIKE", "IN", "BETWEEN",
    "EXISTS", "UNION", "EXCEPT", "INTERSECT", "COUNT", "AVG", "MIN", "MAX", "SUM", "OFFSET",
    "LOWER", "UPPER", "COALESCE", "TRUE", "FALSE", "ESCAPE", "ANY", "SOME",
    "ABS", "ACOS", "ASIN", "ATAN", "ATAN2", "COS", "COT", "SIN", "TAN", "DEGREES", "RADIANS",
    "EXP", "FLOOR", "PI", "POWER", "SQRT",
    "LPAREN", "RPAREN", "ASTERISK", "PLUS", "MINUS", "COMMA", "DOT", "SOLIDUS", "EQ", "LTH",
    "GTH", "LEET", "GRET", "NOT_EQ", "CONCAT", "VERTBAR",
})
#: ADQL names that PostgreSQL spells otherwise
_RENAMED = {"CEILING": "ceil", "LOG": "ln", "LOG10": "log", "RAND": "random",
            "NOT_EQ": "<>"}
_IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_BINOPS: dict[type, Callable[[float, float], float]] = {
    ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul,
    ast.Div: operator.truediv}
_CONST_TOKENS = frozenset({"INT", "REAL", "MINUS", "PLUS", "LPAREN", "RPAREN", "ASTERISK",
                           "SOLIDUS"})


@dataclass
class Compiled:
    sql: str
    params: list[Any]
    #: the output columns known from the tables (by output name), for units and UCDs
    columns: dict[str, Field]
    #: the limit put on the outermost query (MAXREC + 1 or TOP, whichever is lower)
    limit: int


@dataclass
class _Scope:
    parent: _Scope | None
    tables: dict[str, TableDef] = field(default_factory=dict)
    #: aliases of the select list (usable in ORDER BY, GROUP BY, HAVING)
    outputs: set[str] = field(default_factory=set)

    def find_alias(self, alias: str) -> TableDef | None:
        scope: _Scope | None = self
        while scope is not None:
            if alias in scope.tables:
                return scope.tables[alias]
            scope = scope.parent
        return None


def _name(node: ParseTree) -> str:
    return type(node).__name__.removesuffix("Context")


def _token(node: ParseTree) -> str:
    assert isinstance(node, TerminalNodeImpl)
    kind: int = node.symbol.type
    return _NAMES[kind] if kind > 0 else "EOF"


def _children(node: ParseTree) -> list[ParseTree]:
    return [node.getChild(i) for i in range(node.getChildCount())]


#: nodes that stand for themselves even with one child
_STOP = frozenset({"Column_reference", "Point", "Circle", "Polygon", "Distance", "Contains",
                   "Intersects", "Table_name", "Subquery"})


def _descend(node: ParseTree) -> ParseTree:
    """Down a chain of single children to the node that does something."""
    while (not isinstance(node, TerminalNodeImpl) and node.getChildCount() == 1
           and _name(node) not in _STOP
           and not isinstance(node.getChild(0), TerminalNodeImpl)):
        node = node.getChild(0)
    return node


def _find(node: ParseTree, name: str) -> ParseTree | None:
    for c in _children(node):
        if not isinstance(c, TerminalNodeImpl) and _name(c) == name:
            return c
    return None


def _terminals(node: ParseTree) -> list[TerminalNodeImpl]:
    if isinstance(node, TerminalNodeImpl):
        return [node]
    out: list[TerminalNodeImpl] = []
    for c in _children(node):
        out.extend(_terminals(c))
    return out


def _identifier(node: ParseTree) -> str:
    """An identifier's name: regular ones are case-insensitive (lower-cased), delimited
    ones keep their case."""
    text: str = node.getText()
    if text.startswith('"') and text.endswith('"') and len(text) >= 2:
        return text[1:-1].replace('""', '"')
    return text.lower()


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _const(node: ParseTree) -> float | None:
    """The value of a numeric expression made of literals only (a geometry's constants),
    else None."""
    terms = _terminals(node)
    if not terms or any(_token(t) not in _CONST_TOKENS for t in terms):
        return None
    try:
        tree = ast.parse(" ".join(t.getText() for t in terms), mode="eval")
    except SyntaxError:
        return None

    def value(n: ast.AST) -> float:
        if isinstance(n, ast.Expression):
            return value(n.body)
        if isinstance(n, ast.Constant) and isinstance(n.value, int | float):
            return float(n.value)
        if isinstance(n, ast.UnaryOp) and isinstance(n.op, ast.USub | ast.UAdd):
            v = value(n.operand)
            return -v if isinstance(n.op, ast.USub) else v
        if isinstance(n, ast.BinOp) and type(n.op) in _BINOPS:
            return _BINOPS[type(n.op)](value(n.left), value(n.right))
        raise ValueError("not a constant")
    try:
        result = value(tree)
    except (ValueError, ZeroDivisionError):
        return None
    return result if math.isfinite(result) else None


def _compared(rest: list[str], what: str) -> tuple[str, str]:
    """The operator and number a geometry predicate is compared with (either side)."""
    ops = [t for t in rest if t in ("=", "!=", "<>")]
    numbers = [t for t in rest if t in ("0", "1")]
    if len(rest) != 2 or len(ops) != 1 or len(numbers) != 1:
        raise VOError(f"compare {what}(...) with = 1 or = 0")
    return ops[0], numbers[0]


def _haversine(ra1: str, dec1: str, ra2: str, dec2: str) -> str:
    return (f"degrees(2 * asin(least(1.0, sqrt(power(sin(radians(({dec2}) - ({dec1})) / 2), 2)"
            f" + cos(radians({dec1})) * cos(radians({dec2}))"
            f" * power(sin(radians(({ra2}) - ({ra1})) / 2), 2)))))")


@dataclass
class _Point:
    ra: str
    dec: str
    #: constant coordinates, when the point is made of literals
    value: tuple[float, float] | None = None
    #: the HEALPix column of the table whose indexed position this point is
    healpix: str | None = None


class _Compiler:
    def __init__(self, viewer: Viewer, base_url: str) -> None:
        self.params: list[Any] = []
        self.spec = SourceSpec(viewer, binder(self.param), base_url)
        self.scope: _Scope | None = None
        self.top_columns: dict[str, Field] = {}
        self.depth = 0

    def param(self, value: Any) -> str:
        self.params.append(value)
        return f"${len(self.params)}"

    # -- the walk --------------------------------------------------------------------------
    def emit(self, node: ParseTree) -> str:
        if isinstance(node, TerminalNodeImpl):
            return self.terminal(node)
        handler = getattr(self, f"_{_name(node).lower()}", None)
        if handler is not None:
            result: str = handler(node)
            return result
        return self.join(node)

    def join(self, node: ParseTree) -> str:
        return " ".join(s for s in (self.emit(c) for c in _children(node)) if s)

    def terminal(self, node: TerminalNodeImpl) -> str:
        kind = _token(node)
        text: str = node.getText()
        if kind in ("SEMI", "EOF"):
            return ""
        if kind == "CSL":
            return self.param(text[1:-1].replace("''", "'"))
        if kind == "INT":
            return f"{self.param(int(text))}::bigint"
        if kind == "REAL":
            return f"{self.param(float(text))}::float8"
        if kind in _RENAMED:
            return _RENAMED[kind]
        if kind in _PASS:
            return text.upper() if text.isalpha() else text
        if kind in ("ID", "DELIMITED_ID"):
            raise VOError(f"unexpected name {text!r} in the query")
        raise VOError(f"{text!r} is not supported in ADQL queries here")

    # -- queries and scopes ----------------------------------------------------------------
    def _select_query(self, node: ParseTree) -> str:
        scope = _Scope(self.scope)
        self._collect(node, scope)
        outer, self.scope = self.scope, scope
        self.depth += 1
        top: int | None = None
        parts = []
        for c in _children(node):
            if not isinstance(c, TerminalNodeImpl) and _name(c) == "Set_limit":
                top = self._top(c)
                continue
            parts.append(self.emit(c))
        if self.depth == 1 and outer is None:
            self.top_columns = self._output_columns(node, scope)
        self.depth -= 1
        self.scope = outer
        sql = " ".join(p for p in parts if p)
        if top is not None:
            sql += f" LIMIT {top}"
        return sql

    @staticmethod
    def _top(node: ParseTree) -> int:
        digits = node.getText()[3:].strip()
        if not digits.isdigit():
            raise VOError("TOP takes a whole number")
        if len(digits) > 18:
            raise VOError("TOP is larger than any table here; leave it out")
        return int(digits)

    def _collect(self, select: ParseTree, scope: _Scope) -> None:
        """The tables of one SELECT (its FROM clause, not its subqueries) and its output
        aliases."""
        def walk(n: ParseTree) -> None:
            if isinstance(n, TerminalNodeImpl):
                return
            name = _name(n)
            if name in ("Subquery", "Query_expression", "Select_query") and n is not select:
                return
            if name == "Table_reference":
                table = _find(n, "Table_name")
                if table is not None:
                    definition = self._table(table)
                    corr = _find(n, "Correlation_specification")
                    alias = (_identifier(_descend(_find(corr, "Correlation_name") or corr))
                             if corr is not None else definition.name.lower())
                    if alias in scope.tables:
                        raise VOError(f"the name {alias!r} is used for two tables; give "
                                      "each its own alias")
                    scope.tables[alias] = definition
                if _find(n, "Derived_table") is not None:
                    raise VOError("subqueries in FROM are not supported; use a JOIN or a "
                                  "WHERE ... IN (SELECT ...)")
            if name == "As_clause":
                column = _find(n, "Column_name")
                if column is not None:
                    scope.outputs.add(_identifier(_descend(column)))
            for c in _children(n):
                walk(c)
        walk(select)
        if not scope.tables and _find(select, "Table_expression") is not None:
            raise VOError("the query names no table")

    def _table(self, node: ParseTree) -> TableDef:
        text = ".".join(_identifier(_descend(c)) if not isinstance(c, TerminalNodeImpl)
                        else "" for c in _children(node)).replace("..", ".").strip(".")
        definition = by_name(text)
        if definition is None:
            raise VOError(f"unknown table {text!r}; see /tap/tables or TAP_SCHEMA.tables")
        return definition

    def _table_reference(self, node: ParseTree) -> str:
        table = _find(node, "Table_name")
        if table is None:
            return self.join(node)
        definition = self._table(table)
        corr = _find(node, "Correlation_specification")
        alias = (_identifier(_descend(_find(corr, "Correlation_name") or corr))
                 if corr is not None else definition.name.lower())
        return f"({definition.sql(self.spec)}) AS {_quote(alias)}"

    def _output_columns(self, select: ParseTree, scope: _Scope) -> dict[str, Field]:
        """What the select list's plain column references are (units, UCDs)."""
        out: dict[str, Field] = {}
        select_list = _find(select, "Select_list")
        if select_list is None:
            return out
        if select_list.getText() == "*":
            for t in scope.tables.values():
                for f in t.fields:
                    out.setdefault(f.name, f)
            return out
        for sub in _children(select_list):
            if isinstance(sub, TerminalNodeImpl):
                continue
            qualifier = _find(sub, "Qualifier")
            if qualifier is not None:  # alias.*
                starred = scope.find_alias(_identifier(_descend(qualifier)))
                for one in starred.fields if starred is not None else ():
                    out.setdefault(one.name, one)
                continue
            derived = _descend(sub)
            if _name(derived) != "Derived_column":
                derived = _find(sub, "Derived_column") or derived
            value = _find(derived, "Value_expression")
            ref = _descend(value) if value is not None else None
            if ref is None or _name(ref) != "Column_reference":
                continue
            table, column = self._resolve(ref)
            known = table.field(column) if table is not None else None
            if known is None:
                continue
            as_clause = _find(derived, "As_clause")
            name = (_identifier(_descend(_find(as_clause, "Column_name") or as_clause))
                    if as_clause is not None else column)
            out[name] = Field(name, known.datatype, known.description, unit=known.unit,
                              ucd=known.ucd, utype=known.utype, xtype=known.xtype,
                              arraysize=known.arraysize)
        return out

    # -- columns ---------------------------------------------------------------------------
    def _resolve(self, node: ParseTree) -> tuple[TableDef | None, str]:
        """A column reference's table and column name (table None: a select alias)."""
        assert self.scope is not None
        column = _identifier(_descend(_children(node)[-1]))
        qualifier = _find(node, "Qualifier")
        if qualifier is not None:
            parts = [_identifier(_descend(t)) for t in _terminals(qualifier)
                     if _token(t) in ("ID", "DELIMITED_ID")]
            alias = parts[-1]
            table = self.scope.find_alias(alias)
            if table is None and len(parts) == 2:
                named = by_name(".".join(parts))
                if named is not None and self.scope.find_alias(named.name.lower()) is named:
                    table = named
            if table is None:
                raise VOError(f"{'.'.join(parts)!r} is not a table of this query")
            if table.field(column) is None:
                raise VOError(f"{table.qualified} has no column {column!r}")
            return table, column
        scope: _Scope | None = self.scope
        while scope is not None:
            holders = [a for a, t in scope.tables.items() if t.field(column) is not None]
            if len(holders) > 1:
                raise VOError(f"column {column!r} is ambiguous: it is in "
                              f"{', '.join(sorted(holders))}; qualify it")
            if holders:
                return scope.tables[holders[0]], column
            if column in scope.outputs:
                return None, column
            scope = scope.parent
        raise VOError(f"unknown column {column!r}")

    def _column_sql(self, node: ParseTree) -> str:
        table, column = self._resolve(node)
        if table is None:
            return _quote(column)
        return f"{_quote(self._alias_of(table, node))}.{_quote(column)}"

    def _alias_of(self, table: TableDef, node: ParseTree) -> str:
        qualifier = _find(node, "Qualifier")
        assert self.scope is not None
        if qualifier is not None:
            parts = [_identifier(_descend(t)) for t in _terminals(qualifier)
                     if _token(t) in ("ID", "DELIMITED_ID")]
            if self.scope.find_alias(parts[-1]) is not None:
                return parts[-1]
            return table.name.lower()
        scope: _Scope | None = self.scope
        while scope is not None:
            for alias, t in scope.tables.items():
                if t is table:
                    return alias
            scope = scope.parent
        return table.name.lower()  # pragma: no cover - resolved tables are in scope

    def _column_reference(self, node: ParseTree) -> str:
        return self._column_sql(node)

    def _select_sublist(self, node: ParseTree) -> str:
        qualifier = _find(node, "Qualifier")
        if qualifier is not None and node.getText().endswith("*"):
            assert self.scope is not None
            alias = _identifier(_descend(qualifier))
            if self.scope.find_alias(alias) is None:
                raise VOError(f"{alias!r} is not a table of this query")
            return f"{_quote(alias)}.*"
        return self.join(node)

    def _as_clause(self, node: ParseTree) -> str:
        column = _find(node, "Column_name")
        assert column is not None
        return f"AS {_quote(_identifier(_descend(column)))}"

    def _column_name(self, node: ParseTree) -> str:
        return _quote(_identifier(_descend(node)))

    def _sort_key(self, node: ParseTree) -> str:
        text = node.getText()
        if text.isdigit():  # ORDER BY 2: a position, not a value
            return str(int(text))
        return self.join(node)

    def _grouping_column_reference(self, node: ParseTree) -> str:
        return self._sort_key(node)

    def _user_defined_function(self, node: ParseTree) -> str:
        raise VOError(f"unknown function in {node.getText()[:60]!r}")

    def _math_function(self, node: ParseTree) -> str:
        parts = _children(node)
        name = parts[0].getText().upper()
        args = [self.emit(c) for c in parts if not isinstance(c, TerminalNodeImpl)]
        if name in ("ROUND", "TRUNCATE"):
            fn = "round" if name == "ROUND" else "trunc"
            if len(args) == 2:
                return f"{fn}(({args[0]})::numeric, ({args[1]})::int)::float8"
            return f"{fn}({args[0]})"
        if name == "MOD" and len(args) == 2:
            a, b = args
            return f"(({a}) - ({b}) * trunc(({a}) / ({b})))"
        if name == "RAND":
            return "random()"
        return self.join(node)

    # -- geometry --------------------------------------------------------------------------
    def _point(self, node: ParseTree) -> _Point:
        node = _descend(node)
        if _name(node) != "Point":
            raise VOError("a POINT is needed here")
        coords = _find(node, "Coordinates")
        assert coords is not None
        c1, c2 = _find(coords, "Coordinate1"), _find(coords, "Coordinate2")
        assert c1 is not None and c2 is not None
        v1, v2 = _const(c1), _const(c2)
        if v1 is not None and v2 is not None:
            if not -90 <= v2 <= 90:
                raise VOError(f"declination {v2} is outside [-90, 90]")
            return _Point(self.param(v1) + "::float8", self.param(v2) + "::float8", (v1, v2))
        healpix = None
        r1, r2 = _descend(c1), _descend(c2)
        if _name(r1) == "Column_reference" and _name(r2) == "Column_reference":
            t1, col1 = self._resolve(r1)
            t2, col2 = self._resolve(r2)
            if (t1 is not None and t1 is t2 and t1.healpix is not None
                    and (col1, col2) == t1.healpix[:2]
                    and self._alias_of(t1, r1) == self._alias_of(t2, r2)):
                healpix = f"{_quote(self._alias_of(t1, r1))}.{_quote(t1.healpix[2])}"
        return _Point(f"({self.emit(c1)})", f"({self.emit(c2)})", None, healpix)

    def _region_column(self, node: ParseTree) -> tuple[str, str, str] | None:
        """ObsCore's s_region as (ra, dec, radius) SQL: the circle around the image."""
        ref = _descend(node)
        if _name(ref) != "Column_reference":
            return None
        table, column = self._resolve(ref)
        if table is None or table.region is None or column != table.region[3]:
            return None
        alias = _quote(self._alias_of(table, ref))
        ra, dec, fov, _ = table.region
        return (f"{alias}.{_quote(ra)}", f"{alias}.{_quote(dec)}",
                f"({alias}.{_quote(fov)} / 2)")

    @staticmethod
    def _prefilter(healpix: str | None, ra: float, dec: float, radius: float) -> str:
        if healpix is None or radius > 30:
            return ""
        los, his = ranges_for_cone(ra, dec, radius)
        if not los:
            return "FALSE AND "
        # our own integers, computed here: written as literals so the planner sees them
        return "(" + " OR ".join(f"{healpix} BETWEEN {lo} AND {hi}"
                                 for lo, hi in zip(los, his, strict=True)) + ") AND "

    def _circle_test(self, point: _Point, circle: ParseTree) -> str:
        center = _find(circle, "Circle_center")
        radius = _find(circle, "Radius")
        assert center is not None and radius is not None
        centre = self._point_of_center(center)
        r = _const(radius)
        if r is not None and (r < 0 or r > 180):
            raise VOError(f"a CIRCLE's radius must be between 0 and 180 degrees, not {r}")
        r_sql = (self.param(r) + "::float8") if r is not None else f"({self.emit(radius)})"
        exact = f"{_haversine(point.ra, point.dec, centre.ra, centre.dec)} <= {r_sql}"
        pre = ""
        if r is not None and centre.value is not None:
            pre = self._prefilter(point.healpix, *centre.value, r)
        return f"({pre}{exact})"

    def _point_of_center(self, center: ParseTree) -> _Point:
        coords = _find(center, "Coordinates")
        if coords is None:
            return self._point(center)
        c1, c2 = _find(coords, "Coordinate1"), _find(coords, "Coordinate2")
        assert c1 is not None and c2 is not None
        v1, v2 = _const(c1), _const(c2)
        if v1 is not None and v2 is not None:
            if not -90 <= v2 <= 90:
                raise VOError(f"declination {v2} is outside [-90, 90]")
            return _Point(self.param(v1) + "::float8", self.param(v2) + "::float8", (v1, v2))
        return _Point(f"({self.emit(c1)})", f"({self.emit(c2)})")

    def _polygon_test(self, point: _Point, polygon: ParseTree) -> str:
        vertices = self._vertices(polygon)
        for _, v2 in vertices:
            if not -90 <= v2 <= 90:
                raise VOError(f"declination {v2} is outside [-90, 90]")
        try:
            normals = polygon_normals(vertices)
            ra, dec, radius = bounding_cone(vertices)
        except ValueError as exc:
            raise VOError(f"POLYGON: {exc}") from None
        x = f"(cos(radians({point.dec})) * cos(radians({point.ra})))"
        y = f"(cos(radians({point.dec})) * sin(radians({point.ra})))"
        z = f"sin(radians({point.dec}))"
        edges = " AND ".join(
            f"({self.param(nx)}::float8 * {x} + {self.param(ny)}::float8 * {y} + "
            f"{self.param(nz)}::float8 * {z} >= -1e-12)" for nx, ny, nz in normals)
        return f"({self._prefilter(point.healpix, ra, dec, radius)}{edges})"

    def _contains_sql(self, node: ParseTree) -> str:
        args = [c for c in _children(node) if not isinstance(c, TerminalNodeImpl)]
        if len(args) != 2:
            raise VOError("CONTAINS takes two geometries")
        first, second = _descend(args[0]), _descend(args[1])
        region = self._region_column(second)
        if region is not None:
            point = self._point(first)
            ra, dec, radius = region
            return f"({_haversine(point.ra, point.dec, ra, dec)} <= {radius})"
        if _name(first) != "Point":
            raise VOError("CONTAINS needs a POINT as its first argument")
        point = self._point(first)
        kind = _name(second)
        if kind == "Circle":
            return self._circle_test(point, second)
        if kind == "Polygon":
            return self._polygon_test(point, second)
        raise VOError("CONTAINS supports CIRCLE and POLYGON (BOX is deprecated in ADQL 2.1)")

    def _contains_predicate(self, node: ParseTree) -> str:
        return self._geometry_predicate(node, "Contains", self._contains_sql)

    def _intersects_predicate(self, node: ParseTree) -> str:
        return self._geometry_predicate(node, "Intersects", self._intersects_sql)

    def _geometry_predicate(self, node: ParseTree, rule: str,
                            sql: Callable[[ParseTree], str]) -> str:
        """``CONTAINS(...) = 1`` (or ``INTERSECTS``): the test, negated when compared with 0
        (or with ``!=`` 1), as the comparison may stand on either side."""
        call = _find(node, rule)
        if call is None:
            return self.join(node)
        test = sql(call)
        rest = [c.getText() for c in _children(node) if isinstance(c, TerminalNodeImpl)]
        if not rest:
            return test
        op, number = _compared(rest, rule.upper())
        truth = (op == "=") == (number == "1")
        return test if truth else f"(NOT {test})"

    def _intersects_sql(self, node: ParseTree) -> str:
        args = [_descend(c) for c in _children(node) if not isinstance(c, TerminalNodeImpl)]
        if len(args) != 2:
            raise VOError("INTERSECTS takes two geometries")
        for region_arg, other in ((args[1], args[0]), (args[0], args[1])):
            region = self._region_column(region_arg)
            if region is None:
                continue
            ra, dec, radius = region
            if _name(other) == "Circle":
                center = _find(other, "Circle_center")
                rad = _find(other, "Radius")
                assert center is not None and rad is not None
                c = self._point_of_center(center)
                r = _const(rad)
                r_sql = (self.param(r) + "::float8") if r is not None else \
                    f"({self.emit(rad)})"
                return f"({_haversine(c.ra, c.dec, ra, dec)} <= {radius} + {r_sql})"
            if _name(other) == "Point":
                p = self._point(other)
                return f"({_haversine(p.ra, p.dec, ra, dec)} <= {radius})"
            if _name(other) == "Polygon":
                vertices = self._vertices(other)
                try:
                    cra, cdec, cr = bounding_cone(vertices)
                except ValueError as exc:
                    raise VOError(f"POLYGON: {exc}") from None
                centre = _haversine(self.param(cra) + "::float8",
                                    self.param(cdec) + "::float8", ra, dec)
                return f"({centre} <= {radius} + {self.param(cr)}::float8)"
        raise VOError("INTERSECTS is supported with a region column (s_region) only; "
                      "use CONTAINS(POINT(...), CIRCLE(...)) for positions")

    def _vertices(self, polygon: ParseTree) -> list[tuple[float, float]]:
        out = []
        for coords in _children(polygon):
            if isinstance(coords, TerminalNodeImpl) or _name(coords) != "Coordinates":
                continue
            c1, c2 = _find(coords, "Coordinate1"), _find(coords, "Coordinate2")
            v1 = _const(c1) if c1 is not None else None
            v2 = _const(c2) if c2 is not None else None
            if v1 is None or v2 is None:
                raise VOError("a POLYGON's vertices must be numbers")
            out.append((v1, v2))
        return out

    def _contains(self, node: ParseTree) -> str:  # CONTAINS as a value (not compared)
        return f"(CASE WHEN {self._contains_sql(node)} THEN 1 ELSE 0 END)"

    def _intersects(self, node: ParseTree) -> str:
        return f"(CASE WHEN {self._intersects_sql(node)} THEN 1 ELSE 0 END)"

    def _distance(self, node: ParseTree) -> str:
        points = [c for c in _children(node) if not isinstance(c, TerminalNodeImpl)]
        if len(points) != 2:
            raise VOError("DISTANCE takes two POINTs")
        a, b = self._point(points[0]), self._point(points[1])
        return _haversine(a.ra, a.dec, b.ra, b.dec)

    def _comparison_predicate(self, node: ParseTree) -> str:
        """``DISTANCE(POINT(ra, dec), POINT(constants)) < r`` also gets the HEALPix
        prefilter of the cone (as CONTAINS with a CIRCLE would)."""
        parts = _children(node)
        if len(parts) == 3:
            left, op, right = _descend(parts[0]), parts[1].getText(), _descend(parts[2])
            flipped = {"<": ">", "<=": ">=", ">": "<", ">=": "<="}
            if _name(right) == "Distance" and op in flipped:
                left, right, op = right, left, flipped[op]
            if _name(left) == "Distance" and op in ("<", "<="):
                r = _const(right)
                points = [c for c in _children(left) if not isinstance(c, TerminalNodeImpl)]
                if r is not None and len(points) == 2:
                    a, b = self._point(points[0]), self._point(points[1])
                    if b.healpix is not None and a.value is not None:
                        a, b = b, a
                    pre = ""
                    if a.healpix is not None and b.value is not None:
                        pre = self._prefilter(a.healpix, *b.value, r)
                    exact = (f"{_haversine(a.ra, a.dec, b.ra, b.dec)} {op} "
                             f"{self.param(r)}::float8")
                    return f"({pre}{exact})"
        return self.join(node)

    def _non_predicate_geometry_function(self, node: ParseTree) -> str:
        inner = _descend(node)
        if _name(inner) == "Distance":
            return self._distance(inner)
        raise VOError(f"{node.getText()[:40]!r}: only DISTANCE, CONTAINS and INTERSECTS are "
                      "supported as geometry functions")

    def _geometry_value_expression(self, node: ParseTree) -> str:
        raise VOError("geometries (POINT, CIRCLE, POLYGON) are supported inside CONTAINS, "
                      "INTERSECTS and DISTANCE only")

    def _point_value(self, node: ParseTree) -> str:
        return self._geometry_value_expression(node)

    def _with_query(self, node: ParseTree) -> str:
        raise VOError("WITH (common table expressions) is not supported")


class _Errors(ErrorListener):  # type: ignore[misc]
    """Syntax errors as (line, column, the offending text): queryparser's own listener
    fails on a lexer's error (a character no token starts with), which has no token."""

    def __init__(self) -> None:
        super().__init__()
        self.syntax_errors: list[tuple[int, int, str | None]] = []

    def syntaxError(self, recognizer: Any, offendingSymbol: Any, line: int,
                    column: int, msg: str, e: Any) -> None:
        text = getattr(offendingSymbol, "text", None)
        if text is None and hasattr(recognizer, "inputStream"):
            at = recognizer.inputStream.index
            text = recognizer.inputStream.strdata[at:at + 1] or None
        self.syntax_errors.append((line, column, text))


class _TooComplex(Exception):
    """The parser ran out of its time budget (not a RecognitionException: ANTLR's rules
    must not catch it and recover)."""


class _BoundedStream(antlr4.CommonTokenStream):  # type: ignore[misc]
    """A token stream that stops the parse once ``seconds`` have passed: every lookahead
    goes through it, so even a prediction that never consumes a token is bounded."""

    def __init__(self, lexer: ADQLLexer, seconds: float) -> None:
        super().__init__(lexer)
        self.deadline = time.monotonic() + seconds
        self.calls = 0

    def _check(self) -> None:
        self.calls += 1
        if self.calls & 1023 == 0 and time.monotonic() > self.deadline:
            raise _TooComplex

    def LA(self, i: int) -> int:
        self._check()
        result: int = super().LA(i)
        return result

    def LT(self, k: int) -> Any:
        self._check()
        return super().LT(k)


def _tokens(text: str) -> list[Any]:
    """The query's tokens, refused when there are too many or the parentheses nest too
    deep: both are cheap to see before parsing, and expensive to parse."""
    lexer = ADQLLexer(antlr4.InputStream(text))
    lexer.removeErrorListeners()
    tokens: list[Any] = []
    depth = 0
    for token in lexer.getAllTokens():
        tokens.append(token)
        if len(tokens) > MAX_TOKENS:
            raise VOError(f"the query has more than {MAX_TOKENS} tokens; split it")
        kind = _NAMES[token.type] if 0 < token.type < len(_NAMES) else ""
        depth += 1 if kind == "LPAREN" else -1 if kind == "RPAREN" else 0
        if depth > MAX_DEPTH:
            raise VOError(f"parentheses nest deeper than {MAX_DEPTH} levels")
    return tokens


def _parse(adql: str) -> ParseTree:
    """``_parse_unbounded`` within the bounds (tokens, depth, time); a query beyond them
    is a caller's error (400), never a parser stuck for minutes or a RecursionError."""
    text = adql.strip().rstrip(";") + ";"
    _tokens(text)
    try:
        return _parse_unbounded(text)
    except _TooComplex:
        raise VOError(f"the query is too complex to parse within {PARSE_SECONDS:g} s; "
                      "simplify it") from None
    except RecursionError:
        raise VOError("the query nests too deeply; simplify it") from None


def _parse_unbounded(text: str) -> ParseTree:
    """The parse tree of a query. ANTLR's full LL prediction costs about half a second per
    query in Python; SLL prediction parses the same queries in about 10 ms and fails only
    where the grammar needs full context, so it goes first (bailing out at the first
    error) and LL parses again only what SLL could not (and reports syntax errors)."""
    lexer = ADQLLexer(antlr4.InputStream(text))
    lexer.removeErrorListeners()
    errors = _Errors()
    lexer.addErrorListener(errors)
    stream = _BoundedStream(lexer, PARSE_SECONDS)
    parser = ADQLParser(stream)
    parser.removeErrorListeners()
    parser._interp.predictionMode = PredictionMode.SLL
    parser._errHandler = BailErrorStrategy()
    try:
        tree = parser.query()
    except (ParseCancellationException, RecognitionException):
        stream.seek(0)
        parser = ADQLParser(stream)
        parser.removeErrorListeners()
        parser.addErrorListener(errors)
        parser._interp.predictionMode = PredictionMode.LL
        tree = parser.query()
    if errors.syntax_errors:
        line, column, near = [*errors.syntax_errors[0], None, None, None][:3]
        where = column + 1 if isinstance(column, int) else column
        raise VOError(f"ADQL syntax error at line {line}, column {where}"
                      + (f", near {near!r}" if near else ""))
    if stream.LA(1) != antlr4.Token.EOF:
        raise VOError("send one query (nothing may follow it after a ';')")
    return tree


def warm_up() -> None:
    """Parse a few typical queries once: ANTLR fills its prediction caches (shared by all
    parsers of the process) on first use, which takes seconds."""
    for query in (
        "SELECT TOP 1 ra, dec FROM awe.sources WHERE CONTAINS(POINT('ICRS', ra, dec), "
        "CIRCLE('ICRS', 1, 2, 0.1)) = 1 AND mag < 20 ORDER BY mag",
        "SELECT COUNT(*) AS n FROM ivoa.obscore WHERE INTERSECTS(CIRCLE('ICRS', 1, 2, 0.1), "
        "s_region) = 1 GROUP BY obs_id",
        "SELECT s.ra FROM awe.sources AS s JOIN ivoa.obscore AS o ON o.obs_id = s.sourcelist "
        "WHERE DISTANCE(POINT('ICRS', s.ra, s.dec), POINT('ICRS', 1, 2)) < 0.1",
    ):
        _parse(query)


def compile_adql(adql: str, viewer: Viewer, base_url: str, maxrec: int) -> Compiled:
    """ADQL for ``viewer`` as parameterised SQL whose outermost query returns at most
    ``maxrec + 1`` rows (one more than asked tells of an overflow).

    Whatever the text, the answer is the SQL or a ``VOError`` (400): a parse tree of a
    shape the compiler does not expect (an ADQL construct it does not know) is refused as
    unsupported, not left to become a server error."""
    if not adql.strip():
        raise VOError("the QUERY is empty")
    if len(adql) > MAX_QUERY:
        raise VOError(f"the QUERY is longer than {MAX_QUERY} characters")
    tree = _parse(adql)
    try:
        return _compile(tree, viewer, base_url, maxrec)
    except RecursionError:
        raise VOError("the query nests too deeply; simplify it") from None
    except (AssertionError, AttributeError, IndexError, KeyError, TypeError,
            ValueError) as exc:
        raise VOError(f"this form of ADQL is not supported here ({type(exc).__name__}); "
                      "see /tap/capabilities for the language features") from None


def _compile(tree: ParseTree, viewer: Viewer, base_url: str, maxrec: int) -> Compiled:
    compiler = _Compiler(viewer, base_url)
    body = _find(tree, "Query_expression")
    if body is None:
        raise VOError("only SELECT queries are supported")
    selects = [n for n in _walk(body) if _name(n) == "Select_query"]
    single = _descend(body)
    limit = maxrec + 1
    if _name(single) == "Select_query":
        top = None
        set_limit = _find(single, "Set_limit")
        if set_limit is not None:
            top = compiler._top(set_limit)
        sql = compiler.emit(single)
        if top is not None:
            sql = sql.removesuffix(f" LIMIT {top}")
            limit = min(top, limit)
        sql += f" LIMIT {limit}"
    else:
        if not selects:
            raise VOError("only SELECT queries are supported")
        sql = f"SELECT * FROM ({compiler.emit(body)}) AS adql LIMIT {limit}"
    return Compiled(sql, compiler.params, compiler.top_columns, limit)


def _walk(node: ParseTree) -> list[ParseTree]:
    if isinstance(node, TerminalNodeImpl):
        return []
    out = [node]
    for c in _children(node):
        out.extend(_walk(c))
    return out
