"""Every read filters by the caller: own objects, own projects (>= 2), shared (>= 3)."""

from __future__ import annotations

import httpx
import pytest
from conftest import Users
from seed import batch

pytestmark = pytest.mark.integration


async def visible(client: httpx.AsyncClient, oid: str) -> dict[str, bool]:
    got = (await client.get(f"/objects/{oid}")).status_code == 200
    many = (await client.post("/objects/get", json={"oids": [oid]})).json()["objects"]
    spec = {"cls": "Filter", "where": {"node": "compare", "op": "eq", "path": ["oid"],
                                       "value": oid}}
    queried = (await client.post("/query/count", json=spec)).json()["count"] == 1
    seen_change = False
    after = 0
    while True:
        page = (await client.get("/changes", params={"after": after, "limit": 5000})).json()
        seen_change |= any(e["subject"] == oid for e in page["events"])
        if page["next_after"] is None:
            break
        after = page["next_after"]
    return {"get": got, "get_many": bool(many), "query": queried, "changes": seen_change}


ALL = {"get": True, "get_many": True, "query": True, "changes": True}
NONE = {"get": False, "get_many": False, "query": False, "changes": False}


async def test_private_objects_stay_private(users: Users) -> None:
    alice = await users.make("alice", project="survey-a")
    bob = await users.make("bob", project="survey-b")
    carol = await users.make("carol", project="survey-a")
    (mine,) = await batch(alice, [{"type": "Filter", "privileges": 1}])
    (project,) = await batch(alice, [{"type": "Filter", "privileges": 2}])
    (shared,) = await batch(alice, [{"type": "Filter", "privileges": 3}])
    assert await visible(alice, mine) == ALL
    assert await visible(bob, mine) == NONE
    assert await visible(carol, mine) == NONE  # same project, but privileges 1
    assert await visible(carol, project) == ALL
    assert await visible(bob, project) == NONE
    assert await visible(bob, shared) == ALL
    # raising privileges makes it visible; curation by another user is refused
    r = await bob.patch(f"/objects/{mine}", json={"privileges": 3})
    assert r.status_code == 404  # bob cannot even see it
    r = await carol.patch(f"/objects/{project}", json={"is_valid": 0})
    assert r.status_code == 403
    r = await alice.patch(f"/objects/{mine}", json={"privileges": 3})
    assert r.status_code == 200
    assert (await visible(bob, mine))["get"]


async def test_private_objects_do_not_leak_through_references(users: Users) -> None:
    alice = await users.make("alice", project="survey-c")
    bob = await users.make("bob", project="survey-d")
    (inst,) = await batch(alice, [{"type": "Instrument", "privileges": 1,
                                   "attributes": {"name": "secret-cam"}}])
    # bob cannot reference what he cannot see
    r = await bob.post("/objects", json={"type": "Chip", "refs": {"instrument": inst}})
    assert r.status_code == 400 and "no visible object" in r.text
    # a shared chip of alice's pointing at her private instrument: bob's path query
    # through the instrument finds nothing
    await batch(alice, [{"type": "Chip", "privileges": 3, "attributes": {"name": "leak"},
                         "refs": {"instrument": inst}}])
    spec = {"cls": "Chip", "where": {"node": "compare", "op": "eq",
                                     "path": ["instrument", "name"], "value": "secret-cam"}}
    assert (await bob.post("/query/count", json=spec)).json()["count"] == 0
    assert (await alice.post("/query/count", json=spec)).json()["count"] == 1


async def test_scopes_and_projects(users: Users) -> None:
    alice = await users.make("alice", project="survey-e")
    await batch(alice, [{"type": "Filter", "privileges": 3, "attributes": {"name": "mine"}}])
    r = await alice.post("/query/count", json={"cls": "Filter", "scope": "user"})
    assert r.json()["count"] == 1
    r = await alice.post("/query/count", json={"cls": "Filter", "scope": "project"})
    assert r.json()["count"] == 1
    r = await alice.post("/objects", json={"type": "Filter", "project": "someone-elses"})
    assert r.status_code == 403 and "not a member" in r.text
    r = await alice.post("/users", json={"name": "mallory"})
    assert r.status_code == 403
    r = await alice.post("/tokens", json={"user": "admin"})
    assert r.status_code == 403
