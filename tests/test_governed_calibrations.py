"""Best calibrations are governed (issue 15): the calibration a site's users get as the best
is the pipeline's or one a calibration scientist approved; a user's own calibration, even
shared with the whole site, is the best only for that user. A calibration scientist (a role
in a project) curates the project's products; a plain member does not.

Against the catalog app on the session's PostgreSQL (``seed`` registers the pipeline's
biases as the admin)."""

from __future__ import annotations

import uuid

import httpx
import pytest
from conftest import Users
from seed import NIGHT, seed

pytestmark = pytest.mark.integration


async def best(client: httpx.AsyncClient, chip: str) -> str:
    r = await client.get("/calibrations/BiasFrame/best",
                         params={"chip": chip, "time": NIGHT.isoformat()})
    assert r.status_code == 200, r.text
    return str(r.json()["oid"])


async def test_a_users_calibration_is_best_only_for_them_until_approved(
        admin: httpx.AsyncClient, users: Users) -> None:
    s = await seed(admin)
    chip = f"ccd53-{s.tag}"
    pipeline = s.bias[f"{chip}/new"]
    project = f"cal-{uuid.uuid4().hex[:6]}"
    bob = await users.make("bob", project)
    alice = await users.make("alice", project)
    carol = await users.make("carol", project)  # will be the project's calibration scientist
    r = await admin.post(f"/projects/{project}/members",
                         json={"user": carol.headers["X-Test-User"], "role": "calibration"})
    assert r.status_code == 200, r.text
    assert r.json()["calibration_scientists"] == [carol.headers["X-Test-User"]]
    # bob registers a newer bias covering the night, shared with the whole site
    r = await bob.post("/objects", json={
        "type": "BiasFrame", "privileges": 3, "project": project,
        "refs": {"chip": s.chips[chip]}, "timestamp_start": NIGHT.isoformat(),
        "timestamp_end": NIGHT.isoformat().replace("12:00", "23:00"),
        "attributes": {"imstat": {"stdev": 1.0}}})
    assert r.status_code == 201, r.text
    bobs = r.json()["oid"]
    assert (await alice.get(f"/objects/{bobs}")).status_code == 200  # alice sees it...
    assert await best(alice, chip) == pipeline  # ...but it is not her best
    assert await best(admin, chip) == pipeline  # nor the pipeline's
    assert await best(bob, chip) == bobs  # in bob's own context, his is the newest
    many = await alice.post("/calibrations/best", json={"requests": [
        {"cls": "BiasFrame", "chip": chip, "time": NIGHT.isoformat()}]})
    assert many.status_code == 200, many.text
    assert many.json()["objects"][0]["oid"] == pipeline  # the batch look-up alike
    # alice, a plain member, may not curate bob's product; carol, the calibration
    # scientist, may, and her approval makes it everybody's best
    r = await alice.patch(f"/objects/{bobs}", json={"is_valid": 1, "reason": "looks fine"})
    assert r.status_code == 403, r.text
    r = await carol.patch(f"/objects/{bobs}", json={"is_valid": 1, "reason": "checked"})
    assert r.status_code == 200, r.text
    assert await best(alice, chip) == bobs
    assert await best(admin, chip) == bobs
    # a calibration scientist curates only their project's products
    r = await carol.patch(f"/objects/{pipeline}", json={"comments": "not mine to curate"})
    assert r.status_code == 403, r.text


async def test_roles_are_given_by_admins_and_change(admin: httpx.AsyncClient,
                                                    users: Users) -> None:
    project = f"role-{uuid.uuid4().hex[:6]}"
    dave = await users.make("dave", project)
    name = dave.headers["X-Test-User"]
    r = await dave.post(f"/projects/{project}/members",
                        json={"user": name, "role": "calibration"})
    assert r.status_code == 403, r.text  # not by oneself
    r = await admin.post(f"/projects/{project}/members", json={"user": name, "role": "chief"})
    assert r.status_code == 400 and "body.role" in r.text, r.text
    r = await admin.post(f"/projects/{project}/members",
                         json={"user": name, "role": "calibration"})
    assert r.json()["calibration_scientists"] == [name]
    r = await admin.post(f"/projects/{project}/members", json={"user": name, "role": "member"})
    assert r.json()["calibration_scientists"] == [] and name in r.json()["members"]
