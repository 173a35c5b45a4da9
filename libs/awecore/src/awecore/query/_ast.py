"""The query language on the wire: a closed tree of frozen, strict models.

The client builds it, the catalog validates it against the object model and compiles it to
parameterised SQL. Values are plain JSON scalars; datetimes travel as ISO strings.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from ..records import ObjectOut

__all__ = [
    "MAX_DEPTH",
    "MAX_IN_VALUES",
    "And",
    "Between",
    "Compare",
    "Expr",
    "In",
    "Like",
    "Not",
    "Or",
    "OrderBy",
    "QueryPage",
    "QueryRequest",
    "QuerySpec",
    "Value",
]

Value = str | int | float | bool | None
PathT = Annotated[tuple[Annotated[str, Field(min_length=1, max_length=64)], ...],
                  Field(min_length=1, max_length=8)]
MAX_DEPTH = 32
MAX_IN_VALUES = 10_000


class _Node(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Compare(_Node):
    node: Literal["compare"] = "compare"
    op: Literal["eq", "ne", "lt", "le", "gt", "ge"]
    path: PathT
    value: Value


class Like(_Node):
    """Shell-style pattern: ``*`` any run of characters, ``?`` one character."""

    node: Literal["like"] = "like"
    path: PathT
    pattern: str = Field(max_length=1000)


class In(_Node):
    node: Literal["in"] = "in"
    path: PathT
    values: tuple[Value, ...] = Field(max_length=MAX_IN_VALUES)


class Between(_Node):
    node: Literal["between"] = "between"
    path: PathT
    low: Value
    high: Value


class And(_Node):
    node: Literal["and"] = "and"
    items: tuple[Expr, ...] = Field(min_length=1, max_length=1000)


class Or(_Node):
    node: Literal["or"] = "or"
    items: tuple[Expr, ...] = Field(min_length=1, max_length=1000)


class Not(_Node):
    node: Literal["not"] = "not"
    item: Expr


Expr = Annotated[Compare | Like | In | Between | And | Or | Not, Field(discriminator="node")]

for _model in (And, Or, Not):
    _model.model_rebuild()


def depth(expr: Expr) -> int:
    if isinstance(expr, And | Or):
        return 1 + max(depth(i) for i in expr.items)
    if isinstance(expr, Not):
        return 1 + depth(expr.item)
    return 1


class OrderBy(_Node):
    path: PathT
    descending: bool = False


class QuerySpec(_Node):
    """A whole query: which class (with subclasses), which objects, in which order."""

    cls: str = Field(min_length=1, max_length=100)
    where: Expr | None = None
    order_by: tuple[OrderBy, ...] = Field(default=(), max_length=8)
    scope: Literal["all", "user", "project"] = "all"
    project: str | None = Field(default=None, max_length=100)

    @model_validator(mode="after")
    def _bounded(self) -> QuerySpec:
        if self.where is not None and depth(self.where) > MAX_DEPTH:
            raise ValueError(f"query nests deeper than {MAX_DEPTH} levels")
        return self


class QueryRequest(_Node):
    """A page of a query: from ``offset``, or after a position a previous page gave
    (``after``: its ``next_after``; keyset pagination, as fast on the last page of a survey
    as on the first, and stable while objects are registered). Not both."""

    query: QuerySpec
    offset: int = Field(default=0, ge=0, le=10**9)
    limit: int = Field(default=100, ge=1, le=1000)
    after: str | None = Field(default=None, min_length=1, max_length=4000,
                              pattern=r"^[A-Za-z0-9_-]+$")


class QueryPage(BaseModel):
    """One page of results; ``next_offset`` and ``next_after`` are None on the last page."""

    objects: list[ObjectOut]
    offset: int
    limit: int
    next_offset: int | None
    #: the cursor of the next page (``QueryRequest.after``)
    next_after: str | None = None
