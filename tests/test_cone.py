"""The cone search (``awe_catalog.storage.cone``, by the rounds of ``awecore.server.cone``)
answers exactly what a plain statement over the whole table answers: the same rows in the
same order, for any radius, limit, caller, magnitude cut and query, however many rounds of
growing radii it takes.

The reference reads every source of the table (no HEALPix ranges, no narrowing), computes
the distance, applies the privilege rule and the query per row and sorts by (distance,
source list, number). The sky is made to be hard: source lists as chips' footprints (the
sky is clumpy: a small probe says little about a larger cone), positions repeated within
a list and across lists (ties in distance), lists the callers may or may not see, a cone
across ra = 0 and one near the pole.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import asyncpg
import httpx
import numpy as np
import pytest
from conftest import Users
from seed import batch

from awe_catalog.config import CatalogSettings
from awe_catalog.handlers.deps import ANONYMOUS
from awe_catalog.models import Caller
from awe_catalog.storage.cone import cone
from awe_catalog.storage.sql import SOURCE_COLUMNS, source_filter
from awe_catalog.storage.users import UserStore
from awecore.query import Compare, QuerySpec
from awecore.server import cone as cone_module
from awecore.server.cone import next_radius, radius_for

pytestmark = pytest.mark.integration

ADMIN = Caller(name="admin", is_admin=True, default_project="admin")
#: the exact distance as the cone search has always given it (degrees, haversine)
DISTANCE = ("degrees(2 * asin(sqrt(sin(radians(s.dec - $2) / 2) ^ 2 + cos(radians(s.dec)) * "
            "cos(radians($2)) * sin(radians(s.ra - $1) / 2) ^ 2)))")
#: where the cones are: a field at mid declination, one across ra = 0, one at the pole
FIELD = (77.0, -33.0)
WRAP = (0.01, 12.0)
POLE = (40.0, 89.9)


def chip(rng: np.random.Generator, ra: float, dec: float, n: int, w: float,
         h: float) -> dict[str, list[float]]:
    """``n`` sources in a chip's footprint (w x h degrees of sky) centred on (ra, dec)."""
    dra = rng.uniform(-w / 2, w / 2, n) / math.cos(math.radians(dec))
    return {"ra": ((ra + dra) % 360.0).tolist(),
            "dec": np.clip(dec + rng.uniform(-h / 2, h / 2, n), -90, 90).tolist(),
            "mag": rng.uniform(16, 23, n).round(2).tolist(),
            "flux": rng.uniform(1, 1e5, n).tolist()}


def repeat(cols: dict[str, list[float]], src: dict[str, list[float]], count: int,
           at: int = 0) -> None:
    """Give ``cols`` rows ``at``... the positions of ``src``'s first ``count`` rows: sources
    at one distance from any centre, which only the tie-break orders."""
    for i in range(count):
        cols["ra"][at + i] = src["ra"][i]
        cols["dec"][at + i] = src["dec"][i]


@dataclass
class Sky:
    alice: httpx.AsyncClient
    bob: httpx.AsyncClient
    carol: httpx.AsyncClient
    callers: dict[str, Caller]


async def caller_of(conn: asyncpg.Connection, client: httpx.AsyncClient,
                    site: str) -> Caller:
    """The caller a client's token is, as the catalog makes it for a request."""
    caller = await UserStore(conn).caller_for_token(
        client.headers["Authorization"].removeprefix("Bearer "))
    assert caller is not None
    caller.site = site
    return caller


@pytest.fixture(scope="module")
async def conn(catalog_settings: CatalogSettings) -> AsyncIterator[asyncpg.Connection]:
    c = await asyncpg.connect(catalog_settings.database(),
                              server_settings={"plan_cache_mode": "force_custom_plan"})
    yield c
    await c.close()


