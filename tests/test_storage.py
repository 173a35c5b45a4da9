"""The storage service through its HTTP API: both backends, the rules, peers."""

from __future__ import annotations

import hashlib
import os
import shutil
import sys
import tempfile
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest
from asgi_lifespan import LifespanManager
from conftest import ADMIN_TOKEN, start_service
from minio import Minio
from pydantic import SecretStr

from awe_storage.config import Peer, S3Settings, StorageSettings
from awe_storage.main import create_app
from awe_storage.services.files import CorruptFile
from awecore.stack import ServiceProcess, free_port

pytestmark = pytest.mark.integration


@pytest.fixture(scope="session")
def moto_s3(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """An S3 server (moto) on a free port; yields its host:port."""
    port = free_port()
    proc = ServiceProcess("moto", [sys.executable, "-m", "moto.server", "-H", "127.0.0.1",
                                   "-p", str(port)], dict(os.environ),
                          tmp_path_factory.mktemp("moto") / "moto.log",
                          health_url=f"http://127.0.0.1:{port}/moto-api/")
    proc.start()
    try:
        yield f"127.0.0.1:{port}"
    finally:
        proc.stop()


@pytest.fixture(scope="session")
def users_over_http(catalog_process: str) -> dict[str, str]:
    """Tokens of a service account and two users, made through the catalog's API."""
    admin = httpx.Client(base_url=catalog_process,
                         headers={"Authorization": f"Bearer {ADMIN_TOKEN}"})
    tokens = {"admin": ADMIN_TOKEN}
    for name, service in (("storage-svc", True), ("ann", False), ("ben", False)):
        admin.post("/users", json={"name": name, "is_service": service})
        tokens[name] = admin.post("/tokens", json={"user": name}).json()["token"]
    return tokens


def settings_for(backend: str, root: Path, catalog: str, tokens: dict[str, str], moto: str,
                 **extra: object) -> StorageSettings:
    values: dict[str, object] = {
        "site": "test", "backend": backend, "root": root, "catalog_url": catalog,
        "service_token": SecretStr(tokens["storage-svc"]), "max_upload_bytes": 4 * 1024 * 1024,
        "s3": S3Settings(endpoint=moto, bucket=f"awe-{os.urandom(4).hex()}"),
        "log_level": "WARNING", **extra}
    return StorageSettings(**values)  # type: ignore[arg-type]


@pytest.fixture(params=["local", "s3"])
async def storage(request: pytest.FixtureRequest, catalog_process: str,
                  users_over_http: dict[str, str], moto_s3: str) -> AsyncIterator[
                      tuple[StorageSettings, dict[str, httpx.AsyncClient]]]:
    root = Path(tempfile.mkdtemp(prefix="awe-storage-"))
    settings = settings_for(request.param, root, catalog_process, users_over_http, moto_s3)
    app = create_app(settings)
    async with LifespanManager(app) as manager:
        clients = {name: httpx.AsyncClient(
            transport=httpx.ASGITransport(app=manager.app),  # type: ignore[arg-type]
            base_url="http://storage", headers={"Authorization": f"Bearer {token}"})
            for name, token in users_over_http.items()}
        yield settings, clients
        for c in clients.values():
            await c.aclose()
    shutil.rmtree(root, ignore_errors=True)


DATA = os.urandom(300_000)


async def test_put_get_head_list_and_ranges(storage: tuple[StorageSettings, dict[str, httpx.AsyncClient]]) -> None:  # noqa: E501
    _, c = storage
    ann = c["ann"]
    r = await ann.put("/files/red/2003/a.fits", content=DATA)
    assert r.status_code == 201, r.text
    info = r.json()
    assert info["size"] == len(DATA) and info["sha256"] == hashlib.sha256(DATA).hexdigest()
    assert info["owner"].startswith("ann")
    r = await ann.get("/files/red/2003/a.fits")
    assert r.content == DATA and r.headers["x-checksum-sha256"] == info["sha256"]
    r = await ann.head("/files/red/2003/a.fits")
    assert r.status_code == 200 and r.headers["content-length"] == str(len(DATA))
    r = await ann.get("/files/red/2003/a.fits", headers={"Range": "bytes=100-199"})
    assert r.status_code == 206 and r.content == DATA[100:200]
    assert r.headers["content-range"] == f"bytes 100-199/{len(DATA)}"
    r = await ann.get("/files/red/2003/a.fits", headers={"Range": "bytes=-10"})
    assert r.content == DATA[-10:]
    r = await ann.get("/files/red/2003/a.fits", headers={"Range": "bytes=299990-"})
    assert r.content == DATA[299990:]
    r = await ann.get("/files/red/2003/a.fits", headers={"Range": "bytes=400000-"})
    assert r.status_code == 416
    await ann.put("/files/red/2003/b.fits", content=b"b")
    await ann.put("/files/red/2004/c.fits", content=b"c")
    page = (await ann.get("/files", params={"prefix": "red/2003/", "limit": 1})).json()
    assert [f["name"] for f in page["files"]] == ["red/2003/a.fits"]
    page = (await ann.get("/files", params={"prefix": "red/2003/",
                                            "after": page["next_after"]})).json()
    assert [f["name"] for f in page["files"]] == ["red/2003/b.fits"]
    assert page["next_after"] is None


async def test_write_once_names_and_limits(storage: tuple[StorageSettings, dict[str, httpx.AsyncClient]]) -> None:  # noqa: E501
    _, c = storage
    ann = c["ann"]
    assert (await ann.put("/files/x.fits", content=b"one")).status_code == 201
    r = await ann.put("/files/x.fits", content=b"two")
    assert r.status_code == 409 and "written once" in r.json()["detail"]
    assert (await ann.get("/files/x.fits")).content == b"one"
    for bad in ["a%2F..%2F..%2Fetc%2Fpasswd", "..%2Fx", "%2Fabs", "a%00b", "a%07b",
                "x" * 600, "a//b", ".hidden"]:
        r = await ann.put(f"/files/{bad}", content=b"x")
        assert r.status_code == 400, (bad, r.text)
        assert r.json()["error"] == "invalid_request"
    r = await ann.put("/files/a%0Ab", content=b"x")  # no route takes a newline
    assert r.status_code == 404 and r.json()["error"] == "not_found"
    r = await ann.put("/files/big.bin", content=b"x" * (4 * 1024 * 1024 + 1))
    assert r.status_code == 413
    assert (await ann.head("/files/big.bin")).status_code == 404

    async def half() -> AsyncIterator[bytes]:
        yield b"x" * 500

    r = await ann.put("/files/cut.bin", content=half(), headers={"content-length": "1000"})
    assert r.status_code == 400 and "truncated" in r.json()["detail"]
    assert (await ann.head("/files/cut.bin")).status_code == 404
    r = await httpx.AsyncClient(transport=ann._transport, base_url="http://storage").get(
        "/files/x.fits")
    assert r.status_code == 401


async def test_corruption_is_reported_never_served(storage: tuple[StorageSettings, dict[str, httpx.AsyncClient]]) -> None:  # noqa: E501
    settings, c = storage
    ann = c["ann"]
    await ann.put("/files/corrupt/me.fits", content=DATA)
    assert (await ann.post("/verify/corrupt/me.fits")).json()["ok"] is True
    if settings.backend == "local":
        path = settings.root / "corrupt/me.fits"
        raw = bytearray(path.read_bytes())
        raw[1000] ^= 0xFF
        path.write_bytes(bytes(raw))
    else:
        s3 = Minio(settings.s3.endpoint, "k", "s", secure=False)
        stat = s3.stat_object(settings.s3.bucket, "corrupt/me.fits")
        meta = {k.removeprefix("x-amz-meta-"): v for k, v in stat.metadata.items()
                if k.lower().startswith("x-amz-meta-")}
        import io

        bad = bytearray(DATA)
        bad[1000] ^= 0xFF
        s3.put_object(settings.s3.bucket, "corrupt/me.fits", io.BytesIO(bytes(bad)), len(bad),
                      metadata=meta)
    v = (await ann.post("/verify/corrupt/me.fits")).json()
    assert v["ok"] is False and v["expected_sha256"] == hashlib.sha256(DATA).hexdigest()
    # the transfer is cut before its last chunk: a corrupt file never arrives complete
    with pytest.raises((CorruptFile, httpx.HTTPError)):
        await ann.get("/files/corrupt/me.fits")


async def test_delete_rules(storage: tuple[StorageSettings, dict[str, httpx.AsyncClient]],
                            catalog_process: str) -> None:
    _, c = storage
    ann, ben, admin = c["ann"], c["ben"], c["admin"]
    await admin.put("/files/raw/2003/night.fits", content=b"sacred")
    r = await admin.delete("/files/raw/2003/night.fits")
    assert r.status_code == 403 and "raw data" in r.json()["detail"]
    await ann.put("/files/tmp/mine.fits", content=b"m")
    r = await ben.delete("/files/tmp/mine.fits")
    assert r.status_code == 403
    await ann.put("/files/tmp/used.fits", content=b"u")
    async with httpx.AsyncClient(base_url=catalog_process,
                                 headers={"Authorization": f"Bearer {ADMIN_TOKEN}"}) as catalog:
        r = await catalog.post("/objects", json={"type": "BiasFrame", "filename":
                                                 f"tmp/used-{os.urandom(3).hex()}.fits"})
    name = r.json()["filename"]
    await ann.put(f"/files/{name}", content=b"u")
    r = await ann.delete(f"/files/{name}")
    assert r.status_code == 409 and "catalog object" in r.json()["detail"]
    assert (await ann.delete("/files/tmp/mine.fits")).status_code == 204
    assert (await ann.head("/files/tmp/mine.fits")).status_code == 404
    assert (await ann.delete("/files/tmp/none.fits")).status_code == 404


async def test_peer_fetch_between_two_sites(catalog_process: str,
                                            users_over_http: dict[str, str], moto_s3: str,
                                            tmp_path_factory: pytest.TempPathFactory) -> None:
    root_a = Path(tempfile.mkdtemp(prefix="awe-site-a-"))
    root_b = Path(tempfile.mkdtemp(prefix="awe-site-b-"))
    env = {**os.environ, "AWE_SITE": "site-a", "AWE_STORAGE_ROOT": str(root_a),
           "AWE_STORAGE_CATALOG_URL": catalog_process,
           "AWE_STORAGE_SERVICE_TOKEN": users_over_http["storage-svc"]}
    site_a, url_a = start_service("storage-a", "awe_storage.main:create_app", env,
                                  tmp_path_factory.mktemp("site-a"))
    try:
        async with httpx.AsyncClient(
                base_url=url_a,
                headers={"Authorization": f"Bearer {users_over_http['ann']}"}) as a:
            assert (await a.put("/files/made/at/a.fits", content=DATA)).status_code == 201
        peer = Peer(site="site-a", url=url_a,
                    token=SecretStr(users_over_http["storage-svc"]))
        settings = settings_for("local", root_b, catalog_process, users_over_http, moto_s3,
                                peers=[peer])
        app = create_app(settings)
        async with LifespanManager(app) as manager, httpx.AsyncClient(
                transport=httpx.ASGITransport(app=manager.app),  # type: ignore[arg-type]
                base_url="http://b",
                headers={"Authorization": f"Bearer {users_over_http['ben']}"}) as b:
            r = await b.get("/files/made/at/a.fits")
            assert r.status_code == 200 and r.content == DATA
            assert (root_b / "made/at/a.fits").read_bytes() == DATA  # cached at B
            r = await b.get("/files/made/at/a.fits", headers={"Range": "bytes=0-9"})
            assert r.content == DATA[:10]
            assert (await b.get("/files/nowhere.fits")).status_code == 404
    finally:
        site_a.stop()
        shutil.rmtree(root_a, ignore_errors=True)
        shutil.rmtree(root_b, ignore_errors=True)


async def test_file_events_reach_kafka(catalog_process: str, users_over_http: dict[str, str],
                                       moto_s3: str, broker: object) -> None:
    from aiokafka import AIOKafkaConsumer, TopicPartition

    from awecore.files import FileStored

    root = Path(tempfile.mkdtemp(prefix="awe-storage-events-"))
    bootstrap = broker.bootstrap_servers  # type: ignore[attr-defined]
    settings = settings_for("local", root, catalog_process, users_over_http, moto_s3,
                            kafka_bootstrap_servers=bootstrap, site="events")
    app = create_app(settings)
    try:
        async with LifespanManager(app) as manager, httpx.AsyncClient(
                transport=httpx.ASGITransport(app=manager.app),  # type: ignore[arg-type]
                base_url="http://s", headers={"Authorization":
                                              f"Bearer {users_over_http['ann']}"}) as ann:
            assert (await ann.put("/files/evt/one.fits", content=b"1")).status_code == 201
        consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False,
                                    auto_offset_reset="earliest")
        await consumer.start()
        try:
            tp = TopicPartition("awe.events.storage.files", 0)
            consumer.assign([tp])
            await consumer.seek_to_beginning(tp)
            got = await consumer.getmany(tp, timeout_ms=5000)
            events = [__import__("json").loads(m.value) for m in got.get(tp, [])]
        finally:
            await consumer.stop()
        assert [e["type"] for e in events] == ["awe.storage.file.stored.v1"]
        stored = FileStored.model_validate(events[0]["data"])
        assert stored.file.name == "evt/one.fits" and stored.file.size == 1
    finally:
        shutil.rmtree(root, ignore_errors=True)
