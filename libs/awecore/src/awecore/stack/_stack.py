"""``awe up`` / ``awe down`` / ``awe status``: the whole local stack on one machine.

State lives in one folder (default ``.awe``, git-ignored): PostgreSQL's data, logs, the
ports and pids of every part (``stack.json``) and the settings clients read (``awe.env``).
"""

from __future__ import annotations

import json
import os
import secrets
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import httpx
from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from ._broker import Broker
from ._ports import free_port
from ._postgres import PostgresServer
from ._process import ServiceProcess

__all__ = ["PartStatus", "Stack", "StackSettings"]


def _nearest_state_dir() -> Path:
    """``.awe`` in the current folder or its nearest parent that has one (``awe up`` in a
    subfolder of a project runs the project's stack, not a new one)."""
    here = Path.cwd().resolve()
    for folder in (here, *here.parents):
        if (folder / ".awe" / "stack.json").is_file() or (folder / ".awe" / "awe.env").is_file():
            return folder / ".awe"
    return Path(".awe")


class StackSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="AWE_", extra="ignore")

    #: the nearest ``.awe`` from the current folder up, as ``awe.connect()`` finds it;
    #: ``.awe`` here if there is none
    state_dir: Path = Field(default_factory=lambda: _nearest_state_dir())
    site: str = "local"
    postgres_url: str | None = None
    kafka_bootstrap_servers: str | None = None
    catalog_port: int | None = None
    postgres_port: int | None = None
    broker_port: int | None = None


@dataclass
class PartStatus:
    name: str
    pid: int | None
    running: bool
    address: str
    log: str


@dataclass(frozen=True)
class _Service:
    """One of our services: how to start it and whether it serves HTTP."""

    name: str
    module: str
    http: bool


#: Our services in start order (storage, compute, ... join this table as they arrive).
SERVICES = (
    _Service("catalog", "awe_catalog.main:create_app", http=True),
    _Service("catalog-relay", "awe_catalog.relay", http=False),
    _Service("storage", "awe_storage.main:create_app", http=True),
    _Service("lineage", "awe_lineage.main:create_app", http=True),
    _Service("federation", "awe_federation.main:create_app", http=True),
    _Service("compute", "awe_compute.main:create_app", http=True),
    _Service("compute-worker-1", "awe_compute.worker", http=False),
    _Service("compute-worker-2", "awe_compute.worker", http=False),
    _Service("vo", "awe_vo.main:create_app", http=True),
    _Service("portal", "awe_portal.main:create_app", http=True),
)
#: How long a service keeps an idle connection open: longer than clients keep theirs (httpx:
#: 5 s, uvicorn's default too), so that a client never sends a request on a connection the
#: server is closing at that moment (a transport error under load otherwise; the same in
#: deploy/k8s and deploy/docker)
KEEP_ALIVE_SECONDS = 65
#: Services that call the catalog as themselves get a service account and token.
SERVICE_ACCOUNTS = ("storage", "lineage", "federation", "compute", "vo")


