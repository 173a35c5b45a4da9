"""TAP with ADQL through pyvo, as an astronomer would reach AWE: sync and async queries, a
cone on the source table agreeing with the catalog's own cone search, MAXREC overflow, DALI
errors, injection attempts, privileges, TAP_SCHEMA and VOSI."""

from __future__ import annotations

import io
import uuid
import warnings
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any
from xml.etree import ElementTree

import asyncpg
import httpx
import numpy as np
import pytest
import pyvo
import requests
from astropy.io.votable import parse

from awe_vo.storage import read_only
from awecore.server import pg

if TYPE_CHECKING:
    from vo_stack import VONight, VOStack

# the fixtures vo and vo_night (tests/vo_stack.py)
pytest_plugins = ["vo_stack"]

pytestmark = pytest.mark.integration


def strict(content: bytes) -> Any:
    """A VOTable parsed as astropy's strictest reader does (any deviation raises)."""
    return parse(io.BytesIO(content), verify="exception")


def status_of(votable: Any) -> str:
    infos = [i for r in votable.resources for i in r.infos if i.name == "QUERY_STATUS"]
    assert len(infos) == 1
    return str(infos[0].value)


def tap(vo: VOStack, token: str | None = None) -> pyvo.dal.TAPService:
    session = requests.Session()
    if token:
        session.headers["Authorization"] = f"Bearer {token}"
    return pyvo.dal.TAPService(f"{vo.url}/tap", session=session)


def user(vo: VOStack, prefix: str) -> tuple[str, str]:
    """A new user and their token."""
    name = f"{prefix}-{uuid.uuid4().hex[:6]}"
    with vo.admin() as admin:
        assert admin.post("/users", json={"name": name, "project": None}).status_code == 201
        r = admin.post("/tokens", json={"user": name})
        assert r.status_code == 201
        return name, r.json()["token"]


def sky(seed: int, n: int, ra0: float, dec0: float, size: float) -> dict[str, list[float]]:
    rng = np.random.default_rng(seed)
    return {"ra": (ra0 + rng.uniform(-size, size, n)).tolist(),
            "dec": (dec0 + rng.uniform(-size, size, n)).tolist(),
            "mag": rng.uniform(16, 23, n).tolist(), "flux": rng.uniform(1, 1e5, n).tolist()}


def source_list(token: str, catalog_url: str, privileges: int,
                columns: dict[str, list[float]]) -> str:
    with httpx.Client(base_url=catalog_url, headers={"Authorization": f"Bearer {token}"},
                      timeout=60) as c:
        r = c.post("/objects/batch", json={"objects": [{"type": "SourceList",
                                                         "privileges": privileges}]})
        assert r.status_code == 201, r.text
        (oid,) = r.json()["oids"]
        r = c.post(f"/sources/{oid}", json=columns)
        assert r.status_code == 201, r.text
        return str(oid)


def cone(ra: float, dec: float, radius: float, extra: str = "") -> str:
    return ("SELECT sourcelist, seq, ra, dec, mag FROM awe.sources WHERE "
            f"CONTAINS(POINT('ICRS', ra, dec), CIRCLE('ICRS', {ra}, {dec}, {radius})) = 1"
            + extra)


@pytest.fixture(scope="module")
def field(vo: VOStack) -> Iterator[dict[str, Any]]:
    """5000 sources at privilege 5 around (150, 2) and 300 at privilege 3 beside them."""
    public = sky(11, 5000, 150.0, 2.0, 0.4)
    sl = source_list(vo.admin_token, vo.catalog_url, 5, public)
    hidden = source_list(vo.admin_token, vo.catalog_url, 3, sky(12, 300, 150.0, 2.0, 0.2))
    yield {"public": sl, "columns": public, "sites": hidden}


