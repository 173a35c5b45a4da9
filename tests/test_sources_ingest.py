"""Loading a source list through the catalog (issue 17): the FITS form our clients send and
the JSON form store the same rows, with the HEALPix index of awecore.healpix; bad bodies
are 4xx and load nothing; a list is loaded once, also when two loads race."""

from __future__ import annotations

import asyncio
import io
import math
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import httpx
import numpy as np
import pytest
from astropy.io import fits
from conftest import ADMIN_TOKEN, Users
from seed import batch

from awe_catalog.config import CatalogSettings
from awecore.client import AsyncCatalogClient
from awecore.healpix import healpix_of
from awecore.source_columns import MEDIA_TYPE, encode_fits

pytestmark = pytest.mark.integration

FITS = {"Content-Type": MEDIA_TYPE}
COLUMNS = ("seq", "ra", "dec", "healpix", "x", "y", "flux", "flux_err", "mag", "mag_err",
           "snr", "flag")


def measured(n: int, seed: int) -> dict[str, np.ndarray]:
    """Columns as photometry gives them: magnitudes and their errors NaN where the flux was
    not positive, and positions at the edges of the sky among them."""
    rng = np.random.default_rng(seed)
    ra, dec = rng.uniform(0, 360, n), rng.uniform(-90, 90, n)
    ra[:4], dec[:4] = [0.0, 360.0, 359.9999999, 180.0], [90.0, -90.0, 0.0, -0.0]
    flux = rng.normal(100, 80, n)
    mag = np.where(flux > 0, 25 - 2.5 * np.log10(np.abs(flux)), np.nan)
    return {"ra": ra, "dec": dec, "x": rng.uniform(0, 2048, n), "y": rng.uniform(0, 4096, n),
            "flux": flux, "flux_err": np.sqrt(np.abs(flux)), "mag": mag,
            "mag_err": np.where(flux > 0, 1.0857 / np.sqrt(np.abs(flux)), np.nan),
            "snr": flux / np.sqrt(np.abs(flux)), "flag": rng.integers(0, 8, n)}


def as_json(cols: dict[str, np.ndarray]) -> dict[str, list[Any]]:
    return {k: [None if isinstance(v, float) and math.isnan(v) else v for v in c.tolist()]
            for k, c in cols.items()}


@pytest.fixture
async def db(catalog_settings: CatalogSettings) -> AsyncIterator[asyncpg.Connection]:
    assert catalog_settings.database_url is not None
    conn = await asyncpg.connect(catalog_settings.database_url.get_secret_value())
    yield conn
    await conn.close()


@pytest.fixture
async def client(catalog_app: object) -> AsyncIterator[AsyncCatalogClient]:
    """Our async client (the compute workers' and pipelines'), as the admin."""
    c = AsyncCatalogClient("http://catalog", ADMIN_TOKEN, timeout=120,
                           transport=httpx.ASGITransport(app=catalog_app))  # type: ignore[arg-type]
    yield c
    await c.aclose()


async def stored(db: asyncpg.Connection, sourcelist: str) -> list[asyncpg.Record]:
    return list(await db.fetch(f"SELECT {', '.join(COLUMNS)} FROM sources "
                               "WHERE sourcelist = $1::uuid ORDER BY seq", sourcelist))


