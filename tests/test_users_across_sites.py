"""Users are ``name@site`` across sites (issue 15): a same-named user of another site is
someone else in every rule, and every user the API shows is whole.

The first tests run against the session's catalog (site ``test``); the last one against two
sites with their own PostgreSQL, broker, catalog, relay and federation (``test_federation``'s
``Site``), where objects shared with every site (privilege 4) replicate with their creator
and site."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from conftest import Users
from prov.model import ProvAgent
from test_federation import Site, converged, federated

from awe_lineage.services.lineage import prov_document
from awecore.jobs import JobOut
from awecore.lineage import Graph, Node

pytestmark = pytest.mark.integration
SITE = "test"  # the session catalog's (conftest.catalog_settings)


def _tag() -> str:
    return uuid.uuid4().hex[:6]


def _as(catalog_app: object, token: str) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=catalog_app),  # type: ignore[arg-type]
                             base_url="http://catalog", timeout=60,
                             headers={"Authorization": f"Bearer {token}"})


async def test_whoami_and_token_listings_show_users_whole(users: Users) -> None:
    bob = await users.make("bob")
    name = bob.headers["X-Test-User"]
    me = (await bob.get("/whoami")).json()
    assert (me["name"], me["site"], me["user"]) == (name, SITE, f"{name}@{SITE}")
    tokens = (await bob.get("/tokens")).json()
    assert tokens and {t["user"] for t in tokens} == {f"{name}@{SITE}"}
    # a user named whole (this site's) is the same as the bare name
    r = await bob.get(f"/users/{name}@{SITE}")
    assert r.status_code == 200 and r.json()["user"] == f"{name}@{SITE}"
    r = await bob.get("/tokens", params={"user": f"{name}@{SITE}"})
    assert r.status_code == 200 and len(r.json()) == len(tokens)


async def test_objects_and_their_history_name_users_whole(users: Users) -> None:
    bob = await users.make("bob")
    name = bob.headers["X-Test-User"]
    r = await bob.post("/objects", json={"type": "Filter",
                                         "attributes": {"name": f"owner-{_tag()}"}})
    assert r.status_code == 201, r.text
    made = r.json()
    assert (made["creator"], made["site"], made["owner"]) == (name, SITE, f"{name}@{SITE}")
    r = await bob.patch(f"/objects/{made['oid']}", json={"comments": "mine",
                                                          "reason": "owner test"})
    assert r.status_code == 200, r.text
    assert r.json()["owner"] == f"{name}@{SITE}"
    history = (await bob.get(f"/objects/{made['oid']}/history")).json()
    assert [(h["by"], h["site"], h["who"]) for h in history] == [(name, SITE, f"{name}@{SITE}")]
    # the OpenAPI declares the whole names
    spec = (await bob.get("/openapi.json")).json()["components"]["schemas"]
    object_out = spec.get("ObjectOut-Output") or spec["ObjectOut"]
    assert "owner" in object_out["properties"]
    assert "user" in spec["UserOut"]["properties"]


@pytest.mark.parametrize("bad", ["bob@Not.A.Site", "@test", "bob@", "b b"])
async def test_a_user_that_is_no_name_at_a_site_is_a_400(admin: httpx.AsyncClient,
                                                          bad: str) -> None:
    project = f"p-{_tag()}"
    assert (await admin.post("/projects", json={"name": project})).status_code == 201
    for r in (await admin.post(f"/projects/{project}/members", json={"user": bad}),
              await admin.post("/tokens", json={"user": bad}),
              await admin.get("/tokens", params={"user": bad})):
        assert r.status_code in (400, 422), r.text  # 422: the pattern; 400: not a user
        assert r.headers["content-type"].startswith("application/problem+json")


async def test_a_guest_of_another_site_is_someone_else(catalog_app: object,
                                                       admin: httpx.AsyncClient,
                                                       users: Users) -> None:
    """``bob@elsewhere`` made a member of a project here is a guest: not this site's bob."""
    project = f"guests-{_tag()}"
    bob = await users.make("bob", project)
    name = bob.headers["X-Test-User"]
    r = await admin.post(f"/projects/{project}/members",
                         json={"user": f"{name}@elsewhere", "role": "calibration"})
    assert r.status_code == 200, r.text
    members = set(r.json()["members"]) - {"admin"}  # (the admin made the project)
    assert members == {name, f"{name}@elsewhere"}
    assert r.json()["calibration_scientists"] == [f"{name}@elsewhere"]
    # naming this site's user whole is naming them bare
    r = await admin.post(f"/projects/{project}/members", json={"user": f"{name}@{SITE}"})
    assert r.status_code == 200 and set(r.json()["members"]) - {"admin"} == members
    r = await admin.post("/tokens", json={"user": f"{name}@elsewhere"})
    assert r.status_code == 201, r.text
    assert r.json()["user"] == f"{name}@elsewhere"
    async with _as(catalog_app, r.json()["token"]) as guest:
        me = (await guest.get("/whoami")).json()
        assert (me["name"], me["user"]) == (f"{name}@elsewhere", f"{name}@elsewhere")
        # each one's private objects are theirs alone
        r = await bob.post("/objects", json={"type": "Filter", "project": project,
                                             "attributes": {"name": f"b-{_tag()}"}})
        assert r.status_code == 201, r.text
        bobs = r.json()
        r = await guest.post("/objects", json={"type": "Filter", "project": project,
                                               "attributes": {"name": f"g-{_tag()}"}})
        assert r.status_code == 201, r.text
        guests = r.json()
        assert (guests["creator"], guests["owner"]) == (f"{name}@elsewhere",
                                                        f"{name}@elsewhere")
        assert (await guest.get(f"/objects/{bobs['oid']}")).status_code == 404
        assert (await bob.get(f"/objects/{guests['oid']}")).status_code == 404
        for who, mine in ((bob, bobs), (guest, guests)):
            r = await who.post("/query", json={"query": {"cls": "Filter", "scope": "user"}})
            assert r.status_code == 200, r.text
            assert [o["oid"] for o in r.json()["objects"]] == [mine["oid"]]
        # the DSL names a user whole: the guest's objects, not this site's bob's
        for value, want in ((f"{name}@elsewhere", guests), (f"{name}@{SITE}", bobs),
                            (name, bobs)):
            r = await admin.post("/query", json={"query": {"cls": "Filter", "where": {
                "node": "compare", "op": "eq", "path": ["creator"], "value": value}}})
            assert r.status_code == 200, r.text
            assert [o["oid"] for o in r.json()["objects"]] == [want["oid"]]
        r = await admin.post("/query", json={"query": {"cls": "Filter", "where": {
            "node": "compare", "op": "eq", "path": ["creator"], "value": "x@Bad.Site"}}})
        assert r.status_code == 400, r.text
        # the project's products are the guest's to curate: a role here, held by bob@elsewhere
        r = await bob.patch(f"/objects/{bobs['oid']}", json={"privileges": 2})
        assert r.status_code == 200, r.text
        r = await guest.patch(f"/objects/{bobs['oid']}", json={"is_valid": 0,
                                                                "reason": "checked"})
        assert r.status_code == 200, r.text
        history = (await bob.get(f"/objects/{bobs['oid']}/history")).json()
        assert [h["who"] for h in history] == [f"{name}@{SITE}", f"{name}@elsewhere"]
        # ... and bob, a plain member, does not curate the guest's
        r = await guest.patch(f"/objects/{guests['oid']}", json={"privileges": 2})
        assert r.status_code == 200, r.text
        r = await bob.patch(f"/objects/{guests['oid']}", json={"is_valid": 0})
        assert r.status_code == 403
        assert f"{name}@elsewhere" in r.json()["detail"]