def test_tap_schema_and_vosi(vo: VOStack) -> None:
    service = tap(vo)
    names = {r["table_name"] for r in service.search("SELECT table_name FROM TAP_SCHEMA.tables")}
    assert {"ivoa.obscore", "awe.sources", "awe.reduced_science_frame", "TAP_SCHEMA.columns",
            "TAP_SCHEMA.tables"} <= names
    cols = service.search("SELECT column_name, unit, ucd FROM TAP_SCHEMA.columns "
                          "WHERE table_name = 'awe.sources'")
    by_name = {r["column_name"]: (r["unit"], r["ucd"]) for r in cols}
    assert by_name["ra"] == ("deg", "pos.eq.ra;meta.main")
    assert by_name["mag"][0] == "mag"
    # VOSI: the same tables, and the other VO services in the capabilities
    assert "ivoa.obscore" in [t.name for t in service.tables]
    assert service.tables["awe.sources"].columns[3].name == "ra"
    standards = {c.standardid for c in service.capabilities}
    assert {"ivo://ivoa.net/std/TAP", "ivo://ivoa.net/std/ConeSearch",
            "ivo://ivoa.net/std/SIA#query-2.0", "ivo://ivoa.net/std/DataLink#links-1.0"} \
        <= standards
    r = httpx.get(f"{vo.url}/tap/availability")
    assert r.status_code == 200 and "<avl:available>true</avl:available>" in r.text
    assert service.hardlimit == 1_000_000


def test_cone_agrees_with_the_catalog(vo: VOStack, field: dict[str, Any]) -> None:
    for radius in (0.05, 0.2):
        got = tap(vo, vo.admin_token).search(cone(150.0, 2.0, radius), maxrec=100_000)
        with vo.admin() as admin:
            r = admin.get("/sources/cone", params={"ra": 150.0, "dec": 2.0, "radius": radius,
                                                  "limit": 100_000})
        assert r.status_code == 200
        want = {(s["sourcelist"], s["seq"]) for s in r.json()["sources"]}
        mine = {(str(row["sourcelist"]), int(row["seq"])) for row in got}
        assert mine == want and len(mine) > 10
        # and against the positions themselves: nothing inside missed, nothing outside in
        ra, dec = np.array(field["columns"]["ra"]), np.array(field["columns"]["dec"])
        d = np.degrees(np.arccos(np.clip(np.sin(np.radians(dec)) * np.sin(np.radians(2.0))
                                         + np.cos(np.radians(dec)) * np.cos(np.radians(2.0))
                                         * np.cos(np.radians(ra - 150.0)), -1, 1)))
        inside = set(np.flatnonzero(d <= radius).tolist())
        assert {s for sl, s in mine if sl == field["public"]} == inside
    # the units and UCDs of the columns travel with the result
    t = got.to_table()
    assert str(t["ra"].unit) == "deg" and t["mag"].unit == "mag"
    assert got.fieldname_with_ucd("pos.eq.ra;meta.main") == "ra"


def test_distance_and_polygon(vo: VOStack, field: dict[str, Any]) -> None:
    service = tap(vo)
    near = service.search(
        "SELECT seq, DISTANCE(POINT('ICRS', ra, dec), POINT('ICRS', 150, 2)) AS d "
        f"FROM awe.sources WHERE sourcelist = '{field['public']}' AND "
        "DISTANCE(POINT('ICRS', ra, dec), POINT('ICRS', 150, 2)) < 0.1 ORDER BY d")
    ds = [float(r["d"]) for r in near]
    assert ds == sorted(ds) and ds and ds[-1] < 0.1
    ra, dec = np.array(field["columns"]["ra"]), np.array(field["columns"]["dec"])
    box = service.search(
        f"SELECT seq FROM awe.sources WHERE sourcelist = '{field['public']}' AND "
        "CONTAINS(POINT('ICRS', ra, dec), POLYGON('ICRS', 149.9, 1.9, 150.1, 1.9, "
        "150.1, 2.1, 149.9, 2.1)) = 1", maxrec=100_000)
    inside = (ra > 149.9 + 1e-3) & (ra < 150.1 - 1e-3) & (dec > 1.9 + 1e-3) & (dec < 2.1 - 1e-3)
    got = {int(r["seq"]) for r in box}
    assert set(np.flatnonzero(inside).tolist()) <= got  # great circles bulge a little
    outside = (ra < 149.9 - 1e-3) | (ra > 150.1 + 1e-3) | (dec < 1.9 - 1e-3) | \
        (dec > 2.1 + 1e-3)
    assert not got & set(np.flatnonzero(outside).tolist())


