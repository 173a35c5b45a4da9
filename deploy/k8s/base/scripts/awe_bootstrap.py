"""Bootstrap of one AWE site: what the Job ``awe-bootstrap`` runs. Idempotent: run it again
at will (``kubectl delete job awe-bootstrap`` and apply the overlay again).

1. Waits for PostgreSQL, then creates the databases named in ``AWE_CATALOG_DATABASE_URL``,
   ``AWE_LINEAGE_DATABASE_URL``, ``AWE_FEDERATION_DATABASE_URL`` and
   ``AWE_COMPUTE_DATABASE_URL`` that do not exist yet.
2. Applies each service's migrations with the code and the advisory lock the service itself
   uses at start-up: a service starting meanwhile waits, nothing is applied twice.
3. Waits for the catalog, then makes sure storage, lineage, federation and compute each have a
   service account in it and a token it accepts, kept in the Secret ``awe-service-tokens``
   (key: the service). A token that is there and accepted is kept; one that is missing or
   refused is replaced by a new one.
4. For each peer site in ``AWE_BOOTSTRAP_PEERS`` (``[{"site": ..., "namespace": ...}]``): a
   service account ``peer-<peer site>`` in this catalog and its token in the Secret
   ``awe-peer-tokens`` of the peer's namespace (key: this site), with which the peer's
   federation follows this site and the peer's storage fetches files from it. It waits for
   the peer's overlay to be applied (the Secret, and the Role that lets this Job patch it).

It runs in the services' image (python, asyncpg, httpx and the services' packages, whose
migrations it applies). Secrets are read and patched through the Kubernetes API with the
token of the Job's own ServiceAccount, which may get and patch those Secrets and nothing
else. Tokens are never printed.
"""

from __future__ import annotations

import asyncio
import base64
import datetime as dt
import importlib
import json
import os
import re
import sys
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import TypeVar
from urllib.parse import quote, urlsplit, urlunsplit

import asyncpg
import httpx

from awecore.server import pg

__all__ = ["BootstrapError", "Catalog", "Config", "Peer", "Report", "Secrets", "bootstrap",
           "main"]

#: the services that call the catalog as themselves (as in the local stack)
SERVICES = ("storage", "lineage", "federation", "compute")
#: database -> (package holding migrations/, module and name of the service's migration lock)
DATABASES = {
    "catalog": ("awe_catalog", "awe_catalog.storage.migrations", "_LOCK"),
    "lineage": ("awe_lineage", "awe_lineage.factory", "_MIGRATIONS_LOCK"),
    "federation": ("awe_federation", "awe_federation.factory", "_MIGRATIONS_LOCK"),
    "compute": ("awe_compute", "awe_compute.factory", "_MIGRATIONS_LOCK"),
}
SERVICE_ACCOUNT = Path("/var/run/secrets/kubernetes.io/serviceaccount")
_DB_NAME = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")
#: PostgreSQL not (yet) up: waited for; anything else (a wrong password) fails at once
_PG_NOT_YET = (OSError, TimeoutError, asyncpg.CannotConnectNowError,
               asyncpg.TooManyConnectionsError)

T = TypeVar("T")


def say(message: str) -> None:
    print(f"awe-bootstrap: {message}", flush=True)


class BootstrapError(Exception):
    """A step failed for good; the message says which and why."""


class NotYet(Exception):
    """Something the bootstrap waits for is not there yet."""


@dataclass(frozen=True)
class Peer:
    site: str
    namespace: str