def test_prov_agents_and_job_submitters_are_whole() -> None:
    at = dt.datetime(2003, 2, 14, tzinfo=dt.UTC)
    nodes = [Node(oid=str(uuid.UUID(int=i + 1)), type="Filter", site="a", creation_date=at,
                  creator=c, is_valid=1) for i, c in enumerate(["bob", "bob@b"])]
    doc = prov_document(Graph(root=nodes[0].oid, direction="upstream", nodes=nodes, edges=[]))
    agents = {str(a.identifier) for a in doc.get_records(ProvAgent)}
    assert agents == {"awe:user-bob@a", "awe:user-bob@b"}
    assert [n.owner for n in nodes] == ["bob@a", "bob@b"]
    job: dict[str, Any] = {
        "id": "j", "cls": "BiasFrame", "chip": None, "filter": None, "night": None, "raw": None,
        "params": {}, "reasons": [], "product": "p", "deps": [], "status": "done",
        "worker": None, "attempts": 1, "error": None, "submitted_by": "bob", "created": at,
        "started": None, "finished": None}
    assert JobOut.model_validate({**job, "site": "a"}).submitter == "bob@a"
    shown = JobOut.model_validate({**job, "site": "a"}).model_dump(mode="json")
    assert shown["submitter"] == "bob@a" and JobOut.model_validate(shown).submitted_by == "bob"


# -- two sites -------------------------------------------------------------------------------

@pytest.fixture(scope="module")
async def two_sites() -> AsyncIterator[dict[str, Site]]:
    async with federated(("ua", "ub"), "awe-users-sites-") as made:
        yield made


async def _user(site: Site, name: str, project: str | None = None) -> httpx.AsyncClient:
    async with site.http() as admin:
        r = await admin.post("/users", json={"name": name, "project": project})
        assert r.status_code == 201, r.text
        r = await admin.post("/tokens", json={"user": name})
        assert r.status_code == 201, r.text
        token = r.json()["token"]
    return httpx.AsyncClient(base_url=site.catalog, timeout=60,
                             headers={"Authorization": f"Bearer {token}"})


