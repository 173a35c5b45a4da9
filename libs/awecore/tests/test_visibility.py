"""The rule of who may see what: Python and SQL agree, on a real PostgreSQL.

Every object of a table (every level, creator, project and site) meets every kind of viewer;
the rows ``visible_sql`` selects from a VALUES table must be exactly those ``may_see`` lets
through. A few rows state the rule itself, so that the two cannot agree on a wrong one.
"""

from __future__ import annotations

import itertools
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any, NamedTuple, get_args

import asyncpg
import pytest

from awecore.records import Privileges
from awecore.stack import PostgresServer
from awecore.visibility import (
    REPLICATED_FROM,
    Columns,
    Privilege,
    Viewer,
    binder,
    may_approve,
    may_curate,
    may_see,
    owns,
    replicates,
    visibility_clause,
    visible_sql,
)


class Obj(NamedTuple):
    creator: str
    project: str
    privileges: int
    site: str


class Account(NamedTuple):
    name: str
    projects: list[str]
    sees_all: bool


# creators as each object's site keeps them: bare for its own users, name@site for a guest
OBJECTS = [Obj(c, p, lvl, s) for lvl, c, p, s in itertools.product(
    list(Privilege), ["alice", "bob", "alice@b", "bob@a"], ["survey", "calib"], ["a", "b"])]

VIEWERS = {
    "alice": Viewer.of(Account("alice", ["survey"], False)),
    "alice@a": Viewer.of(Account("alice", ["survey"], False), site="a"),
    "carol, two projects": Viewer.of(Account("carol", ["survey", "calib"], False)),
    "dave, no project": Viewer.of(Account("dave", [], False)),
    "admin": Viewer.of(Account("root", [], True)),
    "service@b": Viewer.of(Account("federation", [], True), site="b"),
    # alice of site b, signed in at site a as a guest (a member of a's project survey)
    "alice@b at a": Viewer.of(Account("alice@b", ["survey"], False), site="a"),
    "bob@b": Viewer.of(Account("bob", ["survey"], False), site="b"),
    "anonymous": Viewer.anonymous(),
    "vo": Viewer.vo(),
}


@pytest.fixture(scope="module")
def pg_url() -> Iterator[str]:
    folder = Path(tempfile.mkdtemp(prefix="awe-test-visibility-"))
    folder.chmod(0o711)  # as root PostgreSQL runs as 'nobody', who must reach its folder
    server = PostgresServer(folder / "data")
    server.start()
    try:
        yield server.url()
    finally:
        server.stop()
        shutil.rmtree(folder, ignore_errors=True)


async def _selected(url: str, viewer: Viewer, alias: str = "o") -> set[int]:
    """The indices of OBJECTS that ``visible_sql`` keeps for ``viewer``."""
    values: list[Any] = []
    tuples = []
    for i, o in enumerate(OBJECTS):
        n = len(values)
        tuples.append(f"(${n + 1}::int, ${n + 2}::text, ${n + 3}::text, ${n + 4}::smallint, "
                      f"${n + 5}::text)")
        values.extend([i, o.creator, o.project, o.privileges, o.site])
    rows = ", ".join(tuples)
    vis, params = visibility_clause(viewer, Columns.at(alias), len(values) + 1)
    table = f"(VALUES {rows}) AS {alias}(i, creator, project, privileges, site)"
    sql = f"SELECT {alias}.i FROM {table} WHERE {vis}"  # noqa: S608 (values are parameters)
    conn = await asyncpg.connect(url)
    try:
        return {r["i"] for r in await conn.fetch(sql, *values, *params)}
    finally:
        await conn.close()


@pytest.mark.integration
@pytest.mark.parametrize("who", list(VIEWERS))
async def test_python_and_sql_select_the_same_objects(pg_url: str, who: str) -> None:
    viewer = VIEWERS[who]
    expected = {i for i, o in enumerate(OBJECTS) if may_see(viewer, o)}
    assert await _selected(pg_url, viewer) == expected
    # each kind of viewer sees something and not everything, except those who see all
    assert expected == set(range(len(OBJECTS))) if viewer.is_admin else (
        0 < len(expected) < len(OBJECTS))


