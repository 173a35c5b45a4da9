"""The VO service's HTTP contract (issue 15): schemathesis over its live OpenAPI with zero
5xx and zero answers its OpenAPI does not describe (status, media type, headers), as an
anonymous caller and as the admin; the UWS life of an async job; wrong methods (405);
ADQL that must come back as a DALI error, never a 500; and no query shape reaching rows the
caller may not see.

The service runs as its own process over the session's catalog (it only reads it) with a
short statement timeout, so a query that runs too long is seen in seconds. The fuzzer is
bounded (a few examples per operation, one worker, a fixed seed: ``--seed`` replays).
"""

from __future__ import annotations

import io
import os
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import numpy as np
import pytest
from astropy.io.votable import parse
from conftest import ADMIN_TOKEN, start_service
from test_schemathesis import schemathesis

from awe_catalog.config import CatalogSettings

pytestmark = pytest.mark.integration

#: the checks of test_schemathesis.py and those that hold the OpenAPI to what is answered
CHECKS = ("not_a_server_error,response_schema_conformance,status_code_conformance,"
          "content_type_conformance,response_headers_conformance,unsupported_method")
#: test cases per operation: the VO service has some 40 operations, each run twice
EXAMPLES = os.environ.get("AWE_FUZZ_VO_EXAMPLES", "4")
VOTABLE = "application/x-votable+xml"
TIMEOUT_MS = 1500
#: this module's random sky (its own seed: no other test module uses 1515)
SEED = 1515
#: the private source list's magnitudes: a value no public row has
SECRET_MAG = 77.125


@dataclass
class FuzzVO:
    url: str
    public: str
    private: str
    owner_token: str
    other_token: str


def _user(admin: httpx.Client, prefix: str) -> str:
    name = f"{prefix}-{uuid.uuid4().hex[:6]}"
    assert admin.post("/users", json={"name": name, "project": None}).status_code == 201
    r = admin.post("/tokens", json={"user": name})
    assert r.status_code == 201, r.text
    return str(r.json()["token"])


def _source_list(catalog: str, token: str, privileges: int, mag: float) -> str:
    rng = np.random.default_rng(SEED + privileges)
    n = 40
    columns = {"ra": (201.0 + rng.uniform(-0.05, 0.05, n)).tolist(),
               "dec": (-7.0 + rng.uniform(-0.05, 0.05, n)).tolist(),
               "mag": [mag] * n, "flux": rng.uniform(1, 1e4, n).tolist()}
    with httpx.Client(base_url=catalog, headers={"Authorization": f"Bearer {token}"},
                      timeout=60) as c:
        r = c.post("/objects/batch", json={"objects": [{"type": "SourceList",
                                                         "privileges": privileges}]})
        assert r.status_code == 201, r.text
        (oid,) = r.json()["oids"]
        assert c.post(f"/sources/{oid}", json=columns).status_code == 201
    return str(oid)


@pytest.fixture(scope="module")
def fuzz_vo(catalog_process: str, storage_process: str, catalog_settings: CatalogSettings,
            tmp_path_factory: pytest.TempPathFactory) -> Iterator[FuzzVO]:
    with httpx.Client(base_url=catalog_process, timeout=60,
                      headers={"Authorization": f"Bearer {ADMIN_TOKEN}"}) as admin:
        admin.post("/users", json={"name": "vo-fuzz-svc", "is_service": True})
        service = admin.post("/tokens", json={"user": "vo-fuzz-svc"}).json()["token"]
        owner, other = _user(admin, "vo-fuzz-owner"), _user(admin, "vo-fuzz-other")
    public = _source_list(catalog_process, ADMIN_TOKEN, 5, 18.5)
    private = _source_list(catalog_process, owner, 1, SECRET_MAG)
    env = {**os.environ, "AWE_SITE": catalog_settings.site,
           "AWE_VO_DATABASE_URL": catalog_settings.database_url.get_secret_value(),  # type: ignore[union-attr]
           "AWE_VO_CATALOG_URL": catalog_process, "AWE_VO_SERVICE_TOKEN": service,
           "AWE_VO_STORAGE_URL": storage_process, "AWE_VO_LOG_LEVEL": "WARNING",
           "AWE_VO_AUTH_CACHE_SECONDS": "0", "AWE_VO_STATEMENT_TIMEOUT_MS": str(TIMEOUT_MS)}
    proc, url = start_service("vo-fuzz", "awe_vo.main:create_app", env,
                              tmp_path_factory.mktemp("vo-fuzz"))
    try:
        yield FuzzVO(url, public, private, owner, other)
    finally:
        proc.stop()