@dataclass(frozen=True)
class Config:
    site: str
    namespace: str
    database_urls: dict[str, str]
    admin_token: str
    catalog_url: str = "http://catalog:8000"
    tokens_secret: str = "awe-service-tokens"
    peer_tokens_secret: str = "awe-peer-tokens"
    peers: tuple[Peer, ...] = ()
    wait_seconds: float = 900.0

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> Config:
        names = {db: f"AWE_{db.upper()}_DATABASE_URL" for db in DATABASES}
        missing = [n for n in ("AWE_SITE", "AWE_CATALOG_ADMIN_TOKEN", *names.values())
                   if not env.get(n)]
        if missing:
            raise BootstrapError(f"not set: {', '.join(missing)}")
        namespace = env.get("POD_NAMESPACE") or _read(SERVICE_ACCOUNT / "namespace")
        if not namespace:
            raise BootstrapError("POD_NAMESPACE is not set (the Job passes it from its pod)")
        try:
            peers = tuple(Peer(str(p["site"]), str(p["namespace"]))
                          for p in json.loads(env.get("AWE_BOOTSTRAP_PEERS") or "[]"))
        except (ValueError, KeyError, TypeError) as exc:
            raise BootstrapError('AWE_BOOTSTRAP_PEERS must be a JSON list of '
                                 '{"site": ..., "namespace": ...}') from exc
        return cls(
            site=env["AWE_SITE"], namespace=namespace,
            database_urls={db: env[n] for db, n in names.items()},
            admin_token=env["AWE_CATALOG_ADMIN_TOKEN"],
            catalog_url=env.get("AWE_BOOTSTRAP_CATALOG_URL") or cls.catalog_url,
            tokens_secret=env.get("AWE_BOOTSTRAP_TOKENS_SECRET") or cls.tokens_secret,
            peer_tokens_secret=(env.get("AWE_BOOTSTRAP_PEER_TOKENS_SECRET")
                                or cls.peer_tokens_secret),
            peers=peers,
            wait_seconds=float(env.get("AWE_BOOTSTRAP_WAIT_SECONDS") or cls.wait_seconds),
        )


def _read(path: Path) -> str:
    try:
        return path.read_text().strip()
    except OSError:
        return ""


async def retry(what: str, attempt: Callable[[], Awaitable[T]], deadline: float,
                waits_for: tuple[type[BaseException], ...], pause: float = 3.0) -> T:
    """``attempt()`` until it stops raising one of ``waits_for``, or the deadline."""
    said = ""
    while True:
        try:
            return await attempt()
        except waits_for as exc:
            reason = str(exc) or type(exc).__name__
            if time.monotonic() >= deadline:
                raise BootstrapError(f"gave up waiting for {what}: {reason}") from exc
            if reason != said:  # once per reason, not once per attempt
                say(f"waiting for {what}: {reason}")
                said = reason
            await asyncio.sleep(pause)


# -- 1 and 2: databases and migrations -----------------------------------------------------
def _server_and_name(url: str) -> tuple[str, str]:
    """The URL of the server's maintenance database, and the database ``url`` names."""
    parts = urlsplit(url)
    name = parts.path.lstrip("/")
    if not _DB_NAME.fullmatch(name):
        raise BootstrapError(f"unusable database name {name!r} in a database URL")
    return urlunsplit(parts._replace(path="/postgres")), name


async def create_databases(urls: Mapping[str, str], deadline: float) -> list[str]:
    """Create the databases that are missing; returns those created now."""
    created: list[str] = []
    for url in urls.values():
        server, name = _server_and_name(url)
        conn = await retry("PostgreSQL", partial(asyncpg.connect, server, timeout=10),
                           deadline, _PG_NOT_YET)
        try:
            if not await conn.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", name):
                try:
                    await conn.execute(f'CREATE DATABASE "{name}"')  # name checked above
                    created.append(name)
                except asyncpg.DuplicateDatabaseError:
                    pass  # made by someone else meanwhile
        finally:
            await conn.close()
    return created


async def apply_migrations(urls: Mapping[str, str]) -> dict[str, list[str]]:
    """Apply every service's pending migrations; returns the versions applied now."""
    applied: dict[str, list[str]] = {}
    for db, url in urls.items():
        package, module, lock_name = DATABASES[db]
        lock = int(getattr(importlib.import_module(module), lock_name))
        conn = await asyncpg.connect(url, timeout=30)
        try:
            applied[db] = await pg.apply_migrations(conn, package, lock)
        finally:
            await conn.close()
    return applied


