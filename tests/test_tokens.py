"""Tokens: stored hashed, expiring, scoped (a read-only token writes nothing, in any service),
and the admin token a catalog starts with is strong (tests/conftest.py makes a random one)."""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
import os
import subprocess
import sys
import time
from pathlib import Path

import asyncpg
import httpx
import pytest
from conftest import ADMIN_TOKEN, CLI_ENV, Users
from pydantic import SecretStr

from awe_catalog.config import ADMIN_TOKEN_MIN_LENGTH, CatalogSettings, weak_admin_token
from awe_catalog.storage.migrations import apply_migrations
from awecore.stack import PostgresServer

pytestmark = pytest.mark.integration


def test_the_fixtures_admin_token_is_strong() -> None:
    assert len(ADMIN_TOKEN) >= ADMIN_TOKEN_MIN_LENGTH >= 24
    assert weak_admin_token(ADMIN_TOKEN) is None
    for weak in ("change-me", "awe_test_admin_token", "x" * 23):
        with pytest.raises(ValueError, match="AWE_CATALOG_ADMIN_TOKEN"):
            CatalogSettings(admin_token=SecretStr(weak))


async def _token(admin: httpx.AsyncClient, user: str, **body: object) -> dict[str, str]:
    r = await admin.post("/tokens", json={"user": user, **body})
    assert r.status_code == 201, r.text
    return dict(r.json())


async def test_tokens_are_stored_hashed(admin: httpx.AsyncClient,
                                        catalog_settings: CatalogSettings) -> None:
    name = f"hashed-{os.urandom(3).hex()}"
    assert (await admin.post("/users", json={"name": name})).status_code == 201
    made = await _token(admin, name, label="hashed")
    conn = await asyncpg.connect(catalog_settings.database())
    try:
        rows = await conn.fetch("SELECT token_hash FROM tokens WHERE user_name = $1", name)
        everything = await conn.fetchval("SELECT string_agg(t::text, ' ') FROM tokens t")
    finally:
        await conn.close()
    assert [r[0] for r in rows] == [hashlib.sha256(made["token"].encode()).hexdigest()]
    assert made["token"] not in everything


async def test_the_migration_hashes_a_secret_stored_as_it_is(postgres: PostgresServer) -> None:
    """A row written by hand with the secret itself is hashed by migration 0010, once: the
    token then works, and applying the migrations again changes nothing."""
    url = postgres.create_database(f"awe_catalog_tokens_{os.urandom(3).hex()}")
    secret = "awe_" + os.urandom(24).hex()
    conn = await asyncpg.connect(url)
    try:
        await apply_migrations(conn)
        await conn.execute("INSERT INTO projects (name) VALUES ('p')")
        await conn.execute("INSERT INTO users (name, default_project) VALUES ('u', 'p')")
        await conn.execute("INSERT INTO tokens (token_hash, user_name) VALUES ($1, 'u')", secret)
        await conn.execute("DELETE FROM schema_migrations WHERE version LIKE '0010%'")
        await apply_migrations(conn)
        stored = await conn.fetchval("SELECT token_hash FROM tokens WHERE user_name = 'u'")
        assert stored == hashlib.sha256(secret.encode()).hexdigest()
        await conn.execute("DELETE FROM schema_migrations WHERE version LIKE '0010%'")
        await apply_migrations(conn)  # idempotent: a hash is not hashed again
        assert await conn.fetchval(
            "SELECT token_hash FROM tokens WHERE user_name = 'u'") == stored
    finally:
        await conn.close()


