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

import awecore as awe
from awe_storage.config import Peer, S3Settings, StorageSettings
from awe_storage.main import create_app
from awe_storage.services.files import CorruptFile
from awecore.client import StorageClient
from awecore.errors import ChecksumMismatch, InvalidRequest, NotFound
from awecore.files import check_name, name_part, url_path
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
    async with LifespanManager(app, startup_timeout=120, shutdown_timeout=120) as manager:
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
    assert "received 500 of the 1000 bytes" in r.json()["detail"]
    assert (await ann.head("/files/cut.bin")).status_code == 404
    anon = httpx.AsyncClient(transport=ann._transport, base_url="http://storage")
    r = await anon.get("/files/x.fits")  # no token: public files only (test_public_data)
    assert r.status_code == 404
    r = await anon.put("/files/anon.bin", content=b"x")
    assert r.status_code == 401


async def test_write_once_is_verified(storage: tuple[StorageSettings, dict[str, httpx.AsyncClient]]) -> None:  # noqa: E501
    settings, c = storage
    ann, ben = c["ann"], c["ben"]
    first = await ann.put("/files/once/a.fits", content=DATA)
    assert first.status_code == 201, first.text
    # the same bytes again, by anyone: an idempotent retry, answered with the stored file
    again = await ben.put("/files/once/a.fits", content=DATA)
    assert again.status_code == 200, again.text
    assert again.json() == first.json()  # same checksum, owner and time: nothing rewritten
    # other bytes: refused, naming both checksums, and the stored file is untouched
    other = DATA[:-1] + bytes([DATA[-1] ^ 1])
    r = await ben.put("/files/once/a.fits", content=other)
    assert r.status_code == 409 and r.json()["error"] == "conflict"
    detail = r.json()["detail"]
    assert hashlib.sha256(DATA).hexdigest() in detail
    assert hashlib.sha256(other).hexdigest() in detail
    assert (await ann.get("/files/once/a.fits")).content == DATA
    if settings.backend == "local":
        assert (settings.root / "once/a.fits").read_bytes() == DATA
    # a longer body is refused the same way, and nothing is left in scratch
    r = await ben.put("/files/once/a.fits", content=DATA + b"x")
    assert r.status_code == 409 and str(len(DATA) + 1) in r.json()["detail"]
    assert list((settings.root / ".tmp").glob("upload-*")) == []


def test_name_part_makes_any_text_one_part() -> None:
    texts = ["ESO_CCD_#65", "CCD 1/A", "CCD%201%2FA", "a~b", ".hidden", "-x", "50%", "é",
             "%41", "A", "a/b", "a b"]
    parts = [name_part(t) for t in texts]
    assert parts[:3] == ["ESO_CCD_#65", "CCD%201%2FA", "CCD%25201%252FA"]
    assert len(set(parts)) == len(texts)  # distinct texts, distinct parts
    for part in parts:
        assert "/" not in part and check_name(f"products/{part}/a.fits")
        assert "#" not in url_path(part) and "~" not in part
    assert url_path("products/X/ESO_CCD_#65/a%2Fb.fits") == \
        "products/X/ESO_CCD_%2365/a%252Fb.fits"
    with pytest.raises(InvalidRequest):
        url_path("a b")


NAMES = ["products/X/ESO_CCD_#65/a.fits", "products/X/ESO_CCD_#66/a.fits",
         f"products/X/{name_part('CCD 1/A')}/a.fits", f"products/X/{name_part('50%')}/a.fits",
         f"products/X/{name_part('CCD 1')}/a.fits", "products/X/%2541/a.fits"]


async def test_names_with_hash_and_escapes(storage: tuple[StorageSettings, dict[str, httpx.AsyncClient]]) -> None:  # noqa: E501
    _, c = storage
    ann = c["ann"]
    assert NAMES[2] == "products/X/CCD%201%2FA/a.fits"
    for name in NAMES:
        r = await ann.put(f"/files/{url_path(name)}", content=name.encode())
        assert r.status_code == 201, (name, r.text)
        assert r.json()["name"] == name
    for name in NAMES:  # each its own file with its own bytes
        r = await ann.get(f"/files/{url_path(name)}")
        assert r.status_code == 200 and r.content == name.encode(), name
        v = (await ann.post(f"/verify/{url_path(name)}")).json()
        assert v["ok"] is True and v["name"] == name
    listed = (await ann.get("/files", params={"prefix": "products/X/"})).json()
    assert sorted(f["name"] for f in listed["files"]) == sorted(NAMES)
    for prefix, wanted in [("products/X/ESO_CCD_#65/", [NAMES[0]]),
                           ("products/X/ESO_CCD_#", NAMES[:2]),
                           ("products/X/CCD%201", [NAMES[2], NAMES[4]]),
                           ("products/X/50%25/", [NAMES[3]])]:
        listed = (await ann.get("/files", params={"prefix": prefix})).json()
        assert sorted(f["name"] for f in listed["files"]) == sorted(wanted), prefix
    # what the grammar cannot hold is a 400 problem document, whatever the escape
    for bad in ["a b", "a%zz", "a%2f", "a%", "#x", "a/b c/d", "a/.x", "a/-x"]:
        r = await ann.put(f"/files/{_wire(bad)}", content=b"x")
        assert r.status_code == 400, (bad, r.text)
        assert r.headers["content-type"] == "application/problem+json"
        assert r.json()["error"] == "invalid_request" and "invalid file name" in r.json()["detail"]
        assert (await ann.get(f"/files/{_wire(bad)}")).status_code == 400