@pytest.fixture(scope="module")
async def sky(admin: httpx.AsyncClient, catalog_app: object, conn: asyncpg.Connection,
              catalog_settings: CatalogSettings) -> AsyncIterator[Sky]:
    """Source lists around FIELD, WRAP and POLE: public ones (admin's; one at privilege 5,
    the world), alice's private one, alice's at project level (carol is in her project,
    bob is not) and bob's private one."""
    users = Users(catalog_app, admin)
    alice = await users.make("alice", project="cone-a")
    bob = await users.make("bob", project="cone-b")
    carol = await users.make("carol", project="cone-a")
    rng = np.random.default_rng(170)
    ra0, dec0 = FIELD
    made: list[tuple[httpx.AsyncClient, int, dict[str, list[float]]]] = []
    for owner, privileges in ((admin, 3), (admin, 3), (admin, 5), (alice, 1), (alice, 2),
                              (bob, 1), (admin, 3), (alice, 1)):
        centre = (ra0 + rng.uniform(-0.15, 0.15), dec0 + rng.uniform(-0.15, 0.15))
        made.append((owner, privileges, chip(rng, *centre, 400, 0.1, 0.05)))
    # ties: positions repeated within a list and in other lists (visible or not)
    first = made[0][2]
    repeat(first, first, 10, at=200)
    for _, _, cols in made[1:6]:
        repeat(cols, first, 30)
    made.append((admin, 3, chip(rng, *FIELD, 300, 0.02, 0.02)))  # a dense clump at the centre
    made.append((admin, 3, chip(rng, *WRAP, 300, 0.1, 0.1)))  # across ra = 0
    made.append((alice, 1, chip(rng, WRAP[0] + 0.03, WRAP[1], 300, 0.06, 0.06)))
    made.append((admin, 4, chip(rng, *POLE, 300, 0.1, 0.1)))  # around the pole
    for owner, privileges, cols in made:
        (sl,) = await batch(owner, [{"type": "SourceList", "privileges": privileges}])
        r = await owner.post(f"/sources/{sl}", json=cols)
        assert r.status_code == 201, r.text
    site = catalog_settings.site
    callers = {"admin": ADMIN, "anonymous": ANONYMOUS,
               "alice": await caller_of(conn, alice, site),
               "bob": await caller_of(conn, bob, site),
               "carol": await caller_of(conn, carol, site)}
    assert callers["carol"].projects == ["cone-a"] and callers["bob"].projects == ["cone-b"]
    yield Sky(alice, bob, carol, callers)
    await users.aclose()


async def reference(conn: asyncpg.Connection, ra: float, dec: float, radius: float,
                    caller: Caller, limit: int, mag_max: float | None = None,
                    spec: QuerySpec | None = None) -> list[tuple[Any, ...]]:
    """The whole table, every condition per row, sorted: what the cone search must give."""
    where = source_filter(spec, caller, 6)
    rows = await conn.fetch(
        f"SELECT {SOURCE_COLUMNS}, d.distance FROM sources s "
        f"JOIN objects l ON l.oid = s.sourcelist, LATERAL (SELECT {DISTANCE} AS distance) d "
        f"WHERE d.distance <= $3 AND ($4::real IS NULL OR s.mag <= $4) AND {where.sql} "
        f"ORDER BY d.distance, s.sourcelist, s.seq LIMIT $5",
        ra, dec, radius, mag_max, limit, *where.params)
    return [tuple(r) for r in rows]


SPECS: dict[str, QuerySpec | None] = {
    "none": None,
    "bright": QuerySpec(cls="Source", where=Compare(op="lt", path=("mag",), value=20.0)),
    "list path": QuerySpec(cls="Source", where=Compare(
        op="le", path=("sourcelist", "privileges"), value=3)),
    "mine": QuerySpec(cls="Source", scope="user"),
}