async def test_an_expired_token_is_refused(admin: httpx.AsyncClient, users: Users,
                                           catalog_process: str) -> None:
    name = f"exp-{os.urandom(3).hex()}"
    assert (await admin.post("/users", json={"name": name})).status_code == 201
    # expiry must be in the future, with a time zone: 400, never 500
    past = (dt.datetime.now(dt.UTC) - dt.timedelta(minutes=1)).isoformat()
    r = await admin.post("/tokens", json={"user": name, "expires": past})
    assert r.status_code == 400 and "has passed" in r.json()["detail"], r.text
    r = await admin.post("/tokens", json={"user": name, "expires": "2999-01-01T00:00:00"})
    assert r.status_code == 400 and "time zone" in r.json()["detail"], r.text

    expires = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=3)
    made = await _token(admin, name, expires=expires.isoformat())
    assert dt.datetime.fromisoformat(made["expires"]) == expires
    listed = (await admin.get("/tokens", params={"user": name})).json()
    assert [(t["id"], t["scope"]) for t in listed] == [(made["id"], "all")]
    assert dt.datetime.fromisoformat(listed[0]["expires"]) == expires
    # asked of the session's catalog process (another process than `admin`'s) and of this
    # one; both remember it (token caches), and both refuse it once it has expired
    async with httpx.AsyncClient(base_url=catalog_process, timeout=60, headers={
            "Authorization": f"Bearer {made['token']}"}) as other, httpx.AsyncClient(
            transport=admin._transport, base_url="http://catalog", timeout=60,
            headers={"Authorization": f"Bearer {made['token']}"}) as here:
        for client in (other, here):
            for _ in range(2):
                r = await client.get("/whoami")
                assert r.status_code == 200, r.text
            assert dt.datetime.fromisoformat(r.json()["expires"]) == expires
        deadline = time.monotonic() + 60  # only against a hang: expiry is 3 s away
        while dt.datetime.now(dt.UTC) <= expires:
            assert time.monotonic() < deadline
            await asyncio.sleep(0.2)
        for client in (other, here):
            r = await client.get("/whoami")
            assert r.status_code == 401, r.text
            assert r.headers["content-type"] == "application/problem+json"
            assert "expired" in r.json()["detail"]


async def test_a_read_only_token_reads_but_never_writes(admin: httpx.AsyncClient) -> None:
    name = f"reader-{os.urandom(3).hex()}"
    assert (await admin.post("/users", json={"name": name})).status_code == 201
    full = await _token(admin, name, label="full")
    ro = await _token(admin, name, label="ro", scope="read")
    assert ro["scope"] == "read"
    r = await admin.post("/tokens", json={"user": name, "scope": "write-everything"})
    assert r.status_code == 400, r.text
    transport = admin._transport

    def as_(token: str) -> httpx.AsyncClient:
        return httpx.AsyncClient(transport=transport, base_url="http://catalog", timeout=60,
                                 headers={"Authorization": f"Bearer {token}"})

    async with as_(full["token"]) as writer, as_(ro["token"]) as reader:
        r = await writer.post("/objects", json={"type": "Filter", "privileges": 1,
                                                "attributes": {"name": f"ro-{name}"}})
        assert r.status_code == 201, r.text
        oid = r.json()["oid"]
        me = (await reader.get("/whoami")).json()
        assert me["name"] == name and me["scope"] == "read"
        # reads: GET, and the POSTs that only read (queries, many objects by oid)
        got = await reader.get(f"/objects/{oid}")
        assert got.status_code == 200 and got.json()["attributes"]["name"] == f"ro-{name}"
        query = {"cls": "Filter", "where": {"node": "compare", "op": "eq",
                                            "path": ["name"], "value": f"ro-{name}"}}
        r = await reader.post("/query", json={"query": query})
        assert r.status_code == 200, r.text
        assert [o["oid"] for o in r.json()["objects"]] == [oid]
        r = await reader.post("/query/count", json=query)
        assert r.status_code == 200 and r.json()["count"] == 1, r.text
        r = await reader.post("/objects/get", json={"oids": [oid]})
        assert r.status_code == 200 and [o["oid"] for o in r.json()["objects"]] == [oid]
        # every write: 403, naming the scope, and nothing changed
        writes = [
            ("POST", "/objects", {"type": "Filter", "attributes": {"name": f"no-{name}"}}),
            ("POST", "/objects/batch", {"objects": [{"type": "Filter",
                                                     "attributes": {"name": f"no2-{name}"}}]}),
            ("PATCH", f"/objects/{oid}", {"is_valid": 0}),
            ("POST", "/tokens", {"label": "escalate"}),
            ("POST", f"/tokens/{full['id']}/revoke", None),
        ]
        for method, path, body in writes:
            r = await reader.request(method, path, json=body)
            assert r.status_code == 403, (method, path, r.status_code, r.text)
            assert r.headers["content-type"] == "application/problem+json"
            assert "read-only" in r.json()["detail"], r.text
        after = (await writer.get(f"/objects/{oid}")).json()
        assert after["is_valid"] != 0
        assert (await writer.get("/whoami")).status_code == 200  # not revoked
        mine = (await writer.get("/tokens")).json()
        assert sorted(t["label"] for t in mine) == ["full", "ro"]
        r = await writer.post("/query/count", json={"cls": "Filter", "where": {
            "node": "compare", "op": "eq", "path": ["name"], "value": f"no-{name}"}})
        assert r.json()["count"] == 0


