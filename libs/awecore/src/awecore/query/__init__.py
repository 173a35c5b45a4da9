"""Query DSL: Python expressions on the client, a JSON AST on the wire."""

from ._ast import (
    MAX_DEPTH,
    MAX_IN_VALUES,
    And,
    Between,
    Compare,
    Expr,
    In,
    Like,
    Not,
    Or,
    OrderBy,
    QueryPage,
    QueryRequest,
    QuerySpec,
    Value,
)
from ._dsl import Path, Query, Selectable, resolve_path
from ._parse import parse_query

__all__ = [
    "MAX_DEPTH", "MAX_IN_VALUES", "And", "Between", "Compare", "Expr", "In", "Like", "Not",
    "Or", "OrderBy", "Path", "Query", "QueryPage", "QueryRequest", "QuerySpec", "Selectable",
    "Value", "parse_query", "resolve_path",
]