def dali_error(r: httpx.Response, status: int) -> str:
    """The response is a DALI error document with this status; returns its message."""
    assert r.status_code == status, f"{r.request.method} {r.request.url}: {r.status_code} {r.text}"
    assert r.headers["content-type"].startswith(VOTABLE), r.headers
    vot = parse(io.BytesIO(r.content), verify="exception")
    (info,) = [i for res in vot.resources for i in res.infos if i.name == "QUERY_STATUS"]
    assert info.value == "ERROR"
    assert info.content
    return str(info.content)


def rows(r: httpx.Response) -> list[tuple[object, ...]]:
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith(VOTABLE)
    table = parse(io.BytesIO(r.content), verify="exception").get_first_table()
    return [tuple(row) for row in table.array.tolist()]


def sync(vo: FuzzVO, adql: str, token: str | None = None, method: str = "POST",
         **extra: str) -> httpx.Response:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    data = {"LANG": "ADQL", "QUERY": adql, **extra}
    if method == "GET":
        return httpx.get(f"{vo.url}/tap/sync", params=data, headers=headers, timeout=60)
    return httpx.post(f"{vo.url}/tap/sync", data=data, headers=headers, timeout=60)


# -- schemathesis ---------------------------------------------------------------------------
@pytest.mark.parametrize("who", ["anonymous", "admin"])
def test_schemathesis_vo(fuzz_vo: FuzzVO, who: str, tmp_path: Path) -> None:
    """Examples (the documented ADQL), boundary values and generated requests for every
    operation, and sequences of UWS calls on a created job (the OpenAPI links from its
    Location: phase, parameters, results, deletion); every answer a status and media type
    the OpenAPI lists, none a 5xx."""
    token = ADMIN_TOKEN if who == "admin" else None
    schemathesis(fuzz_vo.url, "examples,coverage,fuzzing,stateful", tmp_path / "fuzz",
                 "--checks", CHECKS, "--max-examples", EXAMPLES, token=token)


def test_openapi_describes_the_vo_protocols(fuzz_vo: FuzzVO) -> None:
    doc = httpx.get(f"{fuzz_vo.url}/openapi.json").json()
    get = doc["paths"]["/tap/sync"]["get"]
    params = {p["name"]: p for p in get["parameters"]}
    assert params["QUERY"]["required"] and params["LANG"]["required"]
    assert params["MAXREC"]["schema"] == {"type": "integer", "minimum": 0}
    assert params["QUERY"]["x-dali-case-insensitive"]
    assert set(get["responses"]["200"]["content"]) == {VOTABLE}
    assert set(get["responses"]["400"]["content"]) == {VOTABLE, "application/problem+json"}
    assert set(get["responses"]["405"]["content"]) == {"application/problem+json"}
    assert {} in get["security"]  # anonymous is allowed
    post = doc["paths"]["/tap/sync"]["post"]
    body = post["requestBody"]["content"]["application/x-www-form-urlencoded"]["schema"]
    assert body["required"] == ["LANG", "QUERY"]
    scs = {p["name"]: p["schema"] for p in doc["paths"]["/scs"]["get"]["parameters"]}
    assert scs["DEC"] == {"type": "number", "minimum": -90, "maximum": 90}
    assert "application/fits" in doc["paths"]["/soda"]["get"]["responses"]["200"]["content"]
    created = doc["paths"]["/tap/async"]["post"]["responses"]["303"]
    assert created["headers"]["Location"] and {"get_job", "post_job_phase",
                                                "delete_job"} <= set(created["links"])
    assert "text/plain" in doc["paths"]["/tap/async/{job_id}/phase"]["get"]["responses"]["200"][
        "content"]