async def test_a_same_named_user_of_another_site_is_someone_else(
        two_sites: dict[str, Site]) -> None:
    a, b = two_sites["ua"], two_sites["ub"]
    name = f"bob-{_tag()}"
    bob_a, bob_b = await _user(a, name), await _user(b, name)
    try:
        assert (await bob_a.get("/whoami")).json()["user"] == f"{name}@ua"
        assert (await bob_b.get("/whoami")).json()["user"] == f"{name}@ub"
        oids = []
        for level in (1, 2, 3, 4):
            r = await bob_a.post("/objects", json={
                "type": "Filter", "privileges": level,
                "attributes": {"name": f"{name}-{level}"}})
            assert r.status_code == 201, r.text
            oids.append(r.json()["oid"])
        # a's admin makes b's bob a guest of one of a's projects, where b's bob makes one
        project = f"shared-{_tag()}"
        async with a.http() as admin_a:
            assert (await admin_a.post("/projects", json={"name": project})).status_code == 201
            r = await admin_a.post(f"/projects/{project}/members", json={"user": f"{name}@ub"})
            assert r.status_code == 200, r.text
            r = await admin_a.post("/tokens", json={"user": f"{name}@ub"})
            assert r.status_code == 201, r.text
            guest_token = r.json()["token"]
        async with httpx.AsyncClient(base_url=a.catalog, timeout=60, headers={
                "Authorization": f"Bearer {guest_token}"}) as guest:
            assert (await guest.get("/whoami")).json()["user"] == f"{name}@ub"
            for oid in oids[:2]:  # bob@ua's own and his project's: not the guest's
                assert (await guest.get(f"/objects/{oid}")).status_code == 404
            r = await guest.post("/objects", json={
                "type": "Filter", "privileges": 4, "project": project,
                "attributes": {"name": f"{name}-guest"}})
            assert r.status_code == 201, r.text
            by_guest = r.json()["oid"]
            r = await guest.patch(f"/objects/{oids[3]}", json={"is_valid": 0})
            assert r.status_code == 403  # bob@ua's, shared with all: not the guest's
        await converged(two_sites)

        # at b: a's objects shared with every site are there, made by bob@ua; the rest not
        r = await bob_b.get(f"/objects/{oids[3]}")
        assert r.status_code == 200, r.text
        shared = r.json()
        assert (shared["creator"], shared["site"], shared["owner"]) == (name, "ua",
                                                                       f"{name}@ua")
        for oid in oids[:3]:
            assert (await bob_b.get(f"/objects/{oid}")).status_code == 404
        # b's bob is not the creator of a's bob's object: no curation, not in his own scope
        r = await bob_b.patch(f"/objects/{oids[3]}", json={"is_valid": 0})
        assert r.status_code == 403, r.text
        assert f"only {name}@ua" in r.json()["detail"]
        r = await bob_b.post("/query", json={"query": {"cls": "Filter", "scope": "user"}})
        assert r.status_code == 200, r.text
        assert [o["owner"] for o in r.json()["objects"]] == [f"{name}@ub"]  # his guest one
        # at b, the DSL finds a's bob's by name@site; a bare name is b's bob
        for value, want in ((f"{name}@ua", {oids[3]}), (f"{name}@ub", {by_guest}),
                            (name, {by_guest})):
            r = await bob_b.post("/query", json={"query": {"cls": "Filter", "where": {
                "node": "compare", "op": "eq", "path": ["creator"], "value": value}}})
            assert r.status_code == 200, r.text
            assert {o["oid"] for o in r.json()["objects"]} == want, value
        # what b's bob made as a guest at a is his at b too (the same name@site) ...
        r = await bob_b.patch(f"/objects/{by_guest}", json={"comments": "mine",
                                                            "reason": "at home"})
        assert r.status_code == 200, r.text
        assert r.json()["owner"] == f"{name}@ub"
        # ... and not a's bob's, at a
        r = await bob_a.patch(f"/objects/{by_guest}", json={"is_valid": 0})
        assert r.status_code == 403
        # a's bob curates his own at his own site
        r = await bob_a.patch(f"/objects/{oids[3]}", json={"comments": "ok", "reason": "r"})
        assert r.status_code == 200, r.text
        await converged(two_sites)
        async with b.http() as admin_b:
            history = (await admin_b.get(f"/objects/{oids[3]}/history")).json()
            assert [h["who"] for h in history] == [f"{name}@ua"]
            history = (await admin_b.get(f"/objects/{by_guest}/history")).json()
            assert [h["who"] for h in history] == [f"{name}@ub"]
    finally:
        await bob_a.aclose()
        await bob_b.aclose()