@pytest.mark.parametrize(("who", "obj", "sees"), [
    ("alice", Obj("alice", "calib", Privilege.ME, "b"), True),      # her own, anywhere
    ("alice@a", Obj("alice", "calib", Privilege.ME, "b"), False),   # another site's alice
    ("alice@a", Obj("alice", "calib", Privilege.ME, "a"), True),
    ("alice", Obj("bob", "survey", Privilege.ME, "a"), False),      # not shared at all
    ("alice", Obj("bob", "survey", Privilege.PROJECT, "a"), True),  # her project's
    ("alice", Obj("bob", "calib", Privilege.PROJECT, "a"), False),  # another project's
    ("alice@a", Obj("bob", "survey", Privilege.PROJECT, "b"), False),
    ("dave, no project", Obj("bob", "survey", Privilege.SITE, "b"), True),  # site unknown
    ("alice@a", Obj("bob", "calib", Privilege.SITE, "a"), True),   # her site's users'
    ("alice@a", Obj("bob", "calib", Privilege.SITE, "b"), False),  # another site's only
    ("alice@a", Obj("bob", "calib", Privilege.SITES, "b"), True),  # every site's
    ("anonymous", Obj("bob", "survey", Privilege.SITE, "a"), False),
    ("anonymous", Obj("bob", "survey", Privilege.SITES, "a"), False),
    ("anonymous", Obj("bob", "survey", Privilege.WORLD, "a"), True),
    ("vo", Obj("bob", "survey", Privilege.SITES, "a"), False),
    ("vo", Obj("bob", "survey", Privilege.WORLD, "a"), True),
    ("admin", Obj("bob", "calib", Privilege.ME, "b"), True),
    # a user is name@site: the guest alice@b at site a is b's alice, not a's
    ("alice@b at a", Obj("alice", "calib", Privilege.ME, "a"), False),
    ("alice@b at a", Obj("alice@b", "calib", Privilege.ME, "a"), True),  # made as a guest
    ("alice@b at a", Obj("alice", "calib", Privilege.ME, "b"), True),    # made at home
    ("alice@b at a", Obj("bob", "survey", Privilege.PROJECT, "a"), True),  # a's project
    ("alice@b at a", Obj("bob", "survey", Privilege.PROJECT, "b"), False),
    ("alice@a", Obj("alice@b", "calib", Privilege.ME, "a"), False),     # b's alice's
    ("bob@b", Obj("bob@a", "calib", Privilege.ME, "b"), False),  # a's bob, a guest at b
    ("bob@b", Obj("bob", "calib", Privilege.ME, "b"), True),
])
def test_the_rule(who: str, obj: Obj, sees: bool) -> None:
    assert may_see(VIEWERS[who], obj) is sees


@pytest.mark.parametrize(("who", "obj", "curates"), [
    # a same-named user of another site curates nothing of bob@a's, even shared with all
    ("bob@b", Obj("bob", "survey", Privilege.SITES, "a"), False),
    ("bob@b", Obj("bob", "survey", Privilege.WORLD, "a"), False),
    ("bob@b", Obj("bob", "survey", Privilege.SITES, "b"), True),
    ("bob@b", Obj("bob@b", "survey", Privilege.SITES, "a"), True),  # his, made at a
    ("alice@b at a", Obj("alice", "survey", Privilege.SITES, "a"), False),
    ("alice@b at a", Obj("alice", "survey", Privilege.SITES, "b"), True),
    ("alice@b at a", Obj("alice@b", "survey", Privilege.ME, "a"), True),
    ("admin", Obj("bob", "survey", Privilege.ME, "b"), True),
    ("anonymous", Obj("bob", "survey", Privilege.WORLD, "a"), False),
])
def test_curation_compares_name_and_site(who: str, obj: Obj, curates: bool) -> None:
    assert may_curate(VIEWERS[who], obj) is curates
    assert owns(VIEWERS[who], obj) is (curates and not VIEWERS[who].is_admin)


def test_a_calibration_scientist_curates_at_their_site_only() -> None:
    guest = VIEWERS["alice@b at a"]  # calibration scientist of a's project survey
    ours, theirs = (Obj("bob", "survey", Privilege.SITES, s) for s in ("a", "b"))
    assert may_curate(guest, ours, ["survey"]) and may_approve(guest, ours, ["survey"])
    assert not may_curate(guest, theirs, ["survey"])  # b's project of the same name
    assert not may_approve(guest, theirs, ["survey"])