# -- UWS and methods ------------------------------------------------------------------------
def test_async_job_life(fuzz_vo: FuzzVO) -> None:
    """Create (PENDING), change a parameter, run, wait, read the result, delete; an unknown
    job is 404 on every resource; someone else's job is as unknown as one never made."""
    owner = {"Authorization": f"Bearer {fuzz_vo.owner_token}"}
    with httpx.Client(base_url=fuzz_vo.url, headers=owner, timeout=60) as c:
        r = c.post("/tap/async", data={"lang": "ADQL", "query": "SELECT 1 FROM nowhere"})
        assert r.status_code == 303
        job = r.headers["location"].removeprefix(fuzz_vo.url)
        assert c.get(f"{job}/phase").text == "PENDING"
        assert c.post(f"{job}/parameters", data={
            "QUERY": f"SELECT mag FROM awe.sources WHERE sourcelist = '{fuzz_vo.private}'",
            "MAXREC": "5"}).status_code == 303
        assert "awe.sources" in c.get(f"{job}/parameters").text
        assert c.post(f"{job}/phase", data={"PHASE": "RUN"}).status_code == 303
        doc = c.get(job, params={"WAIT": "30"}).text
        assert "<uws:phase>COMPLETED</uws:phase>" in doc, doc
        result = c.get(f"{job}/results/result")
        got = rows(result)
        assert len(got) == 5 and {m for (m,) in got} == {SECRET_MAG}
        assert 'value="OVERFLOW"' in result.text
        dali_error(c.get(f"{job}/error"), 404)  # COMPLETED: it has no error
        # running again, or a PHASE nobody knows, is refused with a DALI error
        dali_error(c.post(f"{job}/phase", data={"PHASE": "RUN"}), 400)
        dali_error(c.post(f"{job}/phase", data={"PHASE": "SLEEP"}), 400)
        dali_error(c.post(job, data={"ACTION": "KEEP"}), 400)
        # not the owner's job for anyone else
        other = {"Authorization": f"Bearer {fuzz_vo.other_token}"}
        dali_error(c.get(job, headers=other), 404)
        dali_error(c.delete(job, headers=other), 404)
        assert c.delete(job).status_code == 303
        for tail in ("", "/phase", "/parameters", "/results", "/results/result", "/error",
                     "/quote", "/owner", "/destruction", "/executionduration"):
            dali_error(c.get(f"{job}{tail}"), 404)
        dali_error(c.post(f"{job}/phase", data={"PHASE": "ABORT"}), 404)

        # a query that fails ends in ERROR with its DALI document
        r = c.post("/tap/async", data={"LANG": "ADQL", "QUERY": "SELECT x FROM nowhere",
                                       "PHASE": "RUN"})
        failed = r.headers["location"].removeprefix(fuzz_vo.url)
        assert "<uws:phase>ERROR</uws:phase>" in c.get(failed, params={"WAIT": "30"}).text
        err = c.get(f"{failed}/error")  # the error document itself is what was asked
        assert err.status_code == 200 and 'value="ERROR"' in err.text
        assert "unknown table" in err.text
        # creating a job with another PHASE than RUN is refused
        dali_error(c.post("/tap/async", data={"LANG": "ADQL", "QUERY": "SELECT 1",
                                              "PHASE": "ABORT"}), 400)


def test_abort_a_running_job(fuzz_vo: FuzzVO) -> None:
    """A query that would run past the statement timeout, aborted while it runs."""
    slow = ("SELECT COUNT(*) AS n FROM TAP_SCHEMA.columns AS a, TAP_SCHEMA.columns AS b, "
            "TAP_SCHEMA.columns AS c, TAP_SCHEMA.columns AS d")
    with httpx.Client(base_url=fuzz_vo.url, timeout=60) as c:
        r = c.post("/tap/async", data={"LANG": "ADQL", "QUERY": slow, "PHASE": "RUN"})
        job = r.headers["location"].removeprefix(fuzz_vo.url)
        assert c.get(f"{job}/phase").text in ("QUEUED", "EXECUTING")
        assert c.post(f"{job}/phase", data={"PHASE": "ABORT"}).status_code == 303
        assert c.get(f"{job}/phase").text == "ABORTED"
        dali_error(c.get(f"{job}/results/result"), 404)


