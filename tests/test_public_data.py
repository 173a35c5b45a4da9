"""Public data (issue 14): privilege 5 is the world, readable without a token.

Real services (the catalog, storage and lineage processes, one PostgreSQL): a frame at 5,
its file, its sources, its calibration and its lineage are read with no Authorization
header at all; the same kinds of object at 4 (every signed-in user of every site) and 3
(every signed-in user of this site) are "not found" to the anonymous reader, exactly as for
an object that does not exist. A wrong token is 401, not anonymous; every write without a
token is 401.
"""

from __future__ import annotations

import os
import random
import time
from collections.abc import Iterator
from dataclasses import dataclass

import httpx
import pytest
from conftest import ADMIN_TOKEN, start_service

from awecore.stack import Broker, PostgresServer
from awecore.visibility import HIDDEN_OID

pytestmark = pytest.mark.integration

AUTH = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
NIGHT = "2004-03-01T00:00:00+00:00"
WINDOW = {"timestamp_start": "2004-02-28T00:00:00+00:00",
          "timestamp_end": "2004-03-03T00:00:00+00:00"}


@dataclass
class Published:
    """Objects at 5, 4 and 3 by level, each with a file of its own, and their urls."""

    urls: dict[str, str]
    tag: str
    chip: str
    raw: str  # at 3: an input of the public frame the world may not see
    frames: dict[int, str]
    files: dict[int, str]
    biases: dict[int, str]
    lists: dict[int, str]
    ra: float
    dec: float


def _service_token(catalog: str, name: str) -> str:
    with httpx.Client(base_url=catalog, headers=AUTH, timeout=30) as admin:
        admin.post("/users", json={"name": name, "is_service": True})
        made = admin.post("/tokens", json={"user": name})
        assert made.status_code == 201, made.text
        return str(made.json()["token"])


def _made(r: httpx.Response) -> list[str]:
    assert r.status_code == 201, r.text
    return list(r.json()["oids"])


@pytest.fixture(scope="module")
def public(postgres: PostgresServer, broker: Broker, catalog_process: str,
           storage_process: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Published]:
    tag = os.urandom(4).hex()
    env = {**os.environ, "AWE_SITE": "test", "AWE_LINEAGE_LOG_LEVEL": "WARNING",
           "AWE_LINEAGE_DATABASE_URL": postgres.create_database(f"awe_public_lineage_{tag}"),
           "AWE_LINEAGE_CATALOG_URL": catalog_process,
           "AWE_LINEAGE_SERVICE_TOKEN": _service_token(catalog_process, f"public-lin-{tag}"),
           "AWE_LINEAGE_KAFKA_BOOTSTRAP_SERVERS": broker.bootstrap_servers,
           # no relay here: the changelog is read over HTTP, often
           "AWE_LINEAGE_CATCH_UP_SECONDS": "0.3"}
    proc, lineage = start_service(f"public-lineage-{tag}", "awe_lineage.main:create_app", env,
                                  tmp_path_factory.mktemp("public"))
    rng = random.Random(tag)
    ra, dec = rng.uniform(10, 350), rng.uniform(-60, 60)
    try:
        with httpx.Client(base_url=catalog_process, headers=AUTH, timeout=60) as cat, \
                httpx.Client(base_url=storage_process, headers=AUTH, timeout=60) as sto:
            (chip,) = _made(cat.post("/objects/batch", json={"objects": [
                {"type": "Chip", "privileges": 5, "attributes": {"name": f"pub-{tag}"}}]}))
            (raw,) = _made(cat.post("/objects/batch", json={"objects": [
                {"type": "RawScienceFrame", "privileges": 3, "refs": {"chip": chip},
                 "attributes": {"date_obs": NIGHT}}]}))
            files, frames, biases, lists = {}, {}, {}, {}
            for level in (5, 4, 3):
                files[level] = f"red/public-{tag}/level{level}.fits"
                r = sto.put(f"/files/{files[level]}", content=f"pixels at {level}".encode())
                assert r.status_code == 201, r.text
                (frames[level],) = _made(cat.post("/objects/batch", json={"objects": [
                    {"type": "ReducedScienceFrame", "privileges": level,
                     "filename": files[level], "refs": {"chip": chip, "raw": raw}}]}))
                (biases[level],) = _made(cat.post("/objects/batch", json={"objects": [
                    {"type": "BiasFrame", "privileges": level, **WINDOW,
                     "refs": {"chip": chip}}]}))
                (lists[level],) = _made(cat.post("/objects/batch", json={"objects": [
                    {"type": "SourceList", "privileges": level,
                     "refs": {"frame": frames[level]}}]}))
                # each list's sources around the same spot: a cone finds those it may see
                n = 5 * (6 - level)
                cols = {"ra": [ra + 0.001 * i for i in range(n)],
                        "dec": [dec + 0.001 * i for i in range(n)],
                        "mag": [17.0 + level] * n}
                r = cat.post(f"/sources/{lists[level]}", json=cols)
                assert r.status_code == 201, r.text
            last = cat.get("/changes", params={"limit": 1}).json()["last_sequence"]
        deadline = time.monotonic() + 120
        with httpx.Client(base_url=lineage, timeout=30) as lin:
            while (applied := lin.get("/health").json().get("applied_sequence", -1)) < last:
                assert time.monotonic() < deadline, f"lineage at {applied}, not {last}"
                time.sleep(0.2)
        yield Published(urls={"catalog": catalog_process, "storage": storage_process,
                              "lineage": lineage}, tag=tag, chip=chip, raw=raw, frames=frames,
                        files=files, biases=biases, lists=lists, ra=ra, dec=dec)
    finally:
        proc.stop()


