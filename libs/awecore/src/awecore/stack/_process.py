"""Child processes of the local stack, managed by pid."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

import httpx

__all__ = ["ServiceProcess", "pid_alive", "terminate"]


def pid_alive(pid: int, marker: str | None = None) -> bool:
    """Whether ``pid`` runs (and its command line mentions ``marker``: pids get reused)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        with open(f"/proc/{pid}/stat") as f:
            if f.read().split(") ", 1)[1].startswith("Z"):
                return False
        if marker is not None:
            return marker.encode() in Path(f"/proc/{pid}/cmdline").read_bytes()
    except (FileNotFoundError, IndexError):
        return False
    return True


def terminate(pid: int, proc: subprocess.Popen[bytes] | None = None,
              timeout: float = 10.0) -> None:
    """SIGTERM, then SIGKILL after ``timeout``; reaps our own children."""
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            return
        if proc is None and not pid_alive(pid):
            return
        time.sleep(0.05)
    kill(pid, proc)


def kill(pid: int, proc: subprocess.Popen[bytes] | None = None) -> None:
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        return
    if proc is not None:
        proc.wait(timeout=10)


class ServiceProcess:
    """One of our services as a child process with its own log file."""

    def __init__(self, name: str, argv: list[str], env: dict[str, str], logfile: Path,
                 health_url: str | None = None, pid: int | None = None) -> None:
        self.name = name
        self.argv = argv
        self.env = env
        self.logfile = Path(logfile)
        self.health_url = health_url
        self._pid = pid
        self._proc: subprocess.Popen[bytes] | None = None

    @property
    def pid(self) -> int | None:
        return self._pid

    def is_running(self) -> bool:
        return self._pid is not None and pid_alive(self._pid, self.argv[-1])

    def start(self, timeout: float = 60.0) -> None:
        """Start it and wait for its health URL to answer 200 (if it has one)."""
        if self.is_running():
            return
        self.logfile.parent.mkdir(parents=True, exist_ok=True)
        with open(self.logfile, "ab") as log:
            self._proc = subprocess.Popen(self.argv, env=self.env, stdout=log,
                                          stderr=subprocess.STDOUT, start_new_session=True)
        self._pid = self._proc.pid
        if self.health_url is None:
            return
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                raise RuntimeError(f"{self.name} exited at start-up:\n{self.log_tail()}")
            try:
                if httpx.get(self.health_url, timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        self.kill()
        raise TimeoutError(f"{self.name} not healthy within {timeout:.0f} s:\n{self.log_tail()}")

    def log_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.logfile.read_text(errors="replace").splitlines()[-lines:])
        except FileNotFoundError:
            return "(no log)"

    def stop(self, timeout: float = 10.0) -> None:
        if self._pid is not None:
            terminate(self._pid, self._proc, timeout)
        self._pid, self._proc = None, None

    def kill(self) -> None:
        """SIGKILL: for failure tests."""
        if self._pid is not None:
            kill(self._pid, self._proc)
        self._pid, self._proc = None, None