@pytest.mark.parametrize(("method", "path"), [
    ("PUT", "/tap/sync"), ("DELETE", "/tap/sync"), ("PATCH", "/tap/async"),
    ("PUT", "/tap/async/{job}"), ("DELETE", "/tap/async/{job}/phase"),
    ("PUT", "/tap/capabilities"), ("POST", "/tap/tables"), ("DELETE", "/scs"),
    ("PUT", "/sia/query"), ("DELETE", "/datalink"), ("POST", "/datalink/file/{job}"),
    ("PUT", "/soda"),
])
def test_wrong_methods_are_405(fuzz_vo: FuzzVO, method: str, path: str) -> None:
    r = httpx.request(method, fuzz_vo.url + path.replace("{job}", uuid.uuid4().hex), timeout=30)
    assert r.status_code == 405, r.text
    assert r.headers["content-type"].startswith("application/problem+json")
    assert r.headers["allow"]
    assert r.json()["status"] == 405


# -- ADQL that must be refused, never crash -----------------------------------------------
BAD_ADQL = [
    ("SELECT", "syntax error"),
    ("SELECT * FROM nothing", "unknown table"),
    ("SELECT nope FROM ivoa.obscore", "unknown column"),
    ("SELECT * FROM pg_catalog.pg_user", "unknown table"),
    ("SELECT * FROM public.objects", "unknown table"),
    ("SELECT * FROM objects", "unknown table"),
    ("SELECT * FROM ivoa.obscore AS o WHERE EXISTS (SELECT 1 FROM pg_class)", "unknown table"),
    ("SELECT * FROM awe.sources; DROP TABLE objects", "one query"),
    ("SELECT 1 FROM ivoa.obscore; SELECT 2 FROM ivoa.obscore", ""),
    ("SELECT * FROM ivoa.obscore -- comment", "syntax error"),
    ("SELECT * FROM ivoa.obscore /* c */", "syntax error"),
    ("SELECT pg_sleep(10) FROM ivoa.obscore", "unknown function"),
    ("SELECT version() FROM ivoa.obscore", "unknown function"),
    ("SELECT current_setting('data_directory') FROM ivoa.obscore", ""),
    ("SELECT TOP 99999999999999999999999 * FROM ivoa.obscore", "TOP"),
    ("SELECT 99999999999999999999999 FROM ivoa.obscore", "int64"),
    ("SELECT 1/0 FROM ivoa.obscore", "division by zero"),
    ("SELECT ACOS(2) FROM ivoa.obscore", "out of range"),
    ("SELECT 9223372036854775807 + 1 FROM ivoa.obscore", "out of range"),
    ("SELECT " + "(" * 200 + "1" + ")" * 200 + " FROM ivoa.obscore", "nest"),
    ("SELECT " + "+".join(["1"] * 6000) + " FROM ivoa.obscore", "tokens"),
    ("SELECT 'é😀' FROM ivoa.obscore", "syntax error"),
    ("SELECT a ¤ b FROM ivoa.obscore", "syntax error"),
    ("SELECT obs_id FROM ivoa.obscore WHERE obs_id = 1", "operator does not exist"),
    ("SELECT * FROM ivoa.obscore WHERE t_min > 'garbage'", "real number"),
    ("SELECT * FROM awe.sources WHERE sourcelist = 'not-a-uuid'", "UUID"),
    ("SELECT ra FROM awe.sources ORDER BY 99", "ORDER BY"),
    ("SELECT ra FROM awe.sources OFFSET 99999999999999999999", "int64"),
    ("SELECT * FROM (SELECT * FROM awe.sources) AS x", "subqueries in FROM"),
    ("WITH x AS (SELECT 1) SELECT * FROM x", ""),
    ("SELECT POINT('ICRS', 1, 2) FROM awe.sources", "geometries"),
    ("SELECT ra FROM awe.sources WHERE CONTAINS(POINT('ICRS', ra, dec), "
     "CIRCLE('ICRS', 1, 95, 1)) = 1", "declination"),
    ("SELECT ra FROM awe.sources WHERE CONTAINS(POINT('ICRS', ra, dec), "
     "POLYGON('ICRS', 1, 1, 1, 1, 1, 1)) = 1", "POLYGON"),
    ("SELECT * FROM ivoa.obscore UNION SELECT * FROM awe.sources", "UNION"),
    ("SELECT a.ra FROM awe.sources a JOIN awe.sources a ON a.ra = a.ra", "alias"),
]


