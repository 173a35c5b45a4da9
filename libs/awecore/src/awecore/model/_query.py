"""The Python side of the query language: ``Class.attr == value`` builds a Query.

A Query is lazy. Iterating it pages through the catalog; ``len(q)`` counts on the server;
``q[i]`` fetches one. Nothing is sent until a result is asked for. A query has no truth
value: ``and``, ``or``, ``not`` and ``if q:`` raise TypeError (Python's ``and`` would keep
only one of two conditions); conditions combine with ``&``, ``|`` and ``~``.

A reference compared with a string that is not an oid compares the referenced object's
name, as Astro-WISE users wrote it: ``ReducedScienceFrame.filter == '841'`` is
``ReducedScienceFrame.filter.name == '841'``. A string that parses as a UUID is an oid.

The root of a path is any class with declared fields and a ``select()``: the classes of the
object model, and ``awecore.Source`` (rows of the source table), whose ``select()`` returns
a Query subclass that runs against the source table with the same AST.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any, ClassVar, Generic, Protocol, TypeVar, overload

from ..errors import InvalidQuery
from ..ids import parse_oid
from ..query import And, Between, Compare, Expr, In, Like, Not, Or, OrderBy, QuerySpec, Value
from ..records import ObjectOut
from ._fields import Field, Ref, Scalar, Struct
from ._session import session
from ._table import to_table

if TYPE_CHECKING:
    from astropy.table import Table

__all__ = ["Path", "Query", "Selectable", "resolve_path"]

T = TypeVar("T")

#: what Python's ``and``/``or``/``not``/``if`` meet when given a query or a path
NO_TRUTH_VALUE = (
    "a query has no truth value: combine conditions with & (and), | (or) and ~ (not), "
    "each in parentheses, e.g. (ReducedScienceFrame.chip.name == 'ccd53') & "
    "(ReducedScienceFrame.filter == '841'); len(q) counts the results")


class Selectable(Protocol):
    """What a query starts from: a class with named fields whose ``select()`` makes its Query."""

    fields: ClassVar[dict[str, Field]]

    @classmethod
    def select(cls) -> Query[Any]: ...


def resolve_path(root: type[Selectable], segments: Sequence[str]) -> list[Field]:
    """The fields a path walks through; raises InvalidQuery naming the bad segment."""
    fields: list[Field] = []
    cls: type[Selectable] | None = root
    struct = None
    where = root.__name__
    for seg in segments:
        field: Field | None
        if struct is not None:
            field = struct.fields.get(seg)
            if field is None:
                raise InvalidQuery(
                    f"{where} has no field {seg!r}; it has {sorted(struct.fields)}")
            struct = None
        elif cls is not None:
            field = cls.fields.get(seg)
            if field is None:
                raise InvalidQuery(
                    f"{cls.__name__} has no attribute {seg!r}; it has {sorted(cls.fields)}")
        else:
            raise InvalidQuery(f"{where} is a value; it has no attribute {seg!r}")
        fields.append(field)
        where = f"{where}.{seg}"
        if isinstance(field, Ref):
            cls = field.target
        elif isinstance(field, Struct):
            cls, struct = None, field.struct
        else:
            cls = None
    return fields


def _value(value: Any) -> Value:
    if isinstance(value, dt.datetime):
        return value.isoformat()
    if isinstance(value, dt.date):
        return value.isoformat()
    if value is None or isinstance(value, str | int | float | bool):
        return value
    if isinstance(value, Path | Query):
        raise InvalidQuery(f"compare with a value, not with {value!r}")
    if hasattr(value, "record") and hasattr(value, "to_record"):  # a model object
        if not isinstance(value.record, ObjectOut):
            raise InvalidQuery(f"{value!r} is not stored; save it before querying by it")
        return value.record.oid
    raise InvalidQuery(f"cannot compare with a {type(value).__name__}: {value!r}")


def _is_name(value: object) -> bool:
    """Whether a string compared with a reference is the referenced object's name: it is an
    oid if it parses as a UUID (as the catalog reads oids), a name otherwise."""
    if not isinstance(value, str):
        return False
    try:
        parse_oid(value)
    except ValueError:
        return True
    return False


class Path:
    """An attribute path from a root class, e.g. ``ReducedScienceFrame.chip.name``."""

    __hash__ = None  # type: ignore[assignment]

    def __init__(self, root: type[Selectable], segments: tuple[str, ...]) -> None:
        self.root = root
        self.segments = segments
        self.fields = resolve_path(root, segments)

    def __getattr__(self, name: str) -> Path:
        if name.startswith("__"):
            raise AttributeError(name)
        return Path(self.root, (*self.segments, name))

    def __repr__(self) -> str:
        return ".".join((self.root.__name__, *self.segments))

    def __bool__(self) -> bool:
        raise TypeError(f"{self!r} is a path, not a condition: compare it (==, !=, <, "
                        ".like(), .in_(), ...), and combine conditions with &, | and ~")

    def _query(self, where: Expr) -> Query[Any]:
        return self.root.select()._copy(where=where)

    # -- a reference compared with a name ----------------------------------------------
    def _is_ref(self) -> bool:
        return isinstance(self.fields[-1], Ref)

    def _named(self) -> Path:
        """The path to the name of the object this reference points at."""
        ref = self.fields[-1]
        assert isinstance(ref, Ref)
        name = ref.target.fields.get("name")
        if not (isinstance(name, Scalar) and name.type is str):
            raise InvalidQuery(
                f"{self!r} refers to a {ref.target_name}, which has no name: compare it with "
                f"a {ref.target_name} or its oid, or with one of its attributes "
                f"({self!r}.<attribute>)")
        return Path(self.root, (*self.segments, "name"))

    def _cmp(self, op: str, other: Any) -> Query[Any]:
        if _is_name(other) and self._is_ref():
            named = self._named()
            if op == "ne":  # as for an oid: it does not refer to an object of that name
                return ~named._cmp("eq", other)
            return named._cmp(op, other)
        return self._query(Compare(op=op, path=self.segments, value=_value(other)))

    def __eq__(self, other: object) -> Query[Any]:  # type: ignore[override]
        return self._cmp("eq", other)

    def __ne__(self, other: object) -> Query[Any]:  # type: ignore[override]
        return self._cmp("ne", other)

    def __lt__(self, other: Any) -> Query[Any]:
        return self._cmp("lt", other)

    def __le__(self, other: Any) -> Query[Any]:
        return self._cmp("le", other)

    def __gt__(self, other: Any) -> Query[Any]:
        return self._cmp("gt", other)

    def __ge__(self, other: Any) -> Query[Any]:
        return self._cmp("ge", other)

    def like(self, pattern: str) -> Query[Any]:
        """Shell-style match: ``Frame.filename.like('KIDS_*')``; on a reference, its name's."""
        if self._is_ref():
            return self._named().like(pattern)
        return self._query(Like(path=self.segments, pattern=pattern))

    def in_(self, values: Sequence[Any]) -> Query[Any]:
        """One of ``values``; on a reference, objects or oids, and names of objects."""
        values = list(values)
        names = [v for v in values if _is_name(v)] if self._is_ref() else []
        if not names:
            return self._query(In(path=self.segments, values=tuple(_value(v) for v in values)))
        by_name = self._named().in_(names)
        rest = [v for v in values if not _is_name(v)]
        return by_name if not rest else self.in_(rest) | by_name

    def between(self, low: Any, high: Any) -> Query[Any]:
        """Inclusive range."""
        if (_is_name(low) or _is_name(high)) and self._is_ref():
            return self._named().between(low, high)
        return self._query(Between(path=self.segments, low=_value(low), high=_value(high)))


