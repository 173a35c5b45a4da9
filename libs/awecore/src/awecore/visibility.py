"""Who may see what: the privilege levels, the rule, and the same rule as SQL.

Every object carries a privilege level (1 to 5) that only ever rises. The catalogue's
queries, the lineage graph and federation all decide from it; they take the rule from here
so that changing it in this one place changes it everywhere. ``may_see`` is the rule in
Python, ``visible_sql`` the same rule as a parameterised SQL condition; a test runs both over
a table of objects and viewers on PostgreSQL and requires them to agree.

The rule, for a viewer and an object:

* admins and service accounts see everything;
* anyone sees an object shared with their kind of viewer: signed-in users at any site from
  ``SITES`` on, anonymous viewers from ``WORLD`` on, the Virtual Observatory at ``VO``;
* a signed-in user also sees their own objects (any level) and, from ``PROJECT`` on, the
  objects of their projects. User names and projects are accounts of one site: a viewer
  whose site is known counts them only for objects made at that site.

Objects from ``REPLICATED_FROM`` on are copied to the other sites (federation), which is
why that level is the same as the one every signed-in user sees.

Contracts layer: standard library only.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from enum import IntEnum
from typing import Any, NamedTuple, Protocol

__all__ = ["REPLICATED_FROM", "Bind", "Columns", "Guarded", "Privilege", "Viewer",
           "binder", "may_see", "replicates", "visibility_clause", "visible_sql"]


class Privilege(IntEnum):
    """Who an object is shared with; each level shares with more than the one below."""

    ME = 1
    """Only its creator (Astro-WISE's MyDB)."""
    PROJECT = 2
    """Its creator and the members of its project."""
    SITES = 3
    """Every signed-in user at every site: from here objects replicate to other sites."""
    WORLD = 4
    """Anyone, also without an account."""
    VO = 5
    """Published to the Virtual Observatory."""


#: the level from which objects are copied to other sites
REPLICATED_FROM = Privilege.SITES


def replicates(privileges: int) -> bool:
    """Whether an object at this level goes to the other sites."""
    return privileges >= REPLICATED_FROM


class Guarded(Protocol):
    """What the rule reads of an object (``ObjectOut`` and catalogue rows have these)."""

    @property
    def creator(self) -> str: ...
    @property
    def project(self) -> str: ...
    @property
    def privileges(self) -> int: ...
    @property
    def site(self) -> str: ...


class _Account(Protocol):
    """A signed-in caller as the services know one (``awecore``'s ``Identity``)."""

    @property
    def name(self) -> str: ...
    @property
    def projects(self) -> Sequence[str]: ...
    @property
    def sees_all(self) -> bool: ...


@dataclass(frozen=True)
class Viewer:
    """Who is looking. Build one with ``of``, ``anonymous`` or ``vo`` rather than by hand."""

    name: str | None = None
    """The user's name; None: nobody signed in."""
    projects: tuple[str, ...] = ()
    """The projects the user is a member of."""
    is_admin: bool = False
    """Admins and service accounts see everything."""
    site: str | None = None
    """The site the account belongs to; None: not known, names count at every site."""
    via_vo: bool = False
    """Asking through a Virtual Observatory interface (anonymous by nature)."""

    def __post_init__(self) -> None:
        if self.via_vo and self.name is not None:
            raise ValueError("a Virtual Observatory viewer is anonymous: it has no name")
        if self.name is None and self.projects:
            raise ValueError("an anonymous viewer is a member of no project")

    @classmethod
    def of(cls, account: _Account, site: str | None = None) -> Viewer:
        """The viewer behind a signed-in caller."""
        return cls(name=account.name, projects=tuple(account.projects),
                   is_admin=account.sees_all, site=site)

    @classmethod
    def anonymous(cls) -> Viewer:
        return cls()

    @classmethod
    def vo(cls) -> Viewer:
        return cls(via_vo=True)

    @property
    def reach(self) -> Privilege:
        """The lowest level at which this viewer sees everybody's objects."""
        if self.via_vo:
            return Privilege.VO
        if self.name is None:
            return Privilege.WORLD
        return Privilege.SITES


def may_see(viewer: Viewer, obj: Guarded) -> bool:
    """The rule (see the module's docstring)."""
    if viewer.is_admin or obj.privileges >= viewer.reach:
        return True
    if viewer.name is None or (viewer.site is not None and obj.site != viewer.site):
        return False
    return obj.creator == viewer.name or (
        obj.privileges >= Privilege.PROJECT and obj.project in viewer.projects)


# -- the rule as SQL -----------------------------------------------------------------------

_COLUMN = re.compile(r"^([a-z_][a-z0-9_]{0,62}\.)?[a-z_][a-z0-9_]{0,62}$")


class Columns(NamedTuple):
    """Where the rule's inputs are in a statement (each a column, optionally qualified)."""

    creator: str = "creator"
    project: str = "project"
    privileges: str = "privileges"
    site: str = "site"

    @classmethod
    def at(cls, alias: str) -> Columns:
        """The columns of row ``alias`` of a table shaped like the catalogue's objects."""
        return cls(*(f"{alias}.{name}" for name in cls._fields))


class Bind(Protocol):
    """Adds a value to the statement being built and returns its placeholder (``$3``).

    ``key`` names the viewer value (``name``, ``site``, ``projects``), so a statement that
    tests visibility on several rows can bind each value once (see ``binder``)."""

    def __call__(self, key: str, value: Any) -> str: ...


def binder(param: Callable[[Any], str]) -> Bind:
    """A ``Bind`` over a statement's own ``param`` function that binds each key once."""
    bound: dict[str, str] = {}

    def bind(key: str, value: Any) -> str:
        if key not in bound:
            bound[key] = param(value)
        return bound[key]
    return bind


def visible_sql(viewer: Viewer, bind: Bind, columns: Columns = Columns()) -> str:
    """``may_see`` as an SQL boolean condition over ``columns`` (which must not be NULL).

    Levels are written as literals (they are the rule, and let the planner use them); the
    viewer's name, site and projects are bound as parameters through ``bind``."""
    for column in columns:
        if not _COLUMN.match(column):
            raise ValueError(f"{column!r} is not a column name")
    if viewer.is_admin:
        return "TRUE"
    shared = f"{columns.privileges} >= {int(viewer.reach)}"
    if viewer.name is None:
        return f"({shared})"
    home = "" if viewer.site is None else f" AND {columns.site} = {bind('site', viewer.site)}"
    mine = f"{columns.creator} = {bind('name', viewer.name)}"
    ours = (f"{columns.privileges} >= {int(Privilege.PROJECT)} AND {columns.project} = "
            f"ANY({bind('projects', list(viewer.projects))}::text[])")
    if home:
        mine = f"({mine}{home})"
    return f"({mine} OR {shared} OR ({ours}{home}))"


def visibility_clause(viewer: Viewer, columns: Columns, first: int) -> tuple[str, list[Any]]:
    """``visible_sql`` for a hand-written statement whose own parameters end before
    ``$first``: the condition and the values to append to the statement's."""
    params: list[Any] = []

    def param(value: Any) -> str:
        params.append(value)
        return f"${first + len(params) - 1}"
    return visible_sql(viewer, binder(param), columns), params
