"""What the object model needs from the world, as interfaces: a connection and a planner.

Objects resolve references, queries page through results and classes make targets
(``HotPixelMap.get(...)``), but the model sits below the client and the planner: it must not
import them. So the model states here what it needs (``Session``, ``Targets``) and whoever
assembles the library binds the implementations once (``awecore/__init__.py`` binds the
client's ``current()`` and ``awecore.targets``). A model imported alone, as the services do,
works for everything but these active-record conveniences, and says so when they are used.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterator, Sequence
from typing import TYPE_CHECKING, Any, Protocol

from ..errors import ServiceUnavailable

if TYPE_CHECKING:
    from ..jobs import Ownership
    from ..query import QuerySpec
    from ..records import ObjectOut

#: a model object or class: the model's own types stay out of its interfaces, so the
#: modules below ``_base`` never name it
DBObject = Any

__all__ = ["Session", "Targets", "bind", "session", "targets"]


class Session(Protocol):
    """A connection to the catalogue, as model objects and queries use it."""

    def resolve_refs(self, page: Sequence[DBObject], name: str) -> None:
        """Load reference ``name`` of every object of ``page`` (one request per page)."""

    def iter_query(self, spec: QuerySpec, limit: int | None = None) -> Iterator[DBObject]:
        """Every object the query selects, paged."""

    def fetch(self, spec: QuerySpec, offset: int, count: int) -> list[DBObject]:
        """One slice of the results."""

    def count(self, spec: QuerySpec) -> int:
        """How many objects the query selects."""

    def request(self, method: str, path: str, **kwargs: Any) -> Any:
        """A call of the catalogue's HTTP API (the source table has its own endpoints)."""

    def download(self, record: ObjectOut) -> bytes:
        """An object's file from storage, checked against its record's checksum and size."""


class Targets(Protocol):
    """The planner and maker behind ``Class.get/plan/exists/make`` and ``obj.uptodate()``."""

    def get(self, cls: type[DBObject], date: str | dt.date | None, chip: str | None,
            filter: str | None = None, raw: str | None = None,
            params: dict[str, Any] | None = None, *,
            extra: dict[str, str] | None = None,
            owner: Ownership | None = None) -> DBObject: ...

    def plan(self, cls: type[DBObject], date: str | dt.date | None, chip: str | None,
             filter: str | None = None, raw: str | None = None,
             params: dict[str, Any] | None = None, *,
             extra: dict[str, str] | None = None) -> Any: ...

    def exists(self, cls: type[DBObject], date: str | dt.date | None, chip: str | None,
               filter: str | None = None, raw: str | None = None, *,
               extra: dict[str, str] | None = None) -> bool: ...

    def make(self, cls: type[DBObject], date: str | dt.date | None, chip: str | None,
             filter: str | None = None, raw: str | None = None,
             params: dict[str, Any] | None = None, *,
             extra: dict[str, str] | None = None,
             owner: Ownership | None = None) -> DBObject: ...

    def uptodate(self, obj: DBObject) -> Any: ...


_current: Callable[[], Session] | None = None
_targets: Targets | None = None


def bind(current: Callable[[], Session] | None = None, planner: Targets | None = None) -> None:
    """Give the model its connection (a function returning the current session) and its
    planner; called once by whoever assembles the library."""
    global _current, _targets
    if current is not None:
        _current = current
    if planner is not None:
        _targets = planner


def session() -> Session:
    """The current connection (``awe.connect()`` makes one)."""
    if _current is None:
        raise ServiceUnavailable("not connected: `import awecore as awe; awe.connect()`")
    return _current()


def targets() -> Targets:
    """The planner (``awecore.targets``, bound when ``awecore`` is imported)."""
    if _targets is None:
        raise ServiceUnavailable("targets need the planner: `import awecore` (not only "
                                 "awecore.model) before Class.get/plan/make")
    return _targets