# -- 3 and 4: service accounts and tokens -------------------------------------------------
class Catalog:
    """The few calls of the catalog's API the bootstrap makes, as its admin."""

    def __init__(self, http: httpx.AsyncClient, admin_token: str) -> None:
        self.http = http
        self.admin = {"Authorization": f"Bearer {admin_token}"}

    async def wait(self, deadline: float) -> None:
        async def healthy() -> None:
            r = await self.http.get("/health")
            if r.status_code != 200:
                raise NotYet(f"GET /health answered {r.status_code}")

        await retry(f"the catalog at {self.http.base_url}", healthy, deadline,
                    (NotYet, httpx.TransportError))

    async def accepts(self, token: str, user: str) -> bool:
        """Does the catalog take ``token`` as the service account ``user``?"""
        r = await self.http.get("/whoami", headers={"Authorization": f"Bearer {token}"})
        if r.status_code in (401, 403):
            return False
        if r.status_code != 200:
            raise BootstrapError(f"GET /whoami answered {r.status_code}: {r.text[:300]}")
        me = r.json()
        return bool(me.get("name") == user and me.get("is_service"))

    async def service_account(self, user: str) -> None:
        r = await self.http.post("/users", json={"name": user, "is_service": True},
                                 headers=self.admin)
        if r.status_code == 201:
            say(f"made the service account {user}")
            return
        if r.status_code != 409:
            raise BootstrapError(f"cannot make the service account {user}: "
                                 f"{r.status_code} {r.text[:300]}")
        got = await self.http.get(f"/users/{quote(user)}", headers=self.admin)
        if got.status_code != 200 or not got.json().get("is_service"):
            raise BootstrapError(f"a user {user} exists and is not a service account: "
                                 f"rename it, or make it one, and run the bootstrap again")

    async def new_token(self, user: str, label: str) -> str:
        r = await self.http.post("/tokens", json={"user": user, "label": label},
                                 headers=self.admin)
        if r.status_code != 201:
            raise BootstrapError(f"cannot make a token for {user}: "
                                 f"{r.status_code} {r.text[:300]}")
        return str(r.json()["token"])


class Secrets:
    """Secrets through the Kubernetes API: read, and patch (the only verbs the Job has)."""

    def __init__(self, http: httpx.AsyncClient,
                 token: Callable[[], str] | None = None) -> None:
        self.http = http
        self.token = token  # read before every request: the kubelet renews the file

    @classmethod
    def in_cluster(cls, env: Mapping[str, str]) -> Secrets:
        host, port = env.get("KUBERNETES_SERVICE_HOST"), env.get("KUBERNETES_SERVICE_PORT")
        token_file = SERVICE_ACCOUNT / "token"
        if not host or not _read(token_file):
            raise BootstrapError(f"no Kubernetes API here: KUBERNETES_SERVICE_HOST and "
                                 f"{token_file} (the Job mounts it) are needed")
        host = f"[{host}]" if ":" in host else host
        return cls(httpx.AsyncClient(base_url=f"https://{host}:{port or 443}", timeout=30,
                                     verify=str(SERVICE_ACCOUNT / "ca.crt")),
                   partial(_read, token_file))

    def _auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token()}"} if self.token else {}

    @staticmethod
    def _path(namespace: str, name: str) -> str:
        return f"/api/v1/namespaces/{quote(namespace)}/secrets/{quote(name)}"

    async def read(self, namespace: str, name: str) -> dict[str, str]:
        r = await self.http.get(self._path(namespace, name), headers=self._auth())
        if r.status_code in (403, 404):
            raise NotYet(f"Secret {namespace}/{name}: {r.status_code} "
                         f"({'no such Secret' if r.status_code == 404 else 'not allowed'})")
        if r.status_code != 200:
            raise BootstrapError(f"cannot read Secret {namespace}/{name}: "
                                 f"{r.status_code} {r.text[:300]}")
        data = r.json().get("data") or {}
        return {k: base64.b64decode(v).decode() for k, v in data.items()}

    async def write(self, namespace: str, name: str, values: Mapping[str, str]) -> None:
        """Set these keys (others stay)."""
        patch = {"data": {k: base64.b64encode(v.encode()).decode() for k, v in values.items()}}
        r = await self.http.patch(self._path(namespace, name), content=json.dumps(patch),
                                  params={"fieldManager": "awe-bootstrap"},
                                  headers={**self._auth(),
                                           "Content-Type": "application/merge-patch+json"})
        if r.status_code != 200:
            raise BootstrapError(f"cannot write Secret {namespace}/{name}: "
                                 f"{r.status_code} {r.text[:300]}")

    async def aclose(self) -> None:
        await self.http.aclose()