async def test_other_services_refuse_writes_of_a_read_only_token(
        admin: httpx.AsyncClient, catalog_process: str, storage_process: str,
        tmp_path: Path) -> None:
    """Storage asks the catalog who a token is (the kit's TokenAuthenticator): the scope
    comes with it, and storage refuses a PUT by a read-only token."""
    name = f"rostore-{os.urandom(3).hex()}"
    assert (await admin.post("/users", json={"name": name})).status_code == 201
    full = await _token(admin, name)
    ro = await _token(admin, name, scope="read")
    path = f"users/{name}/ro-{os.urandom(3).hex()}.txt"
    async with httpx.AsyncClient(base_url=storage_process, timeout=60) as storage:
        r = await storage.put(f"/files/{path}", content=b"by the full token",
                              headers={"Authorization": f"Bearer {ro['token']}"})
        assert r.status_code == 403, r.text
        assert "read-only" in r.json()["detail"]
        r = await storage.put(f"/files/{path}", content=b"by the full token",
                              headers={"Authorization": f"Bearer {full['token']}"})
        assert r.status_code == 201, r.text


def _awe(catalog: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**CLI_ENV, "AWE_TOKEN": ADMIN_TOKEN, "AWE_CATALOG_URL": catalog}
    return subprocess.run([sys.executable, "-m", "awecore.cli", *args], capture_output=True,
                          text=True, env=env, timeout=120, check=False)


async def test_cli_creates_scoped_expiring_tokens(admin: httpx.AsyncClient,
                                                  catalog_process: str) -> None:
    """``awe token create --scope read --expires DAYS``: the token alone on stdout, which
    the catalog then knows as read-only and expiring at that time; bad values are usage
    errors (exit 2) that make no token."""
    name = f"clitok-{os.urandom(3).hex()}"
    assert (await admin.post("/users", json={"name": name})).status_code == 201
    before = dt.datetime.now(dt.UTC)
    r = await asyncio.to_thread(_awe, catalog_process, "token", "create", "--user", name,
                                "--label", "notebook", "--scope", "read", "--expires", "0.5")
    assert r.returncode == 0, r.stderr
    token = r.stdout.strip()
    assert token and "\n" not in token and "scope read" in r.stderr
    async with httpx.AsyncClient(base_url=catalog_process, timeout=60,
                                 headers={"Authorization": f"Bearer {token}"}) as ro:
        me = (await ro.get("/whoami")).json()
        assert (me["name"], me["scope"]) == (name, "read")
        expires = dt.datetime.fromisoformat(me["expires"])
        half_a_day = dt.timedelta(days=0.5)
        assert before + half_a_day <= expires <= dt.datetime.now(dt.UTC) + half_a_day
        r2 = await ro.post("/objects", json={"type": "Filter", "attributes": {"name": name}})
        assert r2.status_code == 403 and "read-only" in r2.json()["detail"]
    r = await asyncio.to_thread(_awe, catalog_process, "token", "create", "--user", name)
    assert r.returncode == 0, r.stderr
    async with httpx.AsyncClient(base_url=catalog_process, timeout=60, headers={
            "Authorization": f"Bearer {r.stdout.strip()}"}) as full:
        me = (await full.get("/whoami")).json()
        assert (me["scope"], me["expires"]) == ("all", None)
    listed = (await admin.get("/tokens", params={"user": name})).json()
    assert sorted((t["label"], t["scope"]) for t in listed) == [("", "all"),
                                                                 ("notebook", "read")]
    for bad in (["--expires", "0"], ["--expires", "-1"], ["--scope", "write-all"]):
        r = await asyncio.to_thread(_awe, catalog_process, "token", "create", "--user", name,
                                    *bad)
        assert r.returncode == 2, (bad, r.stdout, r.stderr)
        assert "Traceback" not in r.stderr
    assert len((await admin.get("/tokens", params={"user": name})).json()) == 2
