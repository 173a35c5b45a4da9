"""The HTTP contract of every service (issue 15): wrong methods are 405, every bad input a
4xx problem document (nothing reaches 500), a keep-alive connection outlives its errors, a
database that is gone is a 503, uploads are refused while they stream, and each OpenAPI
describes the problems it answers.

All against the real services as processes (uvicorn, h11), the real PostgreSQL and broker.
"""

from __future__ import annotations

import contextlib
import os
import re
import socket
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from conftest import ADMIN_TOKEN, start_service

from awecore.stack import Broker, PostgresServer, ServiceProcess

pytestmark = pytest.mark.integration

METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE")
INT64 = 2**63
#: how long storage waits for the next piece of a body here (the default is longer)
BODY_SECONDS = 2


@dataclass
class Stack:
    urls: dict[str, str]
    procs: dict[str, ServiceProcess]
    user_token: str
    postgres: PostgresServer

    def client(self, service: str, token: str | None = ADMIN_TOKEN) -> httpx.Client:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        return httpx.Client(base_url=self.urls[service], headers=headers, timeout=60)


def service_token(catalog: str, name: str) -> str:
    with httpx.Client(base_url=catalog, headers={"Authorization": f"Bearer {ADMIN_TOKEN}"},
                      timeout=30) as admin:
        admin.post("/users", json={"name": name, "is_service": True})
        made = admin.post("/tokens", json={"user": name})
        assert made.status_code == 201, made.text
        return str(made.json()["token"])


def user_token(catalog: str) -> str:
    name = f"http-{uuid.uuid4().hex[:8]}"
    with httpx.Client(base_url=catalog, headers={"Authorization": f"Bearer {ADMIN_TOKEN}"},
                      timeout=30) as admin:
        assert admin.post("/users", json={"name": name}).status_code == 201
        made = admin.post("/tokens", json={"user": name})
        assert made.status_code == 201, made.text
        return str(made.json()["token"])


Started = tuple[dict[str, str], dict[str, ServiceProcess], Path]


def start_five(postgres: PostgresServer, broker: Broker, catalog: str, logs: Path,
               prefix: str = "http") -> Started:
    """Storage, compute, lineage and federation beside a catalog: each with its own
    database (and storage with its own folder and a short body timeout)."""
    base = {**os.environ, "AWE_SITE": "test", "AWE_LOG_LEVEL": "WARNING"}
    db = {name: postgres.create_database(f"awe_{prefix}_{name}")
          for name in ("compute", "lineage", "federation")}
    root = Path(tempfile.mkdtemp(prefix="awe-http-files-"))
    envs = {
        "storage": {**base, "AWE_STORAGE_ROOT": str(root),
                    "AWE_STORAGE_CATALOG_URL": catalog,
                    "AWE_STORAGE_SERVICE_TOKEN": service_token(catalog,
                                                               f"{prefix}-storage"),
                    "AWE_STORAGE_MAX_UPLOAD_BYTES": str(64 * 1024 * 1024),
                    "AWE_STORAGE_BODY_TIMEOUT_SECONDS": str(BODY_SECONDS)},
        "compute": {**base, "AWE_COMPUTE_DATABASE_URL": db["compute"],
                    "AWE_COMPUTE_CATALOG_URL": catalog, "AWE_COMPUTE_STORAGE_URL": "",
                    "AWE_COMPUTE_SERVICE_TOKEN": ADMIN_TOKEN,
                    "AWE_COMPUTE_KAFKA_BOOTSTRAP_SERVERS": broker.bootstrap_servers},
        "lineage": {**base, "AWE_LINEAGE_DATABASE_URL": db["lineage"],
                    "AWE_LINEAGE_CATALOG_URL": catalog, "AWE_LINEAGE_FOLLOW": "false",
                    "AWE_LINEAGE_SERVICE_TOKEN": service_token(catalog,
                                                               f"{prefix}-lineage")},
        "federation": {**base,
                       "AWE_FEDERATION_DATABASE_URL": db["federation"],
                       "AWE_FEDERATION_CATALOG_URL": catalog, "AWE_FEDERATION_FOLLOW": "false",
                       "AWE_FEDERATION_SERVICE_TOKEN": ADMIN_TOKEN},
    }
    urls, procs = {"catalog": catalog}, {}
    for name, env in envs.items():
        proc, url = start_service(f"{prefix}-{name}", f"awe_{name}.main:create_app", env, logs)
        urls[name], procs[name] = url, proc
    return urls, procs, root