async def test_cone_is_the_full_cone_nearest_first(sky: Sky, conn: asyncpg.Connection) -> None:
    checked = nonempty = 0
    for (who, caller), spec_name, radius, limit in itertools.product(
            sky.callers.items(), SPECS, (0.004, 0.03, 0.12, 0.6), (1, 7, 60, 700, 5000)):
        spec = SPECS[spec_name]
        for mag_max in (None, 19.0) if spec_name == "none" else (None,):
            want = await reference(conn, *FIELD, radius, caller, limit, mag_max, spec)
            got = [tuple(r) for r in await cone(conn, *FIELD, radius, caller, limit,
                                                mag_max, spec)]
            assert got == want, (who, spec_name, radius, limit, mag_max)
            checked += 1
            nonempty += bool(want)
    assert checked == 5 * 4 * 4 * 5 + 5 * 4 * 5 and nonempty > checked / 2
    # the grid holds the cases it is for: ties, hidden lists, a limit above the count
    everything = await reference(conn, *FIELD, 0.6, ADMIN, 10**6)
    distances = [r[-1] for r in everything]
    assert len(distances) - len(set(distances)) >= 150  # repeated positions
    assert len(everything) > 3000 > 700
    seen = {who: {r[0] for r in await reference(conn, *FIELD, 0.6, caller, 10**6)}
            for who, caller in sky.callers.items()}
    # alice's project-level list is carol's too, not bob's; bob's private list only his
    assert seen["carol"] - seen["bob"] and seen["bob"] - seen["carol"]
    assert seen["carol"] < seen["alice"] < seen["admin"]
    assert seen["anonymous"] < seen["bob"] and seen["anonymous"]


@pytest.mark.parametrize("where", ["wrap", "pole"])
async def test_cone_across_ra_zero_and_at_the_pole(sky: Sky, conn: asyncpg.Connection,
                                                   where: str) -> None:
    ra, dec = WRAP if where == "wrap" else POLE
    for caller, radius, limit in itertools.product(
            (ADMIN, sky.callers["alice"], sky.callers["bob"]), (0.01, 0.05, 0.3, 2.0),
            (1, 50, 250, 1000)):
        want = await reference(conn, ra, dec, radius, caller, limit)
        got = [tuple(r) for r in await cone(conn, ra, dec, radius, caller, limit)]
        assert got == want, (where, caller.name, radius, limit)
    if where == "wrap":  # the cone's sources lie on both sides of ra = 0
        ras = [r[2] for r in await reference(conn, ra, dec, 0.3, ADMIN, 1000)]
        assert min(ras) < 1 and max(ras) > 359


async def test_cone_over_http(sky: Sky, conn: asyncpg.Connection,
                              admin: httpx.AsyncClient) -> None:
    """The service's answer (GET and POST) is the reference's for the caller its token is."""
    alice = sky.callers["alice"]
    names = ["sourcelist", "seq", "ra", "dec", "x", "y", "flux", "flux_err", "mag", "mag_err",
             "snr", "flag", "distance"]
    for radius, limit in ((0.05, 40), (0.3, 500), (0.6, 100_000)):
        want = [dict(zip(names, r, strict=True))
                for r in await reference(conn, *FIELD, radius, alice, limit)]
        params = {"ra": FIELD[0], "dec": FIELD[1], "radius": radius, "limit": limit}
        r = await sky.alice.get("/sources/cone", params=params)
        assert r.status_code == 200 and r.json()["sources"] == want
        spec = SPECS["bright"]
        assert spec is not None
        r = await sky.alice.post("/sources/cone", json={
            **params, "query": spec.model_dump(mode="json")})
        assert r.status_code == 200
        assert r.json()["sources"] == [dict(zip(names, row, strict=True)) for row in
                                       await reference(conn, *FIELD, radius, alice, limit,
                                                       spec=spec)]
    # bob does not see alice's private lists, and the answer says nothing of them
    r = await sky.bob.get("/sources/cone", params={"ra": FIELD[0], "dec": FIELD[1],
                                                   "radius": 0.6, "limit": 100_000})
    bob = r.json()["sources"]
    assert bob and len(bob) == len(await reference(conn, *FIELD, 0.6, sky.callers["bob"],
                                                   10**6))
    r = await admin.post("/sources/cone", json={
        "ra": 1.0, "dec": 1.0, "radius": 0.1,
        "query": {"cls": "Source", "order_by": [{"path": ["mag"]}]}})
    assert r.status_code == 400 and "own order" in r.json()["detail"]


async def test_first_radius_follows_the_density(sky: Sky, conn: asyncpg.Connection) -> None:
    """The probe narrows the first round to the sources asked for near a dense clump."""
    small = await cone_module.first_radius(conn, *FIELD, 0.6, 5)
    assert 0 < small < 0.1
    # nothing within the probe: the next round looks further out than the probe did
    empty = await cone_module.first_radius(conn, 200.0, -60.0, 0.6, 5)
    assert empty > 0.6 * cone_module.PROBES[-1]


