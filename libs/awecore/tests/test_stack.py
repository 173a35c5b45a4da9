"""The local stack: `awe up` starts real processes, `awe down` stops them all."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

import awecore as awe
from awecore.client import read_env_file
from awecore.stack import ServiceProcess, Stack, StackSettings, free_port, pid_alive

pytestmark = pytest.mark.integration


@pytest.fixture
def state_dir() -> Iterator[Path]:
    folder = Path(tempfile.mkdtemp(prefix="awe-test-stack-"))
    folder.chmod(0o711)  # as root, PostgreSQL runs as 'nobody' and must reach its data
    try:
        yield folder / ".awe"
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def test_up_status_down(state_dir: Path) -> None:
    stack = Stack(StackSettings(state_dir=state_dir, site="stacktest"))
    try:
        env = stack.up()
        parts = {p.name: p for p in stack.status()}
        assert set(parts) == {"postgres", "broker", "catalog", "catalog-relay", "storage",
                              "lineage", "federation", "compute", "compute-worker-1",
                              "compute-worker-2", "vo", "portal"}
        assert all(p.running for p in parts.values()), parts
        assert read_env_file(state_dir / "awe.env") == env
        assert (state_dir / "awe.env").stat().st_mode & 0o777 == 0o600
        client = awe.CatalogClient(env["AWE_CATALOG_URL"], env["AWE_TOKEN"])
        assert client.whoami()["is_admin"]
        inst = client.save(awe.Instrument(name="stack"))
        assert inst.record is not None and inst.record.site == "stacktest"
        put = httpx.put(f"{env['AWE_STORAGE_URL']}/files/stack/test.txt", content=b"hello",
                        headers={"Authorization": f"Bearer {env['AWE_TOKEN']}"})
        assert put.status_code == 201, put.text
        assert (state_dir / "files" / "stack" / "test.txt").read_bytes() == b"hello"
        lineage = httpx.get(f"{env['AWE_LINEAGE_URL']}/lineage/{inst.record.oid}/upstream",
                            headers={"Authorization": f"Bearer {env['AWE_TOKEN']}"})
        for _ in range(50):  # the lineage service follows the catalog within moments
            if lineage.status_code == 200:
                break
            time.sleep(0.2)
            lineage = httpx.get(f"{env['AWE_LINEAGE_URL']}/lineage/{inst.record.oid}/upstream",
                                headers={"Authorization": f"Bearer {env['AWE_TOKEN']}"})
        assert lineage.status_code == 200, lineage.text
        # TAP (the VO service) reads the same catalogue, as the token's user
        assert env["AWE_TAP_URL"] == env["AWE_VO_URL"] + "/tap"
        tap = httpx.post(f"{env['AWE_TAP_URL']}/sync",
                         data={"LANG": "ADQL", "QUERY": "SELECT oid, name FROM awe.instrument"},
                         headers={"Authorization": f"Bearer {env['AWE_TOKEN']}"})
        assert tap.status_code == 200 and inst.record.oid in tap.text, tap.text
        cli = subprocess.run([sys.executable, "-m", "awecore.cli", "federation", "status"],
                             capture_output=True, text=True, timeout=60, check=False,
                             env={**os.environ, "AWE_STATE_DIR": str(state_dir),
                                  "COLUMNS": "200"})
        assert cli.returncode == 0, cli.stderr
        assert "site stacktest: following 0 peer(s)" in cli.stdout
        assert "digest of the" in cli.stdout
        again = stack.up()  # idempotent: same processes, same token
        assert again == env
        assert {p.name: p.pid for p in stack.status()} == {n: p.pid for n, p in parts.items()}
    finally:
        stack.down()
    pids = [p.pid for p in parts.values() if p.pid]
    assert not any(pid_alive(pid) for pid in pids)
    assert not any(p.running for p in stack.status())


def test_service_process_health_and_kill(tmp_path: Path) -> None:
    port = free_port()
    proc = ServiceProcess("web", [sys.executable, "-m", "http.server", "--bind", "127.0.0.1",
                                  str(port)], {}, tmp_path / "web.log",
                          health_url=f"http://127.0.0.1:{port}/")
    proc.start()
    pid = proc.pid
    assert pid is not None and proc.is_running()
    proc.kill()
    assert not pid_alive(pid)


def test_failed_start_reports_the_log(tmp_path: Path) -> None:
    proc = ServiceProcess("broken", [sys.executable, "-c", "raise SystemExit('no config')"],
                          {}, tmp_path / "broken.log", health_url="http://127.0.0.1:9/")
    with pytest.raises(RuntimeError, match="no config"):
        proc.start(timeout=10)


def test_postgres_refuses_unreachable_data_folder(tmp_path: Path) -> None:
    from awecore.stack import PostgresServer

    server = PostgresServer(tmp_path / "data")
    server._as_root = True  # what root sees: PostgreSQL will run as 'nobody'
    tmp_path.chmod(0o700)
    with pytest.raises(PermissionError, match="not searchable"):
        server.start()
    assert not (tmp_path / "data").exists()


def test_stack_state_is_found_from_a_subfolder(tmp_path: Path,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    """`awe up` in a subfolder of a project runs the project's stack, as `awe.connect()`
    finds its settings there; without any, a new `.awe` here."""
    monkeypatch.delenv("AWE_STATE_DIR", raising=False)
    (tmp_path / ".awe").mkdir()
    (tmp_path / ".awe" / "awe.env").write_text("AWE_CATALOG_URL=http://127.0.0.1:1\n")
    deep = tmp_path / "analysis" / "night2"
    deep.mkdir(parents=True)
    monkeypatch.chdir(deep)
    assert StackSettings().state_dir == tmp_path / ".awe"
    elsewhere = tmp_path.parent / f"{tmp_path.name}-other"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    assert StackSettings().state_dir == Path(".awe")