def anonymous(public: Published, service: str) -> httpx.Client:
    """A client with no Authorization header at all."""
    return httpx.Client(base_url=public.urls[service], timeout=60)


def not_found(r: httpx.Response) -> None:
    assert r.status_code == 404, r.text
    assert r.headers["content-type"] == "application/problem+json"


def test_catalog_serves_level_5_only_to_the_world(public: Published) -> None:
    with anonymous(public, "catalog") as cat:
        got = cat.get(f"/objects/{public.frames[5]}")
        assert got.status_code == 200, got.text
        body = got.json()
        assert (body["privileges"], body["filename"]) == (5, public.files[5])
        # its input at 3 is named by no oid to the world
        assert body["refs"] == {"chip": public.chip, "raw": HIDDEN_OID}
        for level in (4, 3):
            not_found(cat.get(f"/objects/{public.frames[level]}"))
        many = cat.post("/objects/get", json={"oids": list(public.frames.values())}).json()
        assert [o["oid"] for o in many["objects"]] == [public.frames[5]]
        spec = {"cls": "ReducedScienceFrame", "where": {
            "node": "compare", "op": "eq", "path": ["chip", "name"], "value": f"pub-{public.tag}"}}
        page = cat.post("/query", json={"query": spec})
        assert page.status_code == 200, page.text
        assert [o["oid"] for o in page.json()["objects"]] == [public.frames[5]]
        assert cat.post("/query/count", json=spec).json() == {"count": 1}
        # the best bias for the public chip, as the world sees it: the public one
        best = cat.get("/calibrations/BiasFrame/best",
                       params={"chip": f"pub-{public.tag}", "time": NIGHT})
        assert best.status_code == 200, best.text
        assert best.json()["oid"] == public.biases[5]
        classes = cat.get("/classes")
        assert classes.status_code == 200 and "ReducedScienceFrame" in classes.json()
    with httpx.Client(base_url=public.urls["catalog"], headers=AUTH, timeout=60) as admin:
        page = admin.post("/query", json={"query": spec}).json()  # all three are there
        assert sorted(o["oid"] for o in page["objects"]) == sorted(public.frames.values())


def test_cone_search_finds_public_sources_only(public: Published) -> None:
    params = {"ra": public.ra, "dec": public.dec, "radius": 0.05}
    with anonymous(public, "catalog") as cat:
        r = cat.get("/sources/cone", params=params)
        assert r.status_code == 200, r.text
        sources = r.json()["sources"]
        assert len(sources) == 5  # the level-5 list's 5, not the 10 at 4 nor the 15 at 3
        assert {s["mag"] for s in sources} == {22.0}
        posted = cat.post("/sources/cone", json=params)
        assert posted.status_code == 200 and len(posted.json()["sources"]) == 5
    with httpx.Client(base_url=public.urls["catalog"], headers=AUTH, timeout=60) as admin:
        assert len(admin.get("/sources/cone", params=params).json()["sources"]) == 30