def test_async_job(vo: VOStack, field: dict[str, Any]) -> None:
    service = tap(vo)
    result = service.run_async(f"SELECT COUNT(*) AS n FROM awe.sources "
                               f"WHERE sourcelist = '{field['public']}'")
    assert int(result[0]["n"]) == 5000
    # the job's life by hand: created PENDING, run, completed, deleted
    job = service.submit_job("SELECT TOP 3 seq FROM awe.sources ORDER BY seq")
    assert job.phase == "PENDING"
    job.run()
    job.wait(phases=["COMPLETED", "ERROR", "ABORTED"])
    assert job.phase == "COMPLETED"
    assert len(job.fetch_result()) == 3
    url = job.url
    # the job's parameters and results, each a UWS document of its own
    uws, xlink = "{http://www.ivoa.net/xml/UWS/v1.0}", "{http://www.w3.org/1999/xlink}"
    params = ElementTree.fromstring(httpx.get(f"{url}/parameters").content)
    assert params.tag == f"{uws}parameters"
    assert {p.get("id"): p.text for p in params}["query"] == \
        "SELECT TOP 3 seq FROM awe.sources ORDER BY seq"
    results = ElementTree.fromstring(httpx.get(f"{url}/results").content)
    assert results.tag == f"{uws}results"
    assert [r.get(f"{xlink}href") for r in results] == [f"{url}/results/result"]
    job.delete()
    r = httpx.get(url)
    assert r.status_code == 404 and status_of(strict(r.content)) == "ERROR"
    # a bad query fails in the job, with the message
    bad = service.submit_job("SELECT nothing FROM awe.sources")
    bad.run()
    bad.wait(phases=["COMPLETED", "ERROR", "ABORTED"])
    assert bad.phase == "ERROR"
    with pytest.raises(pyvo.dal.DALQueryError, match="unknown column 'nothing'"):
        bad.raise_if_error()


def test_maxrec_overflow(vo: VOStack, field: dict[str, Any]) -> None:
    with warnings.catch_warnings(record=True):
        warnings.simplefilter("always")
        got = tap(vo).search(cone(150.0, 2.0, 0.3), maxrec=7)
    assert len(got) == 7 and got.query_status == "OVERFLOW"
    r = httpx.post(f"{vo.url}/tap/sync", data={"LANG": "ADQL", "MAXREC": "7",
                                                "QUERY": cone(150.0, 2.0, 0.3)})
    assert status_of(strict(r.content)) == "OVERFLOW"
    # GET works as POST does, and parameter names are case-insensitive (DALI)
    r = httpx.get(f"{vo.url}/tap/sync", params={"lang": "ADQL", "maxrec": "7",
                                                 "Query": cone(150.0, 2.0, 0.3)})
    doc = strict(r.content)
    assert r.status_code == 200 and status_of(doc) == "OVERFLOW"
    assert len(doc.get_first_table().array) == 7
    # TOP below MAXREC is no overflow
    top = tap(vo).search("SELECT TOP 5 seq FROM awe.sources", maxrec=7)
    assert len(top) == 5 and top.query_status == "OK"


