"""Each catalog process remembers who a token is (services/tokens.py): a revocation or a
membership made through one process is seen by every other, not after the cache's 30 s."""

from __future__ import annotations

import os
import time

import httpx
import pytest

pytestmark = pytest.mark.integration

#: far below the cache's lifetime (30 s): what arrives within it came by notification
DEADLINE = 10.0


async def until(what: str, check: httpx.AsyncClient, want: int, path: str) -> None:
    """Poll ``path`` on the other process until it answers with status ``want`` (the
    notification travels on its own); the deadline only guards against a hang."""
    deadline = time.monotonic() + DEADLINE
    while True:
        r = await check.get(path)
        got = r.status_code
        if got == want:
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: still {got!r} after {DEADLINE} s ({r.text})")


async def test_revocation_and_membership_reach_every_process(
        admin: httpx.AsyncClient, catalog_process: str) -> None:
    name = f"cache-{os.urandom(3).hex()}"
    assert (await admin.post("/users", json={"name": name})).status_code == 201
    made = (await admin.post("/tokens", json={"user": name})).json()
    project = f"p-{os.urandom(3).hex()}"
    assert (await admin.post("/projects", json={"name": project})).status_code == 201
    r = await admin.post("/objects", json={"type": "Filter", "project": project,
                                           "privileges": 2, "attributes": {"name": project}})
    assert r.status_code == 201, r.text
    oid = r.json()["oid"]
    async with httpx.AsyncClient(base_url=catalog_process, timeout=60, headers={
            "Authorization": f"Bearer {made['token']}"}) as other:
        # the other process knows the token now (asked twice: the second from memory),
        # and the caller is in no project of the object's
        for _ in range(2):
            assert (await other.get("/whoami")).status_code == 200
            assert (await other.get(f"/objects/{oid}")).status_code == 404
        # a membership given through this process: the other lets the caller see it
        r = await admin.post(f"/projects/{project}/members", json={"user": name})
        assert r.status_code == 200, r.text
        await until("membership", other, 200, f"/objects/{oid}")
        assert (await other.get(f"/objects/{oid}")).json()["project"] == project
        # revoked through this process: the other refuses the token
        r = await admin.post(f"/tokens/{made['id']}/revoke")
        assert r.status_code == 200, r.text
        await until("revocation", other, 401, "/whoami")
        r = await other.get(f"/objects/{oid}")
        assert r.status_code == 401 and r.json()["error"] == "unauthorized"