async def test_fits_and_json_store_the_same_rows(admin: httpx.AsyncClient,
                                                 client: AsyncCatalogClient,
                                                 db: asyncpg.Connection) -> None:
    by_json, by_fits, by_lists = await batch(admin, [{"type": "SourceList", "privileges": 3}] * 3)
    cols = measured(3000, seed=7)
    assert np.isnan(cols["mag"]).sum() > 100  # some not measured: NULL
    r = await admin.post(f"/sources/{by_json}", json=as_json(cols))
    assert r.status_code == 201 and r.json() == {"loaded": 3000}, r.text
    assert await client.load_sources(by_fits, cols) == 3000
    assert await client.load_sources(by_lists, as_json(cols)) == 3000  # lists, None inside
    rows = await stored(db, by_json)
    assert [tuple(r) for r in rows] == [tuple(r) for r in await stored(db, by_fits)] == [
        tuple(r) for r in await stored(db, by_lists)]
    # the values are those sent: doubles to the bit, reals as a real rounds them, NULL
    # where not measured, seq in the order sent
    got = {c: np.array([r[c] for r in rows], dtype=float) for c in COLUMNS}
    assert got["seq"].tolist() == list(range(3000))
    for c in ("ra", "dec", "flux", "flux_err"):
        assert np.array_equal(got[c], cols[c])
    for c in ("x", "y", "mag", "mag_err", "snr"):
        assert np.array_equal(got[c], cols[c].astype(np.float32), equal_nan=True)
    assert [r["mag"] is None for r in rows] == np.isnan(cols["mag"]).tolist()
    assert got["flag"].tolist() == cols["flag"].tolist()
    # the pixels behind the objects: the index the cone search relies on
    assert got["healpix"].astype(np.int64).tolist() == healpix_of(cols["ra"],
                                                                  cols["dec"]).tolist()
    # and the cone search finds them by it
    near = (await admin.get("/sources/cone", params={
        "ra": float(cols["ra"][10]), "dec": float(cols["dec"][10]), "radius": 1e-4})).json()
    assert {(s["sourcelist"], s["seq"]) for s in near["sources"]} >= {
        (by_json, 10), (by_fits, 10), (by_lists, 10)}


async def test_a_big_load_in_chunks(admin: httpx.AsyncClient, client: AsyncCatalogClient,
                                    db: asyncpg.Connection) -> None:
    """More rows than one COPY chunk (built in a worker thread): each once, in seq order,
    NULLs where they were and only there, with only ra, dec and mag given."""
    (sl,) = await batch(admin, [{"type": "SourceList", "privileges": 3}])
    n = 120_003
    cols = measured(n, seed=8)
    sent = {k: cols[k] for k in ("ra", "dec", "mag")}
    assert await client.load_sources(sl, sent) == n
    got = await db.fetchrow(
        "SELECT count(*) AS n, count(DISTINCT seq) AS seqs, max(seq) AS last, "
        "count(mag) AS mags, count(x) AS xs, sum(flag) AS flags, "
        "sum(ra) AS ra, sum(healpix::numeric) AS pix FROM sources WHERE sourcelist = $1", sl)
    assert (got["n"], got["seqs"], got["last"]) == (n, n, n - 1)
    assert got["mags"] == int(np.isfinite(cols["mag"]).sum()) and got["xs"] == 0
    assert got["flags"] == 0  # flag not given: the table's default
    assert got["ra"] == pytest.approx(float(cols["ra"].sum()), rel=1e-12)
    assert int(got["pix"]) == int(healpix_of(cols["ra"], cols["dec"]).sum())


def fits_body(**cols: dict[str, Any]) -> bytes:
    buf = io.BytesIO()
    fits.HDUList([fits.PrimaryHDU(), fits.BinTableHDU.from_columns(
        [fits.Column(name=k, **v) for k, v in cols.items()])]).writeto(buf)
    return buf.getvalue()