async def ensure_tokens(catalog: Catalog, secrets: Secrets, namespace: str, secret: str,
                        users: Mapping[str, str], label: str, deadline: float) -> list[str]:
    """Make sure Secret ``namespace/secret`` holds, under each key of ``users``, a token of
    that service account which the catalog accepts; returns the keys given a new token."""
    current = await retry(f"Secret {namespace}/{secret}",
                          lambda: secrets.read(namespace, secret), deadline, (NotYet,))
    fresh: dict[str, str] = {}
    for key, user in users.items():
        token = current.get(key)
        if token and await catalog.accepts(token, user):
            continue
        await catalog.service_account(user)
        fresh[key] = await catalog.new_token(user, label)
    if fresh:
        await secrets.write(namespace, secret, fresh)
        say(f"new tokens in Secret {namespace}/{secret}: {', '.join(sorted(fresh))}")
    else:
        say(f"the tokens in Secret {namespace}/{secret} are all accepted: kept")
    return [f"{namespace}/{secret}:{k}" for k in fresh]


@dataclass
class Report:
    created: list[str] = field(default_factory=list)
    migrated: dict[str, list[str]] = field(default_factory=dict)
    tokens: list[str] = field(default_factory=list)


async def bootstrap(config: Config, secrets: Secrets, catalog_http: httpx.AsyncClient) -> Report:
    deadline = time.monotonic() + config.wait_seconds
    report = Report()
    report.created = await create_databases(config.database_urls, deadline)
    say(f"databases: created {report.created or 'none'}; "
        f"{', '.join(sorted(config.database_urls))} are there")
    report.migrated = await apply_migrations(config.database_urls)
    say("migrations: " + "; ".join(f"{db} +{len(v)}" for db, v in report.migrated.items()))
    catalog = Catalog(catalog_http, config.admin_token)
    await catalog.wait(deadline)
    label = f"k8s bootstrap of {config.site}, {dt.date.today().isoformat()}"
    report.tokens += await ensure_tokens(catalog, secrets, config.namespace,
                                         config.tokens_secret, {s: s for s in SERVICES},
                                         label, deadline)
    for peer in config.peers:  # last: the site itself is complete without its peers
        report.tokens += await ensure_tokens(
            catalog, secrets, peer.namespace, config.peer_tokens_secret,
            {config.site: f"peer-{peer.site}"}, f"{label}, for {peer.site}", deadline)
    return report


def main(env: Mapping[str, str] | None = None) -> int:
    env = os.environ if env is None else env

    async def run() -> None:
        config = Config.from_env(env)
        secrets = Secrets.in_cluster(env)
        try:
            async with httpx.AsyncClient(base_url=config.catalog_url, timeout=30) as http:
                await bootstrap(config, secrets, http)
        finally:
            await secrets.aclose()

    try:
        asyncio.run(run())
    except BootstrapError as exc:
        say(f"failed: {exc}")
        return 1
    say("done")
    return 0


if __name__ == "__main__":
    sys.exit(main())
