"""Storage benchmarks: put/get of 100 MB through the storage service, beside the raw minio
client (same S3 server) and a raw file copy (same disk), in one run; and the ingest rate.

    .venv/bin/python bench/storage.py [--mb 100]
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import secrets
import shutil
import sys
import tempfile
import time
from pathlib import Path

import httpx
from minio import Minio

from awecore.client import CatalogClient, StorageClient
from awecore.ingest import Ingester, expand
from awecore.sim import PRESETS, NightPlan, simulate_night
from awecore.stack import PostgresServer, ServiceProcess, free_port

TOKEN = "awe_" + secrets.token_urlsafe(32)  # the catalog refuses a short or default one


def rate_line(what: str, ours: float, base: float, mb: float, baseline: str) -> None:
    print(f"{what:<34} ours {mb / ours:9.1f} MB/s   {baseline:<16} {mb / base:9.1f} MB/s   "
          f"ratio {base / ours:5.2f} (higher is better)")


def service(name: str, module: str, env: dict[str, str], folder: Path) -> tuple[ServiceProcess,
                                                                               str]:
    port = free_port()
    argv = [sys.executable, "-m", "uvicorn", module, "--factory", "--host", "127.0.0.1",
            "--port", str(port), "--no-access-log"]
    proc = ServiceProcess(name, argv, {**os.environ, **env}, folder / f"{name}.log",
                          health_url=f"http://127.0.0.1:{port}/health")
    proc.start()
    return proc, f"http://127.0.0.1:{port}"


def put_get(url: str, name: str, src: Path) -> tuple[float, float]:
    with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {TOKEN}"},
                      timeout=600) as http:
        t = time.perf_counter()
        with src.open("rb") as f:
            http.put(f"/files/{name}", content=f,
                     headers={"content-length": str(src.stat().st_size)}).raise_for_status()
        put = time.perf_counter() - t
        t = time.perf_counter()
        with http.stream("GET", f"/files/{name}") as r:
            r.raise_for_status()
            for _ in r.iter_bytes(1 << 20):
                pass
        return put, time.perf_counter() - t


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--mb", type=int, default=100)
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="awe-bench-storage-"))
    folder.chmod(0o711)
    procs: list[ServiceProcess] = []
    pg = PostgresServer(folder / "pg")
    try:
        pg.start()
        db = pg.create_database("awe_catalog")
        moto_port = free_port()
        moto = ServiceProcess("moto", [sys.executable, "-m", "moto.server", "-H", "127.0.0.1",
                                       "-p", str(moto_port)], dict(os.environ),
                              folder / "moto.log",
                              health_url=f"http://127.0.0.1:{moto_port}/moto-api/")
        moto.start()
        procs.append(moto)
        catalog, catalog_url = service("catalog", "awe_catalog.main:create_app",
                                       {"AWE_CATALOG_DATABASE_URL": db,
                                        "AWE_CATALOG_ADMIN_TOKEN": TOKEN,
                                        "AWE_CATALOG_LOG_LEVEL": "WARNING"}, folder)
        procs.append(catalog)
        common = {"AWE_STORAGE_CATALOG_URL": catalog_url, "AWE_STORAGE_SERVICE_TOKEN": TOKEN,
                  "AWE_STORAGE_LOG_LEVEL": "WARNING",
                  "AWE_STORAGE_MAX_UPLOAD_BYTES": str(4 * 1024**3)}
        local, local_url = service("storage-local", "awe_storage.main:create_app",
                                   {**common, "AWE_STORAGE_ROOT": str(folder / "files")}, folder)
        s3, s3_url = service("storage-s3", "awe_storage.main:create_app",
                             {**common, "AWE_STORAGE_ROOT": str(folder / "s3tmp"),
                              "AWE_STORAGE_BACKEND": "s3",
                              "AWE_STORAGE_S3__ENDPOINT": f"127.0.0.1:{moto_port}",
                              "AWE_STORAGE_S3__BUCKET": "bench"}, folder)
        procs += [local, s3]

        mb = float(args.mb)
        src = folder / "payload.bin"
        with src.open("wb") as f:
            for _ in range(args.mb):
                f.write(os.urandom(1 << 20))
        print(f"storage benchmark: {args.mb} MB, local disk and moto's S3 server on 127.0.0.1")

        t = time.perf_counter()
        shutil.copyfile(src, folder / "copy.bin")
        copy = time.perf_counter() - t
        t = time.perf_counter()
        with (folder / "copy.bin").open("rb") as f:
            while f.read(1 << 20):
                pass
        read = time.perf_counter() - t
        put, get = put_get(local_url, "bench/local.bin", src)
        rate_line("put, local backend (HTTP)", put, copy, mb, "file copy")
        rate_line("get, local backend (HTTP)", get, read, mb, "file read*")

        client = Minio(f"127.0.0.1:{moto_port}", "k", "s", secure=False)
        client.make_bucket("raw-baseline")
        t = time.perf_counter()
        client.fput_object("raw-baseline", "x.bin", str(src))
        raw_put = time.perf_counter() - t
        t = time.perf_counter()
        response = client.get_object("raw-baseline", "x.bin")
        while response.read(1 << 20):
            pass
        response.close()
        raw_get = time.perf_counter() - t
        put, get = put_get(s3_url, "bench/s3.bin", src)
        print("  (* a read from the page cache: the bound of what a disk read can be)")
        rate_line("put, S3 backend (HTTP)", put, raw_put, mb, "raw minio")
        rate_line("get, S3 backend (HTTP)", get, raw_get, mb, "raw minio")

        night = folder / "night"
        simulate_night(night, PRESETS["small"], seed=1, date=dt.date(2003, 2, 14),
                       plan=NightPlan(science_fields=1, exposures_per_field=1))
        files = expand([night])
        size = sum(p.stat().st_size for p in files) / 1e6
        with CatalogClient(catalog_url, TOKEN) as cat:
            storage = StorageClient(local_url, TOKEN)
            t = time.perf_counter()
            report = Ingester(cat, storage.put).ingest(files)
            took = time.perf_counter() - t
        assert not report.failed, report.failed
        print(f"ingest ({len(files)} files of {PRESETS['small'].n_chips} chips, {size:.0f} MB)"
              f"     {len(files) / took:6.1f} files/s   {size / took:6.1f} MB/s   "
              f"{sum(report.frames.values()) / took:6.1f} frames/s")
    finally:
        for p in reversed(procs):
            p.stop()
        pg.stop()
        shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
