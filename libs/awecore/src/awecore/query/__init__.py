"""The query language on the wire: a JSON AST that the client builds and the catalog compiles.

The Python side of the language (``Class.attr == value`` builds a query) belongs to the
object model: ``awecore.model.Query``.
"""

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

__all__ = [
    "MAX_DEPTH", "MAX_IN_VALUES", "And", "Between", "Compare", "Expr", "In", "Like", "Not",
    "Or", "OrderBy", "QueryPage", "QueryRequest", "QuerySpec", "Value",
]
