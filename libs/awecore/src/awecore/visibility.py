"""Who may see what: the privilege levels, the rule, and the same rule as SQL.

Every object carries a privilege level (1 to 5) that only ever rises, as in Astro-WISE:
1 me (MyDB), 2 my project, 3 every signed-in user of this site, 4 every signed-in user of
every federated site, 5 the world (anonymous viewers and the Virtual Observatory). The catalogue's
queries, the lineage graph and federation all decide from it; they take the rule from here
so that changing it in this one place changes it everywhere. ``may_see`` is the rule in
Python, ``visible_sql`` the same rule as a parameterised SQL condition; a test runs both over
a table of objects and viewers on PostgreSQL and requires them to agree.

The rule, for a viewer and an object:

* admins and service accounts see everything;
* anyone sees an object shared with their kind of viewer: a signed-in user the objects of
  their own site from ``SITE`` on and those of any site from ``SITES`` on; anonymous
  viewers (no token) and the Virtual Observatory only those at ``WORLD``;
* a signed-in user also sees their own objects (any level) and, from ``PROJECT`` on, the
  objects of their projects. A user is ``name@site`` (``awecore.users``): an object is its
  viewer's own if its creator, made whole with the object's site, is the viewer made whole
  with the viewer's site, so a same-named user of another site is someone else. Projects
  are accounts of one site: a viewer whose site is known counts them only for objects made
  at that site. (A viewer whose site is not known compares bare names: kept for callers
  that cannot say; every service says.)

Objects from ``REPLICATED_FROM`` (``SITES``) on are copied to the other sites (federation),
which is why that level is the one from which a signed-in user of another site sees them; an
object at ``SITE`` stays at its site (a viewer whose site is not known counts it as this
site's: only this site's catalogue holds it).

The same module says who may do what else, so that storage, compute, lineage and federation
decide alike (each rule below is built on ``may_see``):

* a **file** is read by whoever may see an object that owns it (whose ``filename`` or weight
  map it is; a raw file's object is its raw frame); a file no object owns yet (a product
  being made) only by the account that wrote it (``may_read_file``);
* files under ``raw/`` are written only by ingest, i.e. admins and service accounts
  (``may_write_file``);
* an object is **curated** by its creator (the same ``name@site``, wherever the copy is),
  a calibration scientist of its project, or an admin (``may_curate``); the approval
  (``is_valid = 1``) of the last two makes a calibration eligible as everybody's best, not
  only its creator's (``may_approve``);
* a **job** is seen by who submitted it and by who was handed it by a later submission of
  the same product; only its submitter cancels or retries it (``may_see_job``,
  ``may_manage_job``, ``jobs_sql``);
* a **path** between objects, or a walk through the graph, is answered only if the viewer
  may see every object on it (``may_see_path``); what a walk reaches and the viewer may
  not see is named ``HIDDEN_OID``, never by its oid;
* site operations (federation catch-up) are for admins and service accounts
  (``may_operate``).

Refusals for what the viewer may not see are "not found", never "forbidden": a 403 would
confirm that the thing exists.

Contracts layer: standard library only (and ``awecore.users``, which is too).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from enum import IntEnum
from typing import Any, NamedTuple, Protocol

from .users import UserId

__all__ = ["HIDDEN_OID", "RAW_FILES", "REPLICATED_FROM", "Bind", "Columns", "Guarded",
           "Privilege", "Viewer", "binder", "jobs_sql", "may_approve", "may_curate",
           "may_manage_job", "may_operate", "may_read_file", "may_see", "may_see_job",
           "may_see_path", "may_write_file", "owner_sql", "owns", "replicates", "visibility_clause",
           "visible_sql"]

#: what stands for an object the viewer may not see where a visible one names it (a
#: reference, a lineage input): the nil UUID, so the field keeps its type and following it
#: finds nothing
HIDDEN_OID = "00000000-0000-0000-0000-000000000000"
#: the prefix of raw data in storage (``awecore.files.RAW_PREFIX``; stated here too because
#: this module imports nothing of the package)
RAW_FILES = "raw/"


class Privilege(IntEnum):
    """Who an object is shared with; each level shares with more than the one below."""

    ME = 1
    """Only its creator (Astro-WISE's MyDB)."""
    PROJECT = 2
    """Its creator and the members of its project."""
    SITE = 3
    """Every signed-in user of the site that holds it (not replicated)."""
    SITES = 4
    """Every signed-in user at every site: from here objects replicate to other sites."""
    WORLD = 5
    """The world: anyone, also without a token, and the Virtual Observatory."""
    VO = 5
    """The same level as ``WORLD`` (an alias): what is public is what the VO publishes."""


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
    """The site whose account this is (the site the viewer signed in at: ``name`` is as
    that site keeps it, bare for its own users, ``name@site`` for a guest of another);
    None: not known, bare names count at every site."""
    via_vo: bool = False
    """Asking through a Virtual Observatory interface (anonymous by nature; it sees what any
    anonymous viewer sees)."""

    def __post_init__(self) -> None:
        if self.via_vo and self.name is not None:
            raise ValueError("a Virtual Observatory viewer is anonymous: it has no name")
        if self.name is None and self.projects:
            raise ValueError("an anonymous viewer is a member of no project")

    @classmethod
    def of(cls, account: _Account, site: str | None = None) -> Viewer:
        """The viewer behind a caller; an account without a name is the anonymous caller
        of a service that serves public data without a token (``awecore.server``'s
        ``Identity.anonymous``). ``site``: the account's site, if the account does not say
        (an ``Identity`` does, as its ``site``)."""
        if not account.name:
            return cls.anonymous()
        return cls(name=account.name, projects=tuple(account.projects),
                   is_admin=account.sees_all, site=site or getattr(account, "site", None))

    @property
    def whole(self) -> UserId | None:
        """Who the viewer is across sites (``name@site``); None if nobody signed in or the
        site is not known."""
        if self.name is None or self.site is None:
            return None
        name, at, home = self.name.rpartition("@")
        return UserId(name, home) if at else UserId(self.name, self.site)

    @property
    def user(self) -> str | None:
        """``whole`` as it is written, ``name@site``."""
        whole = self.whole
        return None if whole is None else str(whole)

    @classmethod
    def anonymous(cls) -> Viewer:
        return cls()

    @classmethod
    def vo(cls) -> Viewer:
        return cls(via_vo=True)

    @property
    def reach(self) -> Privilege:
        """The lowest level at which this viewer sees everybody's objects at every site."""
        return Privilege.WORLD if self.name is None else Privilege.SITES


def owns(viewer: Viewer, obj: Guarded) -> bool:
    """Whether the object's creator is the viewer: the same ``name@site`` (a creator is
    kept as the object's site writes users: bare for its own, ``name@site`` for another
    site's); by bare names if the viewer's site is not known. ``owner_sql`` in SQL."""
    if viewer.name is None:
        return False
    whole = viewer.whole
    if whole is None:
        return obj.creator == viewer.name
    creator = obj.creator
    if "@" not in creator:
        return creator == whole.name and obj.site == whole.site
    return creator == str(whole)


def may_see(viewer: Viewer, obj: Guarded) -> bool:
    """The rule (see the module's docstring)."""
    if viewer.is_admin or obj.privileges >= viewer.reach:
        return True
    if viewer.name is None:
        return False
    if owns(viewer, obj):
        return True
    if viewer.site is not None and obj.site != viewer.site:
        return False
    return obj.privileges >= Privilege.SITE or (
        obj.privileges >= Privilege.PROJECT and obj.project in viewer.projects)


def may_see_path(viewer: Viewer, objects: Sequence[Guarded]) -> bool:
    """A chain between objects (or a walk through them) is the viewer's only if every
    object on it is: otherwise the answer would name what the viewer may not see."""
    return all(may_see(viewer, o) for o in objects)


def may_read_file(viewer: Viewer, owners: Sequence[Guarded], writer: str | None) -> bool:
    """A stored file: readable by whoever may see one of the objects that own it; a file no
    object owns (yet) only by the account that ``writer`` names (it wrote the bytes)."""
    if viewer.is_admin:
        return True
    if owners:
        return any(may_see(viewer, o) for o in owners)
    return viewer.name is not None and writer == viewer.name


def may_write_file(viewer: Viewer, name: str) -> bool:
    """Raw data is written by ingest only (admins, service accounts): a user who could write
    under a raw name could squat the name a night's raw file will have."""
    return viewer.is_admin or (viewer.name is not None and not name.startswith(RAW_FILES))


def may_curate(viewer: Viewer, obj: Guarded, curates: Sequence[str] = ()) -> bool:
    """Who may change an object's validity, window, privileges or comments: an admin, its
    creator (the same ``name@site``: a same-named user of another site is someone else), or
    a calibration scientist of its project at the object's own site (``curates``: the
    projects where the viewer holds that role) who may see it."""
    if viewer.is_admin:
        return True
    if viewer.name is None:
        return False
    if owns(viewer, obj):
        return True
    if viewer.site is not None and obj.site != viewer.site:
        return False
    return obj.project in curates and may_see(viewer, obj)


def may_approve(viewer: Viewer, obj: Guarded, curates: Sequence[str] = ()) -> bool:
    """Whose ``is_valid = 1`` makes a calibration eligible as anybody's best (it is
    governed): an admin's, or a calibration scientist's of its project. A user's own
    calibration is otherwise the best only for that user."""
    if viewer.is_admin:
        return True
    return (viewer.name is not None and obj.project in curates
            and (viewer.site is None or obj.site == viewer.site) and may_see(viewer, obj))


def may_see_job(viewer: Viewer, submitted_by: str, shared_with: Sequence[str] = ()) -> bool:
    """A job is its submitter's; a later submission that needed the same product was handed
    the running job, so that submitter sees it too."""
    return viewer.is_admin or (viewer.name is not None and (
        submitted_by == viewer.name or viewer.name in shared_with))


def may_manage_job(viewer: Viewer, submitted_by: str) -> bool:
    """Cancelling or retrying a job touches everyone waiting for it: its submitter or an
    admin only."""
    return viewer.is_admin or (viewer.name is not None and submitted_by == viewer.name)


def may_operate(viewer: Viewer) -> bool:
    """Operations on the site itself (federation catch-up): admins and service accounts."""
    return viewer.is_admin


def jobs_sql(viewer: Viewer, bind: Bind, submitted_by: str = "submitted_by",
             shared_with: str = "shared_with") -> str:
    """``may_see_job`` as an SQL condition over a jobs table's columns."""
    for column in (submitted_by, shared_with):
        if not _COLUMN.match(column):
            raise ValueError(f"{column!r} is not a column name")
    if viewer.is_admin:
        return "TRUE"
    if viewer.name is None:
        return "FALSE"
    name = bind("name", viewer.name)
    return f"({submitted_by} = {name} OR {name} = ANY({shared_with}))"


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
    levels = columns.privileges
    if viewer.name is None:
        return f"({levels} >= {int(viewer.reach)})"
    home = None if viewer.site is None else f"{columns.site} = {bind('site', viewer.site)}"
    mine = owner_sql(viewer, bind, columns)
    ours = (f"{levels} >= {int(Privilege.PROJECT)} AND {columns.project} = "
            f"ANY({bind('projects', list(viewer.projects))}::text[])")
    if home is None:
        return f"({mine} OR {levels} >= {int(Privilege.SITE)} OR ({ours}))"
    return (f"({levels} >= {int(viewer.reach)} OR {mine} OR ({home} AND ({levels} >= "
            f"{int(Privilege.SITE)} OR ({ours}))))")


def owner_sql(viewer: Viewer, bind: Bind, columns: Columns = Columns()) -> str:
    """``owns`` as an SQL condition (FALSE for the anonymous viewer, TRUE for no one else
    by default: an admin owns only their own objects): the creator column is the viewer's
    bare name at the viewer's home site, or the viewer's ``name@site`` at any site."""
    for column in (columns.creator, columns.site):
        if not _COLUMN.match(column):
            raise ValueError(f"{column!r} is not a column name")
    if viewer.name is None:
        return "FALSE"
    whole = viewer.whole
    if whole is None:
        return f"{columns.creator} = {bind('name', viewer.name)}"
    home = bind("site" if whole.site == viewer.site else "home", whole.site)
    name = bind("name" if whole.name == viewer.name else "bare", whole.name)
    return (f"(({columns.creator} = {name} AND {columns.site} = {home}) "
            f"OR {columns.creator} = {bind('user', str(whole))})")


def visibility_clause(viewer: Viewer, columns: Columns, first: int) -> tuple[str, list[Any]]:
    """``visible_sql`` for a hand-written statement whose own parameters end before
    ``$first``: the condition and the values to append to the statement's."""
    params: list[Any] = []

    def param(value: Any) -> str:
        params.append(value)
        return f"${first + len(params) - 1}"
    return visible_sql(viewer, binder(param), columns), params
