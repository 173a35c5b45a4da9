"""What the benchmarks share: printing a figure beside its baseline, and a catalog to time."""

from __future__ import annotations

import os
import secrets
import shutil
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from awecore.stack import PostgresServer, ServiceProcess, Stack, StackSettings, free_port

TOKEN = "awe_" + secrets.token_urlsafe(32)  # the catalog refuses a short or default one


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


def line(what: str, ours: float, base: float, unit: str, higher_is_better: bool) -> None:
    """One figure of ours beside its baseline from the same run, and their ratio."""
    ratio = ours / base if base else float("nan")
    better = "higher is better" if higher_is_better else "lower is better"
    print(f"{what:<44} ours {ours:>12,.2f} {unit:<10} baseline {base:>12,.2f} {unit:<10} "
          f"ratio {ratio:6.2f} ({better})")


@dataclass
class Catalog:
    url: str  # the catalog's HTTP address
    db_url: str  # its database, for baselines that go around it


@contextmanager
def catalog_service() -> Iterator[Catalog]:
    """An embedded PostgreSQL and one uvicorn catalog process on free ports, stopped and
    removed afterwards; the admin token is TOKEN."""
    folder = Path(tempfile.mkdtemp(prefix="awe-bench-"))
    folder.chmod(0o711)  # PostgreSQL runs as nobody under root: it must get through
    pg = PostgresServer(folder / "pg")
    pg.start()
    catalog = None
    try:
        port = free_port()
        db_url = pg.create_database("awe_bench")
        catalog = ServiceProcess(
            "catalog", [sys.executable, "-m", "uvicorn", "awe_catalog.main:create_app",
                        "--factory", "--host", "127.0.0.1", "--port", str(port),
                        "--no-access-log"],
            {"AWE_CATALOG_DATABASE_URL": db_url, "AWE_CATALOG_ADMIN_TOKEN": TOKEN,
             "AWE_CATALOG_LOG_LEVEL": "WARNING", "AWE_SITE": "bench", "PATH": "/usr/bin:/bin"},
            folder / "catalog.log", health_url=f"http://127.0.0.1:{port}/health")
        catalog.start()
        yield Catalog(f"http://127.0.0.1:{port}", db_url)
    finally:
        if catalog is not None:
            catalog.stop()
        pg.stop()
        shutil.rmtree(folder, ignore_errors=True)


@contextmanager
def local_stack(state_dir: Path, site: str = "bench") -> Iterator[dict[str, str]]:
    """The whole local stack (`awe up`: PostgreSQL, broker, catalog + relay, storage,
    lineage, federation, compute API + 2 workers) with its state in ``state_dir``, every
    part on 127.0.0.1 and a free port, stopped by pid afterwards (the folder is left for
    the caller). AWE_STATE_DIR points at it, so no client ever reads a developer's
    ``.awe``; an external PostgreSQL or broker from the environment is ignored. Yields the
    client settings (AWE_CATALOG_URL, AWE_STORAGE_URL, AWE_COMPUTE_URL, AWE_TOKEN, ...);
    storage keeps its files in ``state_dir / "files"``."""
    state_dir.mkdir(parents=True, exist_ok=True)
    os.environ["AWE_STATE_DIR"] = str(state_dir)
    stack = Stack(StackSettings(state_dir=state_dir, site=site, postgres_url=None,
                                kafka_bootstrap_servers=None, catalog_port=None,
                                postgres_port=None, broker_port=None))
    try:
        yield stack.up()
    finally:
        stack.down()


def catalog_and_lineage(catalog_env: dict[str, str], lineage_env: dict[str, str],
                        folder: Path) -> tuple[list[ServiceProcess], str, str]:
    """A catalog and a lineage service (not following: the benchmark fills lineage's tables
    itself) as processes, one uvicorn worker each, lineage reading that catalog; returns the
    processes (stop them in reverse) and the two URLs."""
    procs: list[ServiceProcess] = []
    ports: dict[str, int] = {}
    for name, app, env in (("catalog", "awe_catalog.main:create_app", catalog_env),
                           ("lineage", "awe_lineage.main:create_app",
                            {"AWE_LINEAGE_FOLLOW": "false", **lineage_env})):
        port = free_port()
        if name == "lineage":
            env = {**env, "AWE_LINEAGE_CATALOG_URL": f"http://127.0.0.1:{ports['catalog']}"}
        proc = ServiceProcess(name, [sys.executable, "-m", "uvicorn", app, "--factory",
                                     "--host", "127.0.0.1", "--port", str(port),
                                     "--no-access-log"], {**os.environ, **env},
                              folder / f"{name}.log",
                              health_url=f"http://127.0.0.1:{port}/health")
        try:
            proc.start()
        except BaseException:
            for started in reversed(procs):
                started.stop()
            raise
        procs.append(proc)
        ports[name] = port
    return procs, f"http://127.0.0.1:{ports['catalog']}", f"http://127.0.0.1:{ports['lineage']}"