@pytest.mark.parametrize(("query", "message"), [
    ("SELEC ra FROM awe.sources", "syntax error"),
    ("SELECT ra FROM objects", "unknown table 'objects'"),
    ("SELECT ra FROM pg_catalog.pg_authid", "unknown table"),
    ("SELECT creator FROM awe.sources", "unknown column 'creator'"),
    ("SELECT pg_sleep(10) FROM awe.sources", "unknown function"),
    ("SELECT ra FROM awe.sources; DELETE FROM objects", "one query"),
    ("SELECT ra FROM awe.sources WHERE CONTAINS(POINT('ICRS', ra, dec), "
     "CIRCLE('ICRS', 1, 95, 1)) = 1", "declination"),
    ("SELECT ra FROM awe.sources WHERE CONTAINS(POINT('ICRS', ra, dec), POLYGON('ICRS', "
     "0, 0, 2, 0, 1, 0.2, 2, 2, 0, 2)) = 1", "not convex"),
])
def test_bad_adql_is_a_dali_error(vo: VOStack, query: str, message: str) -> None:
    r = httpx.post(f"{vo.url}/tap/sync", data={"LANG": "ADQL", "QUERY": query})
    assert r.status_code == 400
    doc = strict(r.content)
    assert status_of(doc) == "ERROR"
    assert message in str(doc.resources[0].infos[0].content)
    with pytest.raises((pyvo.dal.DALQueryError, pyvo.dal.DALServiceError), match=message):
        tap(vo).search(query)


def test_bad_parameters(vo: VOStack) -> None:
    for data, message in (({"QUERY": "SELECT ra FROM awe.sources"}, "LANG"),
                          ({"LANG": "SQL", "QUERY": "SELECT 1"}, "not supported"),
                          ({"LANG": "ADQL"}, "QUERY is required"),
                          ({"LANG": "ADQL", "QUERY": "SELECT ra FROM awe.sources",
                            "MAXREC": "many"}, "MAXREC")):
        r = httpx.post(f"{vo.url}/tap/sync", data=data)
        assert r.status_code == 400, data
        assert message in str(strict(r.content).resources[0].infos[0].content)
    r = httpx.get(f"{vo.url}/tap/async/{'0' * 32}")
    assert r.status_code == 404


@pytest.mark.parametrize("evil", [
    "x'; DROP TABLE objects; --",
    "x' OR '1'='1",
    "x\\'; DELETE FROM sources; --",
    "') UNION SELECT creator FROM objects --",
])
def test_injection_stays_a_value(vo: VOStack, field: dict[str, Any], evil: str) -> None:
    quoted = evil.replace("'", "''")
    got = tap(vo).search(f"SELECT seq FROM awe.sources WHERE sourcelist = '{field['public']}' "
                         f"AND source_id = '{quoted}'")
    assert len(got) == 0
    # the tables are all there, whole
    n = tap(vo).search(f"SELECT COUNT(*) AS n FROM awe.sources "
                       f"WHERE sourcelist = '{field['public']}'")
    assert int(n[0]["n"]) == 5000
    # an identifier cannot carry SQL either
    r = httpx.post(f"{vo.url}/tap/sync", data={
        "LANG": "ADQL", "QUERY": 'SELECT "ra; DROP TABLE objects" FROM awe.sources'})
    assert r.status_code == 400


def test_privileges(vo: VOStack, field: dict[str, Any]) -> None:
    alice, alice_token = user(vo, "alice")
    _, bob_token = user(vo, "bob")
    mine = source_list(alice_token, vo.catalog_url, 1, sky(21, 200, 40.0, -20.0, 0.05))
    query = cone(40.0, -20.0, 0.2)
    assert len(tap(vo, alice_token).search(query)) == 200
    assert len(tap(vo, bob_token).search(query)) == 0
    assert len(tap(vo).search(query)) == 0
    by_id = f"SELECT COUNT(*) AS n FROM awe.sources WHERE sourcelist = '{mine}'"
    assert int(tap(vo, bob_token).search(by_id)[0]["n"]) == 0
    assert int(tap(vo, vo.admin_token).search(by_id)[0]["n"]) == 200
    # anonymous callers see level 5 only: the public list, not the one shared with all sites
    anonymous = {str(r["sourcelist"]) for r in tap(vo).search(cone(150.0, 2.0, 0.2),
                                                               maxrec=100_000)}
    assert anonymous == {field["public"]}
    signed_in = {str(r["sourcelist"]) for r in tap(vo, bob_token).search(
        cone(150.0, 2.0, 0.2), maxrec=100_000)}
    assert field["sites"] in signed_in
    # the same rule on the object tables
    lists = f"SELECT oid, privilege FROM awe.source_list WHERE oid = '{mine}'"
    assert len(tap(vo).search(lists)) == 0 and len(tap(vo, bob_token).search(lists)) == 0
    assert [int(r["privilege"]) for r in tap(vo, alice_token).search(lists)] == [1]
    levels = {int(r["privilege"]) for r in tap(vo).search(
        "SELECT DISTINCT privilege FROM awe.source_list")}
    assert levels == {5}
    # a bad token is refused, not taken for anonymous
    r = httpx.post(f"{vo.url}/tap/sync", data={"LANG": "ADQL", "QUERY": by_id},
                   headers={"Authorization": "Bearer awe_not-a-token"})
    assert r.status_code == 401 and status_of(strict(r.content)) == "ERROR"
    assert alice