class Stack:
    def __init__(self, settings: StackSettings | None = None) -> None:
        self.settings = settings or StackSettings()
        self.dir = self.settings.state_dir.absolute()
        self.logs = self.dir / "logs"
        self.state_file = self.dir / "stack.json"
        self.env_file = self.dir / "awe.env"

    # -- state -------------------------------------------------------------------------
    def _load(self) -> dict[str, Any]:
        if self.state_file.exists():
            data: dict[str, Any] = json.loads(self.state_file.read_text())
            return data
        return {"ports": {}, "pids": {}}

    def _save(self, state: dict[str, Any]) -> None:
        self.dir.mkdir(parents=True, exist_ok=True)
        _write_private(self.state_file, json.dumps(state, indent=2))

    def _postgres(self, state: dict[str, Any]) -> PostgresServer:
        port = state["ports"].get("postgres") or self.settings.postgres_port
        return PostgresServer(self.dir / "postgres", port=port, durable=True,
                              logfile=self.logs / "postgres.log")

    def _broker(self, state: dict[str, Any]) -> Broker:
        port = state["ports"].get("broker") or self.settings.broker_port
        return Broker(port=port, logfile=self.logs / "broker.log",
                      pid=state["pids"].get("broker"))

    def _service(self, svc: _Service, state: dict[str, Any], env: dict[str, str]) -> \
            ServiceProcess:
        port = state["ports"].get(svc.name)
        if svc.http:
            argv = [sys.executable, "-m", "uvicorn", svc.module, "--factory", "--host",
                    "127.0.0.1", "--port", str(port), "--timeout-keep-alive",
                    str(KEEP_ALIVE_SECONDS)]
            health = f"http://127.0.0.1:{port}/readyz"
        else:
            argv, health = [sys.executable, "-m", svc.module], None
        return ServiceProcess(svc.name, argv, env, self.logs / f"{svc.name}.log", health,
                              pid=state["pids"].get(svc.name))

    # -- commands ----------------------------------------------------------------------
    def up(self, services: bool = True) -> dict[str, str]:
        """Start what is not running; returns the client settings written to awe.env."""
        self.dir.mkdir(parents=True, exist_ok=True)
        self.logs.mkdir(exist_ok=True)
        state = self._load()
        state.setdefault("token", "awe_" + secrets.token_urlsafe(32))
        if self.settings.postgres_url:  # an external server: its databases must exist
            base = urlsplit(self.settings.postgres_url)
            db_url, lineage_db, federation_db, compute_db = (
                urlunsplit(base._replace(path=f"/{name}"))
                for name in ("awe_catalog", "awe_lineage", "awe_federation", "awe_compute"))
        else:
            pg = self._postgres(state)
            pg.start()
            state["ports"]["postgres"] = pg.port
            db_url = pg.create_database("awe_catalog")
            lineage_db = pg.create_database("awe_lineage")
            federation_db = pg.create_database("awe_federation")
            compute_db = pg.create_database("awe_compute")
        if self.settings.kafka_bootstrap_servers:
            kafka = self.settings.kafka_bootstrap_servers
        else:
            broker = self._broker(state)
            broker.start()
            state["ports"]["broker"], state["pids"]["broker"] = broker.port, broker.pid
            kafka = broker.bootstrap_servers
        self._save(state)
        env = {
            "AWE_SITE": self.settings.site,
            "AWE_CATALOG_DATABASE_URL": db_url,
            "AWE_CATALOG_KAFKA_BOOTSTRAP_SERVERS": kafka,
            "AWE_CATALOG_ADMIN_TOKEN": state["token"],
            "AWE_LINEAGE_DATABASE_URL": lineage_db,
            "AWE_FEDERATION_DATABASE_URL": federation_db,
            "AWE_COMPUTE_DATABASE_URL": compute_db,
            # the VO service reads the catalog's own database (read-only transactions)
            "AWE_VO_DATABASE_URL": db_url,
        }
        # users' product modules (beside installed ones, found by their entry points): the
        # compute service and its workers load them, `awe classes register` too (awe.env)
        products = {k: os.environ[k] for k in ("AWE_PRODUCT_MODULES",) if os.environ.get(k)}
        env.update(products)
        if services:
            for svc in SERVICES:
                if svc.http and not state["ports"].get(svc.name):
                    state["ports"][svc.name] = (
                        self.settings.catalog_port if svc.name == "catalog" else None
                    ) or free_port()
                if svc.name in SERVICE_ACCOUNTS:
                    env.update(self._service_env(svc.name, state, env))
                if svc.name == "portal":
                    env.update(self._portal_env(state))
                proc = self._service(svc, state, {**os.environ, **env})
                proc.start()
                state["pids"][svc.name] = proc.pid
                self._save(state)
        client = {
            "AWE_SITE": self.settings.site,
            "AWE_CATALOG_URL": f"http://127.0.0.1:{state['ports'].get('catalog')}",
            "AWE_STORAGE_URL": f"http://127.0.0.1:{state['ports'].get('storage')}",
            "AWE_LINEAGE_URL": f"http://127.0.0.1:{state['ports'].get('lineage')}",
            "AWE_FEDERATION_URL": f"http://127.0.0.1:{state['ports'].get('federation')}",
            "AWE_COMPUTE_URL": f"http://127.0.0.1:{state['ports'].get('compute')}",
            "AWE_VO_URL": f"http://127.0.0.1:{state['ports'].get('vo')}",
            "AWE_TAP_URL": f"http://127.0.0.1:{state['ports'].get('vo')}/tap",
            "AWE_PORTAL_URL": f"http://127.0.0.1:{state['ports'].get('portal')}",
            "AWE_TOKEN": state["token"],
            "AWE_KAFKA_BOOTSTRAP_SERVERS": kafka,
            "AWE_POSTGRES_URL": db_url,
            **products,
        }
        _write_private(self.env_file, "".join(f"{k}={v}\n" for k, v in client.items()))
        return client

    def _service_env(self, name: str, state: dict[str, Any],
                     env: dict[str, str]) -> dict[str, str]:
        """A service account and token for ``name`` (made once), and its settings."""
        tokens = state.setdefault("service_tokens", {})
        if name not in tokens:
            catalog = f"http://127.0.0.1:{state['ports']['catalog']}"
            auth = {"Authorization": f"Bearer {state['token']}"}
            made = httpx.post(f"{catalog}/users", json={"name": name, "is_service": True},
                              headers=auth, timeout=30)
            if made.status_code not in (201, 409):
                raise RuntimeError(f"cannot make the service account {name}: {made.text}")
            got = httpx.post(f"{catalog}/tokens", json={"user": name, "label": "stack"},
                             headers=auth, timeout=30)
            got.raise_for_status()
            tokens[name] = got.json()["token"]
            self._save(state)
        prefix = f"AWE_{name.upper()}_"
        extra = ({f"{prefix}STORAGE_URL": f"http://127.0.0.1:{state['ports']['storage']}"}
                 if name in ("compute", "vo") else {})
        return {
            **extra,
            f"{prefix}SERVICE_TOKEN": tokens[name],
            f"{prefix}CATALOG_URL": f"http://127.0.0.1:{state['ports']['catalog']}",
            f"{prefix}KAFKA_BOOTSTRAP_SERVERS": env["AWE_CATALOG_KAFKA_BOOTSTRAP_SERVERS"],
            f"{prefix}ROOT": str(self.dir / "files"),
        }

    def _portal_env(self, state: dict[str, Any]) -> dict[str, str]:
        """The portal calls every service as the signed-in user (it has no account of its
        own): it needs their URLs, and a key for its session cookies that outlives a
        restart (made once, kept in the stack's state)."""
        state.setdefault("portal_secret", secrets.token_urlsafe(32))
        self._save(state)
        url = {name: f"http://127.0.0.1:{state['ports'][name]}"
               for name in ("catalog", "storage", "lineage", "compute")}
        return {"AWE_PORTAL_CATALOG_URL": url["catalog"],
                "AWE_PORTAL_STORAGE_URL": url["storage"],
                "AWE_PORTAL_LINEAGE_URL": url["lineage"],
                "AWE_PORTAL_COMPUTE_URL": url["compute"],
                "AWE_PORTAL_SECRET_KEY": state["portal_secret"],
                "AWE_PORTAL_CACHE_DIR": str(self.dir / "portal-cache")}

    def down(self) -> None:
        """Stop every part, in reverse order of start, by pid."""
        state = self._load()
        for svc in reversed(SERVICES):
            self._service(svc, state, {}).stop()
            state["pids"].pop(svc.name, None)
        if not self.settings.kafka_bootstrap_servers:
            self._broker(state).stop()
            state["pids"].pop("broker", None)
        if not self.settings.postgres_url and (self.dir / "postgres").exists():
            self._postgres(state).stop()
        self._save(state)

    def status(self) -> list[PartStatus]:
        state = self._load()
        out = []
        if not self.settings.postgres_url:
            pg = self._postgres(state)
            running = pg.is_running()
            out.append(PartStatus("postgres", pg.pid if running else None, running,
                                  f"127.0.0.1:{state['ports'].get('postgres', '-')}",
                                  str(self.logs / "postgres.log")))
        if not self.settings.kafka_bootstrap_servers:
            b = self._broker(state)
            out.append(PartStatus("broker", b.pid, b.is_running(), b.bootstrap_servers,
                                  str(self.logs / "broker.log")))
        for svc in SERVICES:
            proc = self._service(svc, state, {})
            port = state["ports"].get(svc.name)
            out.append(PartStatus(svc.name, proc.pid, proc.is_running(),
                                  f"http://127.0.0.1:{port}" if port else "-",
                                  str(proc.logfile)))
        return out


def _write_private(path: Path, text: str) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(text)
    path.chmod(0o600)
