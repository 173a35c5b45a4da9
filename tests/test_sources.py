"""The source table: bulk load through the API, cone search on HEALPix ranges."""

from __future__ import annotations

import httpx
import numpy as np
import pytest
from conftest import Users
from seed import batch

from awe_catalog.storage.sources import healpix_of, ranges_for_cone

pytestmark = pytest.mark.integration


def sky(seed: int, n: int, ra0: float, dec0: float, size: float) -> dict[str, list[float]]:
    rng = np.random.default_rng(seed)
    return {"ra": (ra0 + rng.uniform(-size, size, n)).tolist(),
            "dec": (dec0 + rng.uniform(-size, size, n)).tolist(),
            "mag": rng.uniform(16, 23, n).tolist(), "flux": rng.uniform(1, 1e5, n).tolist()}


def test_ranges_cover_the_cone() -> None:
    rng = np.random.default_rng(1)
    ra = 150 + rng.uniform(-1, 1, 20000)
    dec = -30 + rng.uniform(-1, 1, 20000)
    lo, hi = ranges_for_cone(150.0, -30.0, 0.5)
    pix = healpix_of(ra, dec)
    covered = np.zeros(len(pix), bool)
    for a, b in zip(lo, hi, strict=True):
        covered |= (pix >= a) & (pix <= b)
    dist = np.degrees(np.arccos(np.clip(np.sin(np.radians(dec)) * np.sin(np.radians(-30))
                                        + np.cos(np.radians(dec)) * np.cos(np.radians(-30))
                                        * np.cos(np.radians(ra - 150)), -1, 1)))
    assert covered[dist <= 0.5].all()  # nothing inside the cone is missed
    assert len(lo) < 100


async def test_load_and_cone_search(admin: httpx.AsyncClient, users: Users) -> None:
    (sl,) = await batch(admin, [{"type": "SourceList", "privileges": 3}])
    cols = sky(3, 5000, 210.0, 10.0, 0.3)
    r = await admin.post(f"/sources/{sl}", json=cols)
    assert r.status_code == 201 and r.json() == {"loaded": 5000}
    r = await admin.post(f"/sources/{sl}", json=cols)
    assert r.status_code == 409
    r = await admin.get("/sources/cone", params={"ra": 210.0, "dec": 10.0, "radius": 0.1})
    got = r.json()["sources"]
    ra, dec = np.array(cols["ra"]), np.array(cols["dec"])
    dist = np.degrees(np.arccos(np.clip(np.sin(np.radians(dec)) * np.sin(np.radians(10))
                                        + np.cos(np.radians(dec)) * np.cos(np.radians(10))
                                        * np.cos(np.radians(ra - 210)), -1, 1)))
    assert {s["seq"] for s in got} == set(np.flatnonzero(dist <= 0.1).tolist())
    assert [s["distance"] for s in got] == sorted(s["distance"] for s in got)
    bright = (await admin.get("/sources/cone", params={"ra": 210.0, "dec": 10.0,
                                                       "radius": 0.1, "mag_max": 18})).json()
    assert all(s["mag"] <= 18 for s in bright["sources"]) and bright["sources"]
    # a private source list's sources stay with its owner
    alice = await users.make("alice", project="src-a")
    bob = await users.make("bob", project="src-b")
    (mine,) = await batch(alice, [{"type": "SourceList", "privileges": 1}])
    assert (await alice.post(f"/sources/{mine}", json=sky(4, 100, 20.0, -5.0, 0.01))
            ).status_code == 201
    params = {"ra": 20.0, "dec": -5.0, "radius": 0.05}
    assert len((await alice.get("/sources/cone", params=params)).json()["sources"]) == 100
    assert (await bob.get("/sources/cone", params=params)).json()["sources"] == []
    assert (await bob.post(f"/sources/{sl}", json=sky(5, 10, 1.0, 1.0, 0.1))).status_code == 403


async def test_bad_source_input(admin: httpx.AsyncClient) -> None:
    (sl,) = await batch(admin, [{"type": "SourceList", "privileges": 3}])
    (frame,) = await batch(admin, [{"type": "RawScienceFrame"}])
    r = await admin.post(f"/sources/{sl}", json={"ra": [1.0, 2.0], "dec": [1.0]})
    assert r.status_code == 400 and "dec has 1 values" in r.json()["detail"]
    r = await admin.post(f"/sources/{sl}", json={"ra": [400.0], "dec": [1.0]})
    assert r.status_code == 400 and "outside" in r.json()["detail"]
    r = await admin.post(f"/sources/{sl}", json={"ra": [1.0], "dec": [1.0], "colour": [1]})
    assert r.status_code == 400
    r = await admin.post(f"/sources/{frame}", json={"ra": [1.0], "dec": [1.0]})
    assert r.status_code == 400 and "not a SourceList" in r.json()["detail"]
    r = await admin.get("/sources/cone", params={"ra": 10, "dec": 95, "radius": 1})
    assert r.status_code == 400