def test_storage_serves_the_files_of_public_objects(public: Published) -> None:
    with anonymous(public, "storage") as sto:
        r = sto.get(f"/files/{public.files[5]}")
        assert r.status_code == 200 and r.content == b"pixels at 5"
        part = sto.get(f"/files/{public.files[5]}", headers={"Range": "bytes=0-5"})
        assert part.status_code == 206 and part.content == b"pixels"
        assert sto.head(f"/files/{public.files[5]}").status_code == 200
        for level in (4, 3):
            not_found(sto.get(f"/files/{public.files[level]}"))
            assert sto.head(f"/files/{public.files[level]}").status_code == 404
        listed = sto.get("/files", params={"prefix": f"red/public-{public.tag}/"})
        assert listed.status_code == 200, listed.text
        assert [f["name"] for f in listed.json()["files"]] == [public.files[5]]


def test_lineage_of_a_public_object_hides_the_rest(public: Published) -> None:
    with anonymous(public, "lineage") as lin:
        up = lin.get(f"/lineage/{public.frames[5]}/upstream")
        assert up.status_code == 200, up.text
        oids = {n["oid"] for n in up.json()["nodes"]}
        assert oids == {public.frames[5], public.chip}  # not the raw frame at 3
        down = lin.get(f"/lineage/{public.frames[5]}/downstream").json()
        assert {n["oid"] for n in down["nodes"]} == {public.frames[5], public.lists[5]}
        stale = lin.get(f"/lineage/{public.frames[5]}/staleness")
        assert stale.status_code == 200, stale.text
        inputs = {e["name"]: e["input"] for e in stale.json()["edges"]}
        assert inputs["raw"] == HIDDEN_OID and inputs["chip"] == public.chip
        prov = lin.get(f"/lineage/{public.frames[5]}/prov")
        assert prov.status_code == 200 and public.raw not in prov.text
        for level in (4, 3):
            not_found(lin.get(f"/lineage/{public.frames[level]}/upstream"))
        not_found(lin.get(f"/lineage/{public.raw}/downstream"))
        not_found(lin.get("/lineage/path", params={"src": public.frames[5],
                                                   "dst": public.raw}))


@pytest.mark.parametrize("service", ["catalog", "storage", "lineage"])
def test_a_wrong_token_is_401_not_anonymous(public: Published, service: str) -> None:
    path = {"catalog": f"/objects/{public.frames[5]}", "storage": f"/files/{public.files[5]}",
            "lineage": f"/lineage/{public.frames[5]}/upstream"}[service]
    for header in ("Bearer not-a-token", "Bearer", "Basic YWxpY2U6c2VjcmV0"):
        with httpx.Client(base_url=public.urls[service], timeout=60,
                          headers={"Authorization": header}) as http:
            r = http.get(path)
            assert r.status_code == 401, (header, r.text)
            assert r.headers["content-type"] == "application/problem+json"


def test_writes_need_a_token(public: Published) -> None:
    with anonymous(public, "catalog") as cat:
        for r in (cat.post("/objects", json={"type": "Filter", "privileges": 5}),
                  cat.post("/objects/batch", json={"objects": [{"type": "Filter"}]}),
                  cat.patch(f"/objects/{public.frames[5]}", json={"comments": "mine"}),
                  cat.post(f"/sources/{public.lists[5]}", json={"ra": [1.0], "dec": [1.0]}),
                  cat.get("/changes"), cat.get("/users/me"), cat.get("/tokens")):
            assert r.status_code == 401, (r.request.method, r.request.url, r.text)
        assert cat.get(f"/objects/{public.frames[5]}").json()["comments"] != "mine"
    with anonymous(public, "storage") as sto:
        for r in (sto.put(f"/files/red/public-{public.tag}/mine.fits", content=b"x"),
                  sto.delete(f"/files/{public.files[5]}"),
                  sto.post("/ingest", params={"filename": "x.fits"}, content=b"x")):
            assert r.status_code == 401, (r.request.url, r.text)
        assert sto.get(f"/files/{public.files[5]}").status_code == 200  # still there
        not_found(sto.get(f"/files/red/public-{public.tag}/mine.fits"))