async def test_box_around_the_cone_keeps_every_source(conn: asyncpg.Connection) -> None:
    """The free test before the distance (the declination and right ascension box) lets
    every point within the radius through: points scattered at and around the cone's
    edge, also across ra = 0 and near the poles."""
    rng = np.random.default_rng(5)
    for ra, dec, rho in ((0.0, 0.0, 1.0), (359.99, -40.0, 0.5), (180.0, 87.5, 1.4),
                         (10.0, -88.0, 0.9), (300.0, 60.0, 10.0), (0.2, 80.0, 2.0)):
        # points in a square around the centre, in the plane tangent to the sphere there
        n = 20000
        ang = rng.uniform(0, 2 * math.pi, n)
        off = np.radians(rho) * rng.uniform(0.95, 1.0, n)  # near the edge, just inside
        x, y = off * np.cos(ang), off * np.sin(ang)
        c = np.array([math.cos(math.radians(dec)) * math.cos(math.radians(ra)),
                      math.cos(math.radians(dec)) * math.sin(math.radians(ra)),
                      math.sin(math.radians(dec))])
        east = np.array([-math.sin(math.radians(ra)), math.cos(math.radians(ra)), 0.0])
        north = np.cross(c, east)
        d = np.sqrt(x**2 + y**2)
        d[d == 0] = 1e-12
        p = (np.cos(d)[:, None] * c + (np.sin(d) / d)[:, None] * (x[:, None] * east
                                                                    + y[:, None] * north))
        pra = np.degrees(np.arctan2(p[:, 1], p[:, 0])) % 360.0
        pdec = np.degrees(np.arcsin(np.clip(p[:, 2], -1, 1)))
        box = (f"s.dec BETWEEN $2::float8 - $3::float8 - 1e-9 AND $2::float8 + $3::float8 "
               f"+ 1e-9 AND {cone_module._ra_band(ra, dec, rho)}")
        lost = await conn.fetchval(
            f"SELECT count(*) FROM unnest($4::float8[], $5::float8[]) s(ra, dec) "
            f"WHERE {DISTANCE} <= $3 AND NOT ({box})", ra, dec, rho, pra.tolist(),
            pdec.tolist())
        inside = await conn.fetchval(
            f"SELECT count(*) FROM unnest($4::float8[], $5::float8[]) s(ra, dec) "
            f"WHERE {DISTANCE} <= $3", ra, dec, rho, pra.tolist(), pdec.tolist())
        assert lost == 0 and inside > n * 0.9, (ra, dec, rho)


def test_growing_radii() -> None:
    # the radius of a cap is the inverse of its area (square degrees)
    for radius in (0.001, 0.5, 10.0):
        area = 2 * math.pi * (1 - math.cos(math.radians(radius))) * (180 / math.pi) ** 2
        assert radius_for(1000.0, 1000.0 / area) == pytest.approx(radius, rel=1e-6)
    # a round that found too few grows by what is missing, at most GROWTH times, and ends
    # on the cone itself
    assert next_radius(0.01, 640, 1000, 1.0) == pytest.approx(0.01 * 1.25 * cone_module.MARGIN)
    assert next_radius(0.01, 1, 1000, 1.0) == pytest.approx(0.01 * cone_module.GROWTH)
    assert next_radius(0.01, 0, 1000, 1.0) == pytest.approx(0.01 * cone_module.GROWTH)
    assert next_radius(0.35, 999, 1000, 0.5) == 0.5
    # radii at the smallest floats, whose fractions round to 0, end on the cone itself
    # (schemathesis asked for radius=5e-324: the rounds never grew)
    tiny = 5e-324
    assert next_radius(0.0, 0, 1000, tiny) == tiny
    assert next_radius(tiny, 0, 1000, tiny) == tiny


async def test_a_cone_of_the_smallest_radius_ends(sky: Sky, conn: asyncpg.Connection) -> None:
    ra, dec = FIELD
    # rounds at a radius of 0 would never end; the cone itself is searched instead
    assert [tuple(r) for r in await cone(conn, ra, dec, 5e-324, ADMIN, 10)] == await reference(
        conn, ra, dec, 5e-324, ADMIN, 10)
