"""Session fixtures: a real PostgreSQL and a real Kafka-protocol broker, from the wheels.

The catalog runs in-process under its lifespan for API tests (httpx's ASGI transport), and
as real processes (uvicorn, the relay) where the bus or the Python client must cooperate.
"""

from __future__ import annotations

import os
import secrets
import shutil
import sys
import tempfile
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest
from asgi_lifespan import LifespanManager
from pydantic import SecretStr

import awecore as awe
from awe_catalog.config import CatalogSettings
from awe_catalog.main import create_app
from awecore.stack import KEEP_ALIVE_SECONDS, Broker, PostgresServer, ServiceProcess, free_port

#: the bootstrap admin's token: random per session, as the local stack makes it (the catalog
#: refuses a short or default one at start-up)
ADMIN_TOKEN = "awe_" + secrets.token_urlsafe(32)
# clients in tests read only what the tests set, never a developer's .awe/awe.env
os.environ["AWE_STATE_DIR"] = tempfile.mkdtemp(prefix="awe-test-state-")
#: the environment of a CLI run by a test: nothing else leaks in
CLI_ENV = {"PATH": "/usr/bin:/bin", "AWE_STATE_DIR": os.environ["AWE_STATE_DIR"]}


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresServer]:
    # not under pytest's tmp folder: that is private to root, and as root PostgreSQL runs as
    # 'nobody', who must be able to reach its data folder
    folder = Path(tempfile.mkdtemp(prefix="awe-test-pg-"))
    folder.chmod(0o711)
    server = PostgresServer(folder / "data")
    server.start()
    try:
        yield server
    finally:
        server.stop()
        shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture(scope="session")
def broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Broker]:
    b = Broker(logfile=tmp_path_factory.mktemp("broker") / "broker.log")
    b.start()
    try:
        yield b
    finally:
        b.stop()


@pytest.fixture(scope="session")
def catalog_settings(postgres: PostgresServer, broker: Broker) -> CatalogSettings:
    return CatalogSettings(
        site="test",
        database_url=SecretStr(postgres.create_database("awe_catalog_test")),
        kafka_bootstrap_servers=broker.bootstrap_servers,
        admin_token=SecretStr(ADMIN_TOKEN),
        max_batch=5000,
        max_body_bytes=8 * 1024 * 1024,
        relay_poll_seconds=0.2,
        relay_lag_limit=0,  # the session's catalog runs without its relay: lag not checked
        log_level="WARNING",
    )


@pytest.fixture(scope="session")
async def catalog_app(catalog_settings: CatalogSettings) -> AsyncIterator[object]:
    app = create_app(catalog_settings)
    async with LifespanManager(app, startup_timeout=120, shutdown_timeout=120) as manager:
        yield manager.app


def _client(app: object, token: str | None) -> httpx.AsyncClient:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app),  # type: ignore[arg-type]
                             base_url="http://catalog", headers=headers, timeout=60)


@pytest.fixture(scope="session")
async def admin(catalog_app: object) -> AsyncIterator[httpx.AsyncClient]:
    async with _client(catalog_app, ADMIN_TOKEN) as client:
        yield client


class Users:
    """Makes users with their own token on demand (each test gets fresh names)."""

    def __init__(self, app: object, admin: httpx.AsyncClient) -> None:
        self.app = app
        self.admin = admin
        self.clients: list[httpx.AsyncClient] = []
        self.n = 0

    async def make(self, prefix: str, project: str | None = None) -> httpx.AsyncClient:
        self.n += 1
        name = f"{prefix}{self.n}-{os.urandom(3).hex()}"
        if project is not None:
            await self.admin.post("/projects", json={"name": project})
        r = await self.admin.post("/users", json={"name": name, "project": project})
        assert r.status_code == 201, r.text
        r = await self.admin.post("/tokens", json={"user": name})
        assert r.status_code == 201, r.text
        client = _client(self.app, r.json()["token"])
        client.headers["X-Test-User"] = name
        self.clients.append(client)
        return client

    async def aclose(self) -> None:
        for c in self.clients:
            await c.aclose()


@pytest.fixture
async def users(catalog_app: object, admin: httpx.AsyncClient) -> AsyncIterator[Users]:
    u = Users(catalog_app, admin)
    yield u
    await u.aclose()


def service_env(settings: CatalogSettings) -> dict[str, str]:
    return {
        **os.environ,
        "AWE_SITE": settings.site,
        "AWE_CATALOG_DATABASE_URL": settings.database_url.get_secret_value(),
        "AWE_CATALOG_KAFKA_BOOTSTRAP_SERVERS": settings.kafka_bootstrap_servers,
        "AWE_CATALOG_ADMIN_TOKEN": ADMIN_TOKEN,
        "AWE_CATALOG_RELAY_POLL_SECONDS": "0.2",
        "AWE_CATALOG_RELAY_LAG_LIMIT": "0",  # tests start the relay only where they need it
        "AWE_CATALOG_LOG_LEVEL": "DEBUG",
    }


#: the session's service processes by name, for tests that must stop or pause one
PROCESSES: dict[str, ServiceProcess] = {}


def start_service(name: str, app: str, env: dict[str, str],
                  logdir: Path) -> tuple[ServiceProcess, str]:
    """One of our apps under uvicorn on a free port, started and healthy; returns its URL."""
    port = free_port()
    proc = ServiceProcess(name, [sys.executable, "-m", "uvicorn", app, "--factory", "--host",
                                 "127.0.0.1", "--port", str(port), "--timeout-keep-alive",
                                 str(KEEP_ALIVE_SECONDS)], env,
                          logdir / f"{name}.log", health_url=f"http://127.0.0.1:{port}/readyz")
    proc.start()
    return proc, f"http://127.0.0.1:{port}"


@pytest.fixture(scope="session")
def catalog_process(catalog_settings: CatalogSettings,
                    tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The catalog as a real uvicorn process; yields its URL."""
    proc, url = start_service("catalog", "awe_catalog.main:create_app",
                              service_env(catalog_settings), tmp_path_factory.mktemp("logs"))
    PROCESSES["catalog"] = proc
    try:
        yield url
    finally:
        proc.stop()


@pytest.fixture(scope="session")
def storage_process(catalog_process: str,
                    tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    admin = httpx.Client(base_url=catalog_process,
                         headers={"Authorization": f"Bearer {ADMIN_TOKEN}"})
    admin.post("/users", json={"name": "ingest-svc", "is_service": True})
    token = admin.post("/tokens", json={"user": "ingest-svc"}).json()["token"]
    root = Path(tempfile.mkdtemp(prefix="awe-ingest-"))
    env = {**os.environ, "AWE_SITE": "test", "AWE_STORAGE_ROOT": str(root),
           "AWE_STORAGE_CATALOG_URL": catalog_process, "AWE_STORAGE_SERVICE_TOKEN": token}
    proc, url = start_service("storage", "awe_storage.main:create_app", env,
                              tmp_path_factory.mktemp("storage"))
    PROCESSES["storage"] = proc
    try:
        yield url
    finally:
        proc.stop()
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
def session(catalog_process: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[awe.CatalogClient]:
    """The Python client connected as the admin, as a script would be after awe.connect()."""
    monkeypatch.setenv("AWE_CATALOG_URL", catalog_process)
    monkeypatch.setenv("AWE_TOKEN", ADMIN_TOKEN)
    client = awe.connect()
    yield client
    client.close()