def _and(a: Expr | None, b: Expr | None) -> Expr | None:
    if a is None or b is None:
        return a or b
    items = (*(a.items if isinstance(a, And) else (a,)), *(b.items if isinstance(b, And) else (b,)))
    return And(items=items)


class Query(Generic[T]):
    """A lazy, composable query over one class and its subclasses.

    Subclasses for other roots (``awecore.sources.SourceQuery``) override the execution
    hooks ``_iterate``, ``_fetch`` and ``_count``; composition is shared.
    """

    def __init__(
        self,
        root: type[T],
        where: Expr | None = None,
        order_by: tuple[OrderBy, ...] = (),
        scope: str = "all",
        project: str | None = None,
        limit: int | None = None,
        session: Any = None,
    ) -> None:
        self.root: type[Any] = root
        self.where = where
        self.order = order_by
        self.scope = scope
        self.project = project
        self.limit_n = limit
        self._session = session

    def _copy(self, **changes: Any) -> Query[T]:
        state = {
            "root": self.root, "where": self.where, "order_by": self.order, "scope": self.scope,
            "project": self.project, "limit": self.limit_n, "session": self._session,
        }
        state.update(changes)
        return type(self)(**state)

    def _root_with(self, other: Query[Any]) -> type[Any]:
        if issubclass(other.root, self.root):
            return other.root
        if issubclass(self.root, other.root):
            return self.root
        raise InvalidQuery(
            f"cannot combine a query on {self.root.__name__} with one on {other.root.__name__}")

    # -- composition -----------------------------------------------------------------
    def __and__(self, other: Query[Any]) -> Query[T]:
        return self._copy(root=self._root_with(other), where=_and(self.where, other.where))

    def __or__(self, other: Query[Any]) -> Query[T]:
        if self.where is None or other.where is None:
            return self._copy(root=self._root_with(other), where=None)
        return self._copy(root=self._root_with(other), where=Or(items=(self.where, other.where)))

    def __invert__(self) -> Query[T]:
        if self.where is None:
            raise InvalidQuery("cannot negate a query without a condition")
        return self._copy(where=Not(item=self.where))

    def __bool__(self) -> bool:
        """Refused: ``q1 and q2`` would silently keep only ``q2``. ``len(q)`` still counts."""
        raise TypeError(NO_TRUTH_VALUE)

    def order_by(self, path: str | Path, descending: bool = False) -> Query[T]:
        segments = path.segments if isinstance(path, Path) else tuple(path.split("."))
        resolve_path(self.root, segments)
        return self._copy(order_by=(*self.order, OrderBy(path=segments, descending=descending)))

    def path(self, name: str) -> Path:
        """The attribute ``name`` of this query's class, as a path (``Class.name`` is this)."""
        return Path(self.root, (name,))

    def limit(self, n: int) -> Query[T]:
        return self._copy(limit=n)

    def user_only(self) -> Query[T]:
        """Only objects I made (my MyDB)."""
        return self._copy(scope="user")

    def project_only(self, project: str | None = None) -> Query[T]:
        """Only objects of one project (default: the session's current project)."""
        return self._copy(scope="project", project=project)

    def spec(self) -> QuerySpec:
        return QuerySpec(
            cls=self.root.__name__, where=self.where, order_by=self.order,
            scope=self.scope, project=self.project,
        )

    # -- execution -------------------------------------------------------------------
    def _client(self) -> Any:
        if self._session is not None:
            return self._session
        return session()

    def _iterate(self) -> Iterator[Any]:
        items: Iterator[Any] = self._client().iter_query(self.spec(), limit=self.limit_n)
        return items

    def _fetch(self, spec: QuerySpec, offset: int, count: int) -> list[Any]:
        items: list[Any] = self._client().fetch(spec, offset, count)
        return items

    def _count(self) -> int:
        n: int = self._client().count(self.spec())
        return n

    def __iter__(self) -> Iterator[T]:
        items: Iterator[T] = self._iterate()
        return items

    def __len__(self) -> int:
        n = self._count()
        return n if self.limit_n is None else min(n, self.limit_n)

    @overload
    def __getitem__(self, index: int) -> T: ...
    @overload
    def __getitem__(self, index: slice) -> list[T]: ...

    def __getitem__(self, index: int | slice) -> T | list[T]:
        if isinstance(index, slice):
            start, stop, step = index.indices(len(self)) if (
                (index.start or 0) < 0 or (index.stop or 0) < 0 or index.stop is None
            ) else (index.start or 0, index.stop, index.step or 1)
            items: list[T] = self._fetch(self.spec(), start, max(0, stop - start))
            return items[::step]
        if index < 0:
            index += len(self)
        if index < 0:
            raise IndexError("query index out of range")
        got: list[T] = self._fetch(self.spec(), index, 1)
        if not got:
            raise IndexError("query index out of range")
        return got[0]

    def max(self, attr: str) -> T | None:
        """The object with the largest value of ``attr`` (e.g. the newest by creation_date)."""
        got: list[T] = self._fetch(self.order_by(attr, True).spec(), 0, 1)
        return got[0] if got else None

    def min(self, attr: str) -> T | None:
        got: list[T] = self._fetch(self.order_by(attr, False).spec(), 0, 1)
        return got[0] if got else None

    def oids(self) -> list[str]:
        return [o.record.oid for o in self._iterate() if o.record is not None]

    def to_table(self, columns: Sequence[str] | None = None) -> Table:
        """Results as an astropy Table (scalar fields; dotted paths follow references)."""
        return to_table(list(self), self.root, columns)

    def __repr__(self) -> str:
        return f"<Query {self.spec().model_dump_json(exclude_defaults=True)}>"