def test_viewers_are_whole() -> None:
    assert VIEWERS["alice@a"].user == "alice@a"
    assert VIEWERS["alice@b at a"].user == "alice@b"
    assert VIEWERS["alice"].user is None and VIEWERS["anonymous"].user is None


class SiteAccount(NamedTuple):
    name: str
    projects: list[str]
    sees_all: bool
    site: str | None


def test_a_viewer_takes_its_site_from_the_account() -> None:
    assert Viewer.of(SiteAccount("bob", [], False, "b")).site == "b"
    assert Viewer.of(SiteAccount("bob", [], False, "b"), site="c").site == "c"


def test_what_replicates_is_what_every_user_of_another_site_sees() -> None:
    stranger = Viewer.of(Account("zoe", ["survey", "calib"], False), site="elsewhere")
    for o in OBJECTS:
        assert replicates(o.privileges) is may_see(stranger, o), o
    assert REPLICATED_FROM == Privilege.SITES == 4
    assert not replicates(Privilege.SITE) and replicates(Privilege.WORLD)


def test_levels_match_the_wire_format() -> None:
    assert sorted(get_args(Privileges)) == [int(p) for p in Privilege]


def test_sql_binds_each_viewer_value_once_across_rows() -> None:
    params: list[Any] = []

    def param(value: Any) -> str:
        params.append(value)
        return f"${len(params)}"
    bind = binder(param)
    viewer = VIEWERS["alice@a"]
    first, second = visible_sql(viewer, bind, Columns.at("o")), visible_sql(
        viewer, bind, Columns.at("r"))
    assert params == ["a", "alice", "alice@a", ["survey"]]
    assert first.replace("o.", "r.") == second
    assert visible_sql(VIEWERS["admin"], bind) == "TRUE" and len(params) == 4


def test_sql_placeholders_start_where_the_statement_leaves_off() -> None:
    sql, params = visibility_clause(VIEWERS["alice"], Columns.at("n"), 4)
    assert sql == ("(n.creator = $4 OR n.privileges >= 3 OR "
                   "(n.privileges >= 2 AND n.project = ANY($5::text[])))")
    assert params == ["alice", ["survey"]]
    assert visibility_clause(VIEWERS["anonymous"], Columns(), 1) == ("(privileges >= 5)", [])
    sql, params = visibility_clause(VIEWERS["alice@a"], Columns(), 1)
    assert sql == ("(privileges >= 4 OR ((creator = $2 AND site = $1) OR creator = $3) OR "
                   "(site = $1 AND (privileges >= 3 OR (privileges >= 2 AND "
                   "project = ANY($4::text[])))))")
    assert params == ["a", "alice", "alice@a", ["survey"]]
    sql, params = visibility_clause(VIEWERS["alice@b at a"], Columns(), 1)
    assert "((creator = $3 AND site = $2) OR creator = $4)" in sql
    assert params == ["a", "b", "alice", "alice@b", ["survey"]]


@pytest.mark.parametrize("bad", ["o.creator; DROP TABLE objects", "O.creator", "a.b.c", ""])
def test_column_names_are_checked(bad: str) -> None:
    with pytest.raises(ValueError, match="not a column name"):
        visible_sql(VIEWERS["alice"], binder(lambda v: "$1"), Columns(creator=bad))


def test_impossible_viewers_are_refused() -> None:
    with pytest.raises(ValueError, match="anonymous"):
        Viewer(name="alice", via_vo=True)
    with pytest.raises(ValueError, match="no project"):
        Viewer(projects=("survey",))


def test_levels_only_rise_in_reach() -> None:
    assert [p.name for p in sorted(Privilege)] == ["ME", "PROJECT", "SITE", "SITES", "WORLD"]
    assert [int(p) for p in sorted(Privilege)] == [1, 2, 3, 4, 5]
    assert Privilege.VO is Privilege.WORLD  # what is public is what the VO publishes
    reach = [VIEWERS[w].reach for w in ("alice", "anonymous", "vo")]
    assert reach == [Privilege.SITES, Privilege.WORLD, Privilege.WORLD]


def test_a_nameless_account_is_the_anonymous_viewer() -> None:
    assert Viewer.of(Account("", [], False)) == Viewer.anonymous()