async def test_bad_bodies_are_4xx_and_load_nothing(admin: httpx.AsyncClient,
                                                   db: asyncpg.Connection) -> None:
    (sl,) = await batch(admin, [{"type": "SourceList", "privileges": 3}])
    good = encode_fits({"ra": [1.0, 2.0], "dec": [3.0, 4.0], "mag": [20.0, None]})
    one = {"format": "D", "array": [1.0]}
    cases: list[tuple[bytes, dict[str, str], int, str]] = [
        (b"definitely not FITS", FITS, 400, "not a FITS file"),
        (good[:2880 * 2 + 10], FITS, 400, "truncated"),
        (good[:3000], FITS, 400, "truncated"),
        (fits_body(ra=one, dec=one, colour=one), FITS, 400, "unknown source column 'colour'"),
        (fits_body(ra=one, decl=one), FITS, 400, "unknown source column 'decl'"),
        (fits_body(ra=one), FITS, 400, "no dec column"),
        (fits_body(ra=one, dec={"format": "5A", "array": ["north"]}), FITS, 400, "TFORM2"),
        (fits_body(ra={"format": "D", "array": [np.nan]}, dec=one), FITS, 400,
         "ra nan is outside"),
        (fits_body(ra={"format": "D", "array": [400.0]}, dec=one), FITS, 400,
         "ra 400.0 is outside"),
        (good, {"Content-Type": "text/csv"}, 415, "not text/csv"),
        (b'{"ra": [NaN], "dec": [1.0]}', {"Content-Type": "application/json"}, 400,
         "ra nan is outside"),
        (b'{"ra": [1.0], "dec": [1.0], "mag": [1e39]}', {"Content-Type": "application/json"},
         400, "beyond the range"),
        (b'{"ra": [1.0], "dec": [1.0], "flag": [1099511627776]}',
         {"Content-Type": "application/json"}, 400, "flag"),
        (b'{"ra": [1.0], "dec": [1.0]', {"Content-Type": "application/json"}, 400, "JSON"),
    ]
    for body, headers, status, message in cases:
        r = await admin.post(f"/sources/{sl}", content=body, headers=headers)
        assert r.status_code == status, (message, r.text)
        assert r.headers["content-type"].startswith("application/problem+json")
        assert message in r.json()["detail"], (message, r.text)
    # over the body limit (8 MiB in the tests): refused by its length
    big = encode_fits({"ra": np.zeros(600_000), "dec": np.zeros(600_000)})
    r = await admin.post(f"/sources/{sl}", content=big, headers=FITS)
    assert r.status_code == 413, r.text
    assert await db.fetchval("SELECT count(*) FROM sources WHERE sourcelist = $1", sl) == 0
    # none of those loaded the list: a good load still can, once
    assert (await admin.post(f"/sources/{sl}", content=good, headers=FITS)).status_code == 201
    assert (await admin.post(f"/sources/{sl}", content=good, headers=FITS)).status_code == 409


async def test_owner_and_kind_are_checked_for_fits(admin: httpx.AsyncClient,
                                                   users: Users) -> None:
    alice = await users.make("alice", project="fits-a")
    bob = await users.make("bob", project="fits-b")
    (mine,) = await batch(alice, [{"type": "SourceList", "privileges": 3}])
    (frame,) = await batch(admin, [{"type": "RawScienceFrame"}])
    body = encode_fits({"ra": [5.0], "dec": [5.0]})
    r = await bob.post(f"/sources/{mine}", content=body, headers=FITS)
    assert r.status_code == 403, r.text
    r = await admin.post(f"/sources/{frame}", content=body, headers=FITS)
    assert r.status_code == 400 and "not a SourceList" in r.json()["detail"]
    assert (await alice.post(f"/sources/{mine}", content=body, headers=FITS)).status_code == 201


async def test_two_loads_at_once_are_one_load_and_a_409(admin: httpx.AsyncClient,
                                                        db: asyncpg.Connection) -> None:
    lists = await batch(admin, [{"type": "SourceList", "privileges": 3}] * 3)
    body = encode_fits(measured(60_000, seed=9))
    for sl in lists:
        answers = await asyncio.gather(*[
            admin.post(f"/sources/{sl}", content=body, headers=FITS) for _ in range(2)])
        assert sorted(r.status_code for r in answers) == [201, 409], [r.text for r in answers]
        assert "loaded already" in next(r for r in answers if r.status_code == 409).text
        assert await db.fetchval(
            "SELECT count(*) FROM sources WHERE sourcelist = $1", sl) == 60_000