@pytest.fixture(scope="module")
def stack(postgres: PostgresServer, broker: Broker, catalog_process: str,
          tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    urls, procs, root = start_five(postgres, broker, catalog_process,
                                   tmp_path_factory.mktemp("http-logs"))
    try:
        yield Stack(urls, procs, user_token(catalog_process), postgres)
    finally:
        for proc in procs.values():
            proc.stop()
        subprocess.run(["rm", "-rf", str(root)], check=False)


def problem(r: httpx.Response, status: int) -> dict[str, Any]:
    """The response is a problem document with this status; returns it."""
    assert r.status_code == status, f"{r.request.method} {r.request.url}: {r.status_code} {r.text}"
    assert r.headers["content-type"].startswith("application/problem+json"), r.headers
    body: dict[str, Any] = r.json()
    assert {"type", "title", "status", "detail"} <= set(body), body
    assert body["status"] == status and body["detail"]
    return body


# -- methods and paths ---------------------------------------------------------------------
def _concrete(template: str) -> str:
    return re.sub(r"\{[^}]+\}", str(uuid.UUID(int=7)), template)


def test_wrong_method_is_405_and_unknown_path_404(stack: Stack) -> None:
    tried = 0
    for service in stack.urls:
        with stack.client(service) as http:
            paths: dict[str, Any] = http.get("/openapi.json").json()["paths"]
            patterns = [(re.compile("^" + re.sub(r"\{[^}]+\}", "[^/]+", p) + "$"),
                         {m.upper() for m in item}) for p, item in paths.items()]
            for template in paths:
                url = _concrete(template)
                allowed = set().union(*(ms for rx, ms in patterns if rx.match(url)))
                for method in METHODS:
                    if method in allowed:
                        continue
                    r = http.request(method, url)
                    body = problem(r, 405)
                    assert body["type"] == "urn:awe:error:method_not_allowed"
                    told = set(r.headers["allow"].replace(" ", "").split(","))
                    assert told & allowed, (url, told, allowed)
                    tried += 1
            assert "/no/such/thing" in problem(http.get("/no/such/thing"), 404)["detail"]
    assert tried > 50


# -- values PostgreSQL would refuse --------------------------------------------------------
def _oid_nodes(oid: str) -> list[dict[str, Any]]:
    return [
        {"node": "in", "path": ["oid"], "values": [oid, "not-an-oid"]},
        {"node": "like", "path": ["oid"], "pattern": "12*"},
        {"node": "between", "path": ["oid"], "low": oid, "high": oid},
        {"node": "compare", "op": "eq", "path": ["oid"], "value": "not-an-oid"},
        {"node": "compare", "op": "eq", "path": ["oid"], "value": 12},
    ]


def test_oid_comparisons_are_400_or_answers(stack: Stack) -> None:
    with stack.client("catalog") as http:
        made = http.post("/objects", json={"type": "Filter", "privileges": 3,
                                           "attributes": {"name": "oid-cmp"}})
        assert made.status_code == 201, made.text
        oid = made.json()["oid"]
        for node in _oid_nodes(oid):
            for cls, url in (("Filter", "/query"), ("Source", "/sources/query")):
                r = http.post(url, json={"query": {"cls": cls, "where": node}})
                if r.status_code == 200:  # an answer is fine too, if it is the right one
                    assert node["node"] == "between", (node, r.text)
                    continue
                assert "uuid" not in problem(r, 400)["detail"].split(":")[0], r.text
        # the meaningful ones answer
        r = http.post("/query/count", json={"cls": "Filter", "where": {
            "node": "in", "path": ["oid"], "values": [oid, str(uuid.uuid4())]}})
        assert r.status_code == 200 and r.json()["count"] == 1, r.text
        r = http.post("/query/count", json={"cls": "Filter", "where": {
            "node": "compare", "op": "eq", "path": ["oid"], "value": oid}})
        assert r.json()["count"] == 1, r.text


def test_integers_beyond_int64_are_400(stack: Stack) -> None:
    cases = [("catalog", "/changes", {"after": INT64}),
             ("catalog", "/changes", {"after": 10**30}),
             ("catalog", "/changes", {"limit": INT64}),
             ("compute", "/jobs", {"offset": INT64}),
             ("compute", "/jobs", {"offset": 10**40}),
             ("compute", "/jobs", {"limit": INT64}),
             ("catalog", "/calibrations/BiasFrame/timeline", {"chip": "c", "offset": INT64}),
             ("lineage", f"/lineage/{uuid.uuid4()}/upstream", {"depth": INT64})]
    for service, url, params in cases:
        with stack.client(service) as http:
            problem(http.get(url, params=params), 400)
    with stack.client("catalog") as http:
        r = http.post("/query", json={"query": {"cls": "Filter"}, "offset": INT64})
        problem(r, 400)
        r = http.post("/query/count", json={"cls": "Filter", "where": {
            "node": "compare", "op": "eq", "path": ["oid"], "value": INT64}})
        problem(r, 400)


def test_datetimes_out_of_range_are_400(stack: Stack) -> None:
    with stack.client("catalog") as http:
        for when in ("0001-01-01T00:00:00+14:00", "9999-12-31T23:59:59-14:00",
                     "0001-01-01T00:00:00+00:00"):
            r = http.get("/calibrations/BiasFrame/best", params={"chip": "ccd50", "time": when})
            assert r.status_code in (400, 404), r.text
            if when.endswith(("+14:00", "-14:00")):
                problem(r, 400)
            r = http.get("/calibrations/BiasFrame/timeline",
                         params={"chip": "ccd50", "start": when})
            assert r.status_code in (200, 400, 404), r.text
    with stack.client("lineage") as http:
        r = http.get(f"/lineage/{uuid.uuid4()}/upstream",
                     params={"at": "0001-01-01T00:00:00+14:00"})
        assert r.status_code in (400, 404), r.text


def test_nul_characters_are_400(stack: Stack) -> None:
    with stack.client("catalog") as http:
        me = http.get("/whoami").json()["name"]
        problem(http.post("/tokens", json={"user": me, "label": "a\x00b"}), 400)
        problem(http.post("/users", json={"name": "nul\x00user"}), 400)
        problem(http.post("/objects", json={"type": "Filter",
                                            "attributes": {"name": "a\x00b"}}), 400)
        problem(http.post("/objects", json={"type": "Filter", "comments": "a\x00b"}), 400)
        problem(http.post("/query", json={"query": {"cls": "Filter", "where": {
            "node": "compare", "op": "eq", "path": ["name"], "value": "a\x00b"}}}), 400)
        problem(http.get("/users/a%00b"), 400)
        problem(http.get("/calibrations/BiasFrame/best",
                         params={"chip": "a\x00b", "time": "2020-01-01T00:00:00"}), 400)
    with stack.client("storage") as http:
        problem(http.get("/files", params={"prefix": "a\x00b"}), 400)
    with stack.client("compute") as http:
        problem(http.get("/jobs/a%00b"), 400)
        problem(http.post("/jobs", json={"cls": "HotPixelMap", "date": "2007-07-07",
                                         "chip": "a\x00b"}), 400)
    with stack.client("lineage") as http:
        problem(http.get("/lineage/path", params={"src": "a\x00b", "dst": "b"}), 400)


# -- connections ---------------------------------------------------------------------------
def test_keep_alive_survives_errors(stack: Stack) -> None:
    bad: dict[str, list[tuple[str, str, dict[str, Any]]]] = {
        "catalog": [("DELETE", "/query", {}),
                    ("GET", "/changes", {"params": {"after": INT64}}),
                    ("POST", "/query", {"json": {"query": {"cls": "Filter", "where": {
                        "node": "like", "path": ["oid"], "pattern": "x"}}}}),
                    ("POST", "/objects", {"content": b"{", "headers": {
                        "content-type": "application/json"}})],
        "storage": [("POST", "/files/x", {}), ("GET", "/files/nothing/here.fits", {})],
        "compute": [("GET", "/jobs", {"params": {"offset": INT64}}), ("PUT", "/jobs", {})],
        "lineage": [("GET", "/lineage/path", {"params": {"src": "x", "dst": "y"}}),
                    ("POST", f"/lineage/{uuid.uuid4()}/upstream", {})],
        "federation": [("DELETE", "/federation/status", {})],
    }
    for service, requests in bad.items():
        with stack.client(service) as http:
            for _ in range(10):
                for method, url, kwargs in requests:
                    r = http.request(method, url, **kwargs)
                    assert 400 <= r.status_code < 500, (service, method, url, r.text)
                    assert r.headers.get("connection") != "close", (service, url)
                assert http.get("/livez").status_code == 200


def _psql(postgres: PostgresServer, sql: str) -> None:
    from awecore.stack._postgres import _bin  # the server's own binaries

    subprocess.run([_bin("psql"), postgres.url(), "-v", "ON_ERROR_STOP=1", "-c", sql],
                   check=True, capture_output=True)


def test_database_unavailable_is_503(stack: Stack, tmp_path: Path) -> None:
    """A database that cannot be reached (its connections shut down by an administrator,
    the database gone) is a 503 with Retry-After, not a 500: the caller should come back,
    nothing is wrong with the request."""
    db = f"awe_http_gone_{uuid.uuid4().hex[:6]}"
    env = {**os.environ, "AWE_SITE": "test", "AWE_LOG_LEVEL": "WARNING",
           "AWE_LINEAGE_DATABASE_URL": stack.postgres.create_database(db),
           "AWE_LINEAGE_CATALOG_URL": stack.urls["catalog"], "AWE_LINEAGE_FOLLOW": "false",
           "AWE_LINEAGE_SERVICE_TOKEN": ADMIN_TOKEN}
    proc, url = start_service("http-lineage-gone", "awe_lineage.main:create_app", env, tmp_path)
    try:
        with httpx.Client(base_url=url, timeout=60,
                          headers={"Authorization": f"Bearer {ADMIN_TOKEN}"}) as http:
            oid = uuid.uuid4()
            assert http.get(f"/lineage/{oid}/upstream").status_code == 404
            # its connections ended by an administrator, then the database gone (renamed)
            _psql(stack.postgres, f"ALTER DATABASE {db} ALLOW_CONNECTIONS false")
            _psql(stack.postgres, "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                                  f"WHERE datname = '{db}'")
            _psql(stack.postgres, f"ALTER DATABASE {db} RENAME TO {db}_away")
            _psql(stack.postgres, f"ALTER DATABASE {db}_away ALLOW_CONNECTIONS true")
            for _ in range(3):
                r = http.get(f"/lineage/{oid}/upstream")
                body = problem(r, 503)
                assert body["type"] == "urn:awe:error:service_unavailable"
                assert int(r.headers["retry-after"]) > 0
            assert problem(http.get("/readyz"), 503)
            assert http.get("/livez").status_code == 200
            _psql(stack.postgres, f"ALTER DATABASE {db}_away RENAME TO {db}")
            deadline = time.monotonic() + 30
            while http.get(f"/lineage/{oid}/upstream").status_code != 404:
                assert time.monotonic() < deadline, "lineage did not come back"
                time.sleep(0.2)
    finally:
        proc.stop()


# -- uploads -------------------------------------------------------------------------------
def _raw_request(url: str, head: str) -> socket.socket:
    host, port = url.removeprefix("http://").split(":")
    sock = socket.create_connection((host, int(port)), timeout=30)
    sock.sendall(head.encode())
    return sock


def _read_response(sock: socket.socket) -> bytes:
    data = b""
    while b"\r\n\r\n" not in data:
        got = sock.recv(65536)
        if not got:
            break
        data += got
    return data


def _rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError("no VmRSS")


def test_ingest_refuses_a_non_fits_body_after_its_first_block(stack: Stack) -> None:
    storage = stack.urls["storage"]
    pid = stack.procs["storage"].pid
    assert pid is not None
    before = _rss_kib(pid)
    declared = 60 * 1024 * 1024  # under the limit: only the content refuses it
    sock = _raw_request(storage, f"POST /ingest?filename=junk.fits HTTP/1.1\r\n"
                                 f"Host: x\r\nAuthorization: Bearer {ADMIN_TOKEN}\r\n"
                                 f"Content-Length: {declared}\r\n\r\n")
    sent = 0
    block = b"NOT A FITS FILE " * 4096  # 64 KiB
    sock.settimeout(0.05)
    reply = b""
    try:
        while sent < declared and not reply:
            try:
                sock.sendall(block)
                sent += len(block)
            except (BrokenPipeError, ConnectionResetError):
                break
            with contextlib.suppress(TimeoutError):
                reply = sock.recv(65536)
        sock.settimeout(30)
        while chunk := sock.recv(65536):  # the refusal, then the server closes
            reply += chunk
    finally:
        sock.close()
    assert reply.startswith(b"HTTP/1.1 400"), reply[:300]
    assert b"FITS" in reply
    assert sent < declared // 4, f"refused only after {sent} bytes"
    assert _rss_kib(pid) - before < 32 * 1024  # it did not keep what it read

    # a body over the limit: refused by its length, before any of it is sent
    sock = _raw_request(storage, f"POST /ingest?filename=big.fits HTTP/1.1\r\nHost: x\r\n"
                                 f"Authorization: Bearer {ADMIN_TOKEN}\r\n"
                                 f"Content-Length: {65 * 1024 * 1024}\r\n\r\n")
    try:
        reply = _read_response(sock)
    finally:
        sock.close()
    assert reply.startswith(b"HTTP/1.1 413"), reply[:300]
    assert b"connection: close" in reply.lower()


def test_oversized_put_is_refused_by_its_length(stack: Stack) -> None:
    name = f"http/{uuid.uuid4().hex}.bin"
    sock = _raw_request(stack.urls["storage"],
                        f"PUT /files/{name} HTTP/1.1\r\nHost: x\r\n"
                        f"Authorization: Bearer {ADMIN_TOKEN}\r\n"
                        f"Content-Length: {65 * 1024 * 1024}\r\n\r\n")
    try:
        reply = _read_response(sock)  # nothing of the body was sent
    finally:
        sock.close()
    assert reply.startswith(b"HTTP/1.1 413"), reply[:300]
    with stack.client("storage") as http:
        assert http.head(f"/files/{name}").status_code == 404


def test_a_put_whose_body_never_comes_times_out(stack: Stack) -> None:
    for sent in (b"", b"x" * 1000):
        name = f"http/{uuid.uuid4().hex}.bin"
        sock = _raw_request(stack.urls["storage"],
                            f"PUT /files/{name} HTTP/1.1\r\nHost: x\r\n"
                            f"Authorization: Bearer {ADMIN_TOKEN}\r\n"
                            f"Content-Length: 100000\r\n\r\n")
        start = time.monotonic()
        try:
            sock.sendall(sent)
            reply = _read_response(sock)
            rest = b""
            while chunk := sock.recv(65536):  # then the server closes the connection
                rest += chunk
        finally:
            sock.close()
        waited = time.monotonic() - start
        assert reply.startswith(b"HTTP/1.1 408"), reply[:300]
        assert BODY_SECONDS - 0.5 < waited < BODY_SECONDS + 20, waited
        with stack.client("storage") as http:
            assert http.head(f"/files/{name}").status_code == 404


# -- OpenAPI -------------------------------------------------------------------------------
def _resolve(doc: dict[str, Any], node: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in node:
        node = doc["components"]["schemas"][node["$ref"].rsplit("/", 1)[1]]
    return node


def test_openapi_documents_the_problems(stack: Stack) -> None:
    for service in stack.urls:
        with stack.client(service) as http:
            doc = http.get("/openapi.json").json()
        problem_schema = doc["components"]["schemas"]["Problem"]
        assert {"type", "title", "status", "detail"} <= set(problem_schema["required"])
        for path, item in doc["paths"].items():
            for method, op in item.items():
                codes = set(op["responses"])
                assert "422" not in codes, (service, method, path)
                want = {"405", "503"} if path in ("/livez", "/metrics") else \
                    {"400", "405", "503"}
                if path not in ("/livez", "/readyz", "/health", "/metrics"):
                    want |= {"401", "404"}
                assert want <= codes, (service, method, path, codes)
                for code in codes - {"200", "201", "204", "206"}:
                    content = op["responses"][code].get("content", {})
                    if code.startswith(("4", "5")):
                        schema = content["application/problem+json"]["schema"]
                        assert schema == {"$ref": "#/components/schemas/Problem"}, (path, code)
                for param in op.get("parameters", []):
                    if param["name"] in ("oid", "src", "dst"):
                        assert param["schema"].get("format") == "uuid", (service, path, param)
    with stack.client("storage") as http:
        doc = http.get("/openapi.json").json()
    assert {"409", "413"} <= set(doc["paths"]["/files/{name}"]["put"]["responses"])
    assert "416" in doc["paths"]["/files/{name}"]["get"]["responses"]
    with stack.client("catalog") as http:
        doc = http.get("/openapi.json").json()
    schemas = doc["components"]["schemas"]
    for name, schema in schemas.items():  # every query node says which node it is
        if "node" in schema.get("properties", {}):
            assert "node" in schema.get("required", []), name
    assert "409" in doc["paths"]["/objects"]["post"]["responses"]


# -- the API pages (issue 13) ----------------------------------------------------------------
_ASSET = re.compile(r"""(?:src|href|spec-url)\s*=\s*["']([^"']+)["']|url:\s*['"]([^'"]+)['"]""")


@pytest.mark.parametrize("page", ["/docs", "/redoc"])
def test_api_pages_load_nothing_from_elsewhere(stack: Stack, page: str) -> None:
    """An air-gapped site's /docs and /redoc work: each page names only paths of its own
    service (no CDN, no web fonts), and each of them is there, with its content type."""
    kinds = {".js": "javascript", ".css": "text/css", ".png": "image/png",
             ".json": "application/json"}
    for service in stack.urls:
        with stack.client(service, token=None) as http:
            r = http.get(page)
            assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
            assert not re.search(r"https?://|//[a-z0-9]", r.text, re.I), (service, r.text)
            refs = [a or b for a, b in _ASSET.findall(r.text)]
            assert {"/openapi.json"} < set(refs), (service, refs)
            for ref in refs:
                assert ref.startswith("/"), (service, ref)
                got = http.get(ref)
                assert got.status_code == 200, (service, ref, got.status_code)
                kind = kinds[Path(ref).suffix]
                assert kind in got.headers["content-type"], (service, ref, got.headers)
                assert len(got.content) > 1000, (service, ref)