@pytest.mark.parametrize(("adql", "why"), BAD_ADQL, ids=[str(i) for i in range(len(BAD_ADQL))])
def test_bad_adql_is_a_dali_error(fuzz_vo: FuzzVO, adql: str, why: str) -> None:
    """Parse errors, unknown tables and columns, functions outside the whitelist,
    injection attempts, values PostgreSQL refuses, pathological nesting: 400 DALI errors,
    by POST and (where the URL takes it) by GET, anonymous and as a user."""
    message = dali_error(sync(fuzz_vo, adql), 400)
    assert why.lower() in message.lower(), message
    if len(adql) < 2000:
        dali_error(sync(fuzz_vo, adql, fuzz_vo.other_token, method="GET"), 400)


def test_statement_timeout_and_maxrec(fuzz_vo: FuzzVO) -> None:
    slow = ("SELECT COUNT(*) AS n FROM TAP_SCHEMA.columns AS a, TAP_SCHEMA.columns AS b, "
            "TAP_SCHEMA.columns AS c, TAP_SCHEMA.columns AS d")
    assert "longer than" in dali_error(sync(fuzz_vo, slow), 408)
    # the service answers the next request at once (the connection and pool recovered)
    q = f"SELECT mag FROM awe.sources WHERE sourcelist = '{fuzz_vo.public}'"
    assert len(rows(sync(fuzz_vo, q, MAXREC="99999999999999999999999999"))) == 40
    assert len(rows(sync(fuzz_vo, q, maxrec="3"))) == 3
    assert rows(sync(fuzz_vo, q, MAXREC="0")) == []
    for bad in ("-1", "lots", "1e3", "9" * 5000):
        dali_error(sync(fuzz_vo, q, MAXREC=bad), 400)
    dali_error(sync(fuzz_vo, q, MAXREC="1", maxrec="2"), 400)  # one name, twice
    dali_error(sync(fuzz_vo, q, LANG="SQL"), 400)
    dali_error(sync(fuzz_vo, q, REQUEST="getCapabilities"), 400)
    dali_error(sync(fuzz_vo, q, RESPONSEFORMAT="csv"), 400)


#: query shapes that might leak a row past the privilege rule if the compiler let a table
#: or a correlation escape its visibility sub-select
SHAPES = [
    "SELECT mag, sourcelist FROM awe.sources WHERE sourcelist = '{private}'",
    "SELECT s.mag FROM awe.sources AS s WHERE s.mag > 70",
    "SELECT mag FROM awe.sources WHERE mag > 70 UNION SELECT mag FROM awe.sources",
    "SELECT COUNT(*) AS n FROM awe.sources WHERE mag > 70",
    "SELECT MAX(mag) AS m FROM awe.sources",
    "SELECT ra FROM awe.sources WHERE sourcelist IN (SELECT sourcelist FROM awe.sources "
    "WHERE mag > 70)",
    "SELECT t.table_name FROM TAP_SCHEMA.tables AS t WHERE EXISTS (SELECT 1 FROM "
    "awe.sources AS s WHERE s.mag > 70)",
    "SELECT a.mag FROM awe.sources AS a JOIN awe.sources AS b ON a.seq = b.seq "
    "WHERE b.mag > 70",
    "SELECT mag FROM awe.sources WHERE CONTAINS(POINT('ICRS', ra, dec), "
    "CIRCLE('ICRS', 201, -7, 0.5)) = 1 AND mag > 70",
    "SELECT obs_id FROM ivoa.obscore WHERE obs_id = '{private}'",
]


@pytest.mark.parametrize("shape", SHAPES, ids=[str(i) for i in range(len(SHAPES))])
def test_no_query_reaches_invisible_rows(fuzz_vo: FuzzVO, shape: str) -> None:
    """The private source list (privilege 1) is its owner's: no shape of query shows its
    rows (nor that they exist) to an anonymous caller or to another user; its owner sees
    them through the same shapes."""
    adql = shape.format(private=fuzz_vo.private)
    for token in (None, fuzz_vo.other_token):
        got = rows(sync(fuzz_vo, adql, token))
        flat = [v for r in got for v in r]
        assert SECRET_MAG not in flat and fuzz_vo.private not in flat, (token, got)
        if "COUNT" in adql:
            assert got == [(0,)], got
    owner = rows(sync(fuzz_vo, adql, fuzz_vo.owner_token))
    if "mag" in shape.split("FROM")[0] or "COUNT" in shape:
        assert owner, "the owner sees their own rows"