def _wire(name: str) -> str:
    """Any text as one URL path, '/' kept (url_path would refuse what the grammar cannot
    hold; the server must refuse it too)."""
    from urllib.parse import quote

    return quote(name, safe="/")


def test_storage_client_over_a_real_service(storage_process: str) -> None:
    """The client as the maker uses it, against uvicorn: names travel encoded, a retry of
    the same bytes succeeds, other bytes conflict, reads verify."""
    tag = os.urandom(3).hex()
    names = [f"products/C{tag}/{name_part(chip)}/r.fits"
             for chip in ("ESO_CCD_#65", "ESO_CCD_#66", "CCD 1/A", "CCD%201")]
    with StorageClient(storage_process, ADMIN_TOKEN) as storage:
        infos = [storage.put(name, f"bytes of {name}".encode()) for name in names]
        assert len({i.sha256 for i in infos}) == len(names)
        for name, info in zip(names, infos, strict=True):
            assert storage.get(name) == f"bytes of {name}".encode()
            assert storage.get(name, sha256=info.sha256, size=info.size) == \
                f"bytes of {name}".encode()
            assert storage.get(name, 0, 4) == b"bytes"
            assert storage.verify(name).ok
        page = storage.list(f"products/C{tag}/ESO_CCD_#")
        assert [f.name for f in page.files] == names[:2]
        assert [f.name for f in storage.list(f"products/C{tag}/CCD%2520").files] == [names[3]]
        # an idempotent retry returns the stored FileInfo; other bytes are a Conflict
        assert storage.put(names[0], f"bytes of {names[0]}".encode()) == infos[0]
        with pytest.raises(awe.Conflict) as conflict:
            storage.put(names[0], b"other bytes")
        assert infos[0].sha256 in str(conflict.value)
        assert hashlib.sha256(b"other bytes").hexdigest() in str(conflict.value)
        # a reader that knows the checksum is told when the file is not the one it expects
        wrong = hashlib.sha256(b"something else").hexdigest()
        with pytest.raises(ChecksumMismatch) as mismatch:
            storage.get(names[1], sha256=wrong)
        assert wrong in str(mismatch.value) and infos[1].sha256 in str(mismatch.value)
        assert mismatch.value.expected == wrong and mismatch.value.actual == infos[1].sha256
        with pytest.raises(ChecksumMismatch, match="size"):
            storage.get(names[1], size=infos[1].size + 1)
        with pytest.raises(InvalidRequest, match="whole file"):
            storage.get(names[1], 0, 10, sha256=infos[1].sha256)
        with pytest.raises(InvalidRequest, match="invalid file name"):
            storage.put("a b/c.fits", b"x")
        with pytest.raises(NotFound):
            storage.get(f"products/C{tag}/ESO_CCD_#67/r.fits", sha256=infos[0].sha256)
    # the server itself refuses what the grammar cannot hold, with a problem document
    r = httpx.put(f"{storage_process}/files/a%20b/c.fits", content=b"x",
                  headers={"Authorization": f"Bearer {ADMIN_TOKEN}"})
    assert r.status_code == 400 and r.json()["error"] == "invalid_request"


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
    assert r.status_code == 404  # ben may not read it: for him it does not exist
    await ann.put("/files/tmp/used.fits", content=b"u")
    async with httpx.AsyncClient(base_url=catalog_process,
                                 headers={"Authorization": f"Bearer {ADMIN_TOKEN}"}) as catalog:
        r = await catalog.post("/objects", json={"type": "BiasFrame", "privileges": 3,
                                                 "filename":
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
        async with LifespanManager(
                app, startup_timeout=120, shutdown_timeout=120) as manager, httpx.AsyncClient(
                transport=httpx.ASGITransport(app=manager.app),  # type: ignore[arg-type]
                base_url="http://b",  # ann wrote it (no object owns it): hers to read
                headers={"Authorization": f"Bearer {users_over_http['ann']}"}) as b:
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
        async with LifespanManager(
                app, startup_timeout=120, shutdown_timeout=120) as manager, httpx.AsyncClient(
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
