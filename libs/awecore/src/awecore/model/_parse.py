"""Parse a DSL expression typed on the command line, without ``eval``.

Only what the DSL offers is accepted: class names of the model, attribute paths,
comparisons, ``&``/``|``/``~`` (``and``/``or``/``not`` are refused, saying so), and the calls
``like``, ``in_``, ``between``, ``select``, ``user_only``, ``project_only``, ``order_by``.
Literals are Python literals.
"""

from __future__ import annotations

import ast
from typing import Any

from ..errors import InvalidQuery
from ._base import DBObject, registry
from ._query import Path, Query, Selectable

__all__ = ["add_query_root", "parse_query"]

#: Roots of paths besides the classes of the model, by name (``Source``: the source table).
_ROOTS: dict[str, type[Selectable]] = {}


def add_query_root(cls: type[Selectable]) -> None:
    """Let typed queries start from ``cls`` (the source table registers itself)."""
    _ROOTS[cls.__name__] = cls

_CALLS = {"like", "in_", "between", "select", "user_only", "project_only", "order_by"}
_CMP = {ast.Eq: "__eq__", ast.NotEq: "__ne__", ast.Lt: "__lt__", ast.LtE: "__le__",
        ast.Gt: "__gt__", ast.GtE: "__ge__"}


def _literal(node: ast.expr) -> Any:
    try:
        return ast.literal_eval(node)
    except ValueError:
        raise InvalidQuery(f"not a literal value: {ast.unparse(node)}") from None


def _queryable(value: Any) -> bool:
    """A class of the object model, or another root (the source table)."""
    return isinstance(value, type) and (
        issubclass(value, DBObject) or value in _ROOTS.values())


def _eval(node: ast.expr) -> Any:
    if isinstance(node, ast.Name):
        if node.id in _ROOTS:
            return _ROOTS[node.id]
        if node.id not in registry:
            raise InvalidQuery(f"unknown class {node.id!r}; known: "
                               f"{', '.join([*_ROOTS, *registry.names()])}")
        return registry.get(node.id)
    if isinstance(node, ast.Attribute):
        base = _eval(node.value)
        if node.attr.startswith("_"):
            raise InvalidQuery(f"no attribute {node.attr!r}")
        if _queryable(base):
            if node.attr not in base.fields and node.attr not in _CALLS:
                raise InvalidQuery(f"{base.__name__} has no attribute {node.attr!r}; "
                                   f"it has {', '.join(sorted(base.fields))}")
            return getattr(base, node.attr)
        if isinstance(base, Path | Query):
            return getattr(base, node.attr)
        raise InvalidQuery(f"cannot take .{node.attr} of {ast.unparse(node.value)}")
    if isinstance(node, ast.Compare):
        if len(node.ops) != 1:
            raise InvalidQuery("chained comparisons are not supported: use &")
        left = _eval(node.left)
        if not isinstance(left, Path):
            raise InvalidQuery(f"the left side of a comparison must be an attribute path, "
                               f"not {ast.unparse(node.left)}")
        op = _CMP.get(type(node.ops[0]))
        if op is None:
            raise InvalidQuery(f"unsupported comparison in {ast.unparse(node)}")
        return getattr(left, op)(_literal(node.comparators[0]))
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.BitAnd | ast.BitOr):
        left, right = _eval(node.left), _eval(node.right)
        if not (isinstance(left, Query) and isinstance(right, Query)):
            raise InvalidQuery("& and | combine conditions")
        return left & right if isinstance(node.op, ast.BitAnd) else left | right
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.Invert):
        inner = _eval(node.operand)
        if not isinstance(inner, Query):
            raise InvalidQuery("~ negates a condition")
        return ~inner
    if isinstance(node, ast.BoolOp) or (isinstance(node, ast.UnaryOp)
                                        and isinstance(node.op, ast.Not)):
        raise InvalidQuery(f"{ast.unparse(node)}: and, or and not do not combine conditions; "
                           "use & (and), | (or) and ~ (not), each condition in parentheses")
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
        if node.func.attr not in _CALLS or (node.keywords and node.func.attr != "order_by"):
            raise InvalidQuery(f"unsupported call {node.func.attr}()")
        target = _eval(node.func.value)
        args = [_literal(a) for a in node.args]
        kwargs = {k.arg: _literal(k.value) for k in node.keywords if k.arg}
        return getattr(target, node.func.attr)(*args, **kwargs)
    raise InvalidQuery(f"not part of the query language: {ast.unparse(node)}")


def parse_query(text: str) -> Query[Any]:
    """``"ReducedScienceFrame.chip.name == 'ccd53'"`` -> Query; a bare class selects all."""
    try:
        tree = ast.parse(text.strip(), mode="eval")
    except SyntaxError as exc:
        raise InvalidQuery(f"cannot parse {text!r}: {exc.msg}") from None
    result = _eval(tree.body)
    if _queryable(result):
        return result.select()  # type: ignore[no-any-return]
    if not isinstance(result, Query):
        raise InvalidQuery(f"{text!r} is not a query (compare an attribute with a value)")
    return result