def test_obscore_lists_the_published_frames(vo: VOStack, vo_night: VONight) -> None:
    got = tap(vo).search("SELECT obs_id, obs_publisher_did, access_url, access_format, "
                         "s_ra, s_dec, s_fov, s_region, t_min, t_max, t_exptime, em_min, "
                         "dataproduct_type, calib_level, instrument_name, awe_filter "
                         "FROM ivoa.obscore WHERE awe_class = 'ReducedScienceFrame'",
                         maxrec=1000)
    rows = {str(r["obs_id"]): r for r in got}
    assert set(vo_night.reduced.values()) <= set(rows)
    for chip, oid in vo_night.reduced.items():
        row = rows[oid]
        assert row["obs_publisher_did"] == f"ivo://awe.test/obj?{oid}"
        assert str(row["access_url"]).startswith(f"{vo.url}/datalink?ID=")
        assert row["dataproduct_type"] == "image" and int(row["calib_level"]) == 2
        assert str(row["s_region"]).startswith("POLYGON ICRS ")
        assert 0 < float(row["s_fov"]) < 1
        assert float(row["t_max"]) > float(row["t_min"]) > 50000
        # the simulated filter declares no central wavelength: the band stays unknown
        em = float(row["em_min"])
        assert np.isnan(em) or em > 1e-7, chip
        assert str(row["awe_filter"]) == "841"
        # a cone on the frame's centre finds it through s_region
        hit = tap(vo).search(
            "SELECT obs_id FROM ivoa.obscore WHERE CONTAINS(POINT('ICRS', "
            f"{float(row['s_ra'])}, {float(row['s_dec'])}), s_region) = 1")
        assert oid in {str(r["obs_id"]) for r in hit}
    # and the sources of each frame lie within its footprint circle
    for chip, sl in vo_night.sourcelists.items():
        row = rows[vo_night.reduced[chip]]
        n = tap(vo).search(
            f"SELECT COUNT(*) AS n FROM awe.sources WHERE sourcelist = '{sl}' AND "
            f"CONTAINS(POINT('ICRS', ra, dec), CIRCLE('ICRS', {float(row['s_ra'])}, "
            f"{float(row['s_dec'])}, {float(row['s_fov']) / 2 + 0.01})) = 1")
        assert int(n[0]["n"]) == vo_night.n_sources[chip] > 0


async def test_sessions_are_read_only_and_bounded(catalog_settings: Any) -> None:
    """Whatever SQL reached the database, it could neither write nor run on (the compiler
    is the first guard, the session the second)."""
    pool = await pg.create_pool(catalog_settings.database_url.get_secret_value(), 1, 2)
    try:
        async with read_only(pool, 200) as conn:
            with pytest.raises(asyncpg.ReadOnlySQLTransactionError):
                await conn.execute("CREATE TABLE vo_must_not_write (a int)")
        async with read_only(pool, 200) as conn:
            with pytest.raises(asyncpg.QueryCanceledError):
                await conn.execute("SELECT pg_sleep(5)")
        async with pool.acquire() as conn:  # nothing stayed on the pooled connection
            assert await conn.fetchval("SHOW statement_timeout") == "0"
            assert await conn.fetchval("SHOW transaction_read_only") == "off"
            assert not await conn.fetchval("SELECT to_regclass('vo_must_not_write') IS NOT NULL")
    finally:
        await pool.close()
