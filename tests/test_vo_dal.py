"""The VO data-access services with pyvo as the client: Simple Cone Search, SIA v2,
DataLink and SODA cutouts, over a real catalog, storage and vo service with a reduced night
published at privilege 5. Every VOTable is parsed strictly (astropy, verify='exception');
a cutout's WCS must put the same sky points on the same pixels as its parent's (0.01 pix).
"""

from __future__ import annotations

import hashlib
import io
from collections.abc import Iterator
from typing import Any

import httpx
import numpy as np
import pytest
import requests
from astropy.io import fits
from astropy.io.votable import parse
from astropy.io.votable.tree import VOTableFile
from astropy.time import Time
from astropy.wcs import WCS
from pyvo.dal import DALQueryError, DALServiceError, SCSService, SIA2Service
from pyvo.dal.adhoc import DatalinkResults
from vo_stack import NIGHT, VONight, VOStack

# the fixtures vo and vo_night (imported by name they would shadow the arguments: F811)
pytest_plugins = ["vo_stack"]
pytestmark = pytest.mark.integration


def strict(content: bytes) -> VOTableFile:
    return parse(io.BytesIO(content), verify="exception")


def status_of(vot: VOTableFile) -> str | None:
    for info in list(vot.infos) + [i for r in vot.resources for i in r.infos]:
        if info.name == "QUERY_STATUS":
            return str(info.value)
    return None


def session(token: str | None) -> requests.Session:
    s = requests.Session()
    if token:
        s.headers["Authorization"] = f"Bearer {token}"
    return s


def footprint(corners: str) -> np.ndarray:
    return np.array([[float(v) for v in c.split()] for c in corners.split(";") if c.strip()])


def centre(corners: np.ndarray) -> tuple[float, float]:
    v = np.stack([np.cos(np.radians(corners[:, 1])) * np.cos(np.radians(corners[:, 0])),
                  np.cos(np.radians(corners[:, 1])) * np.sin(np.radians(corners[:, 0])),
                  np.sin(np.radians(corners[:, 1]))], axis=1).sum(axis=0)
    return (float(np.degrees(np.arctan2(v[1], v[0])) % 360),
            float(np.degrees(np.arctan2(v[2], np.hypot(v[0], v[1])))))


def sep(ra1: float, dec1: float, ra2: Any, dec2: Any) -> Any:
    p1, p2 = np.radians(dec1), np.radians(dec2)
    h = (np.sin((p2 - p1) / 2) ** 2
         + np.cos(p1) * np.cos(p2) * np.sin(np.radians(np.asarray(ra2) - ra1) / 2) ** 2)
    return np.degrees(2 * np.arcsin(np.sqrt(h)))


class Sky:
    """Where the night's chips are: centre and size (deg) of each raw footprint."""

    def __init__(self, vo: VOStack, night: VONight) -> None:
        with vo.admin() as admin:
            self.objects = {oid: admin.get(f"/objects/{oid}").json()
                            for oid in [*night.raw.values(), *night.reduced.values()]}
        self.corners = {chip: footprint(self.objects[oid]["attributes"]["footprint"])
                        for chip, oid in night.raw.items()}
        self.centre = {chip: centre(c) for chip, c in self.corners.items()}
        # the chip's short side (deg)
        self.width = {chip: float(min(sep(*c[0], *c[1]), sep(*c[1], *c[2])))
                      for chip, c in self.corners.items()}


@pytest.fixture(scope="module")
def sky(vo: VOStack, vo_night: VONight) -> Sky:
    return Sky(vo, vo_night)


@pytest.fixture(scope="module")
def users(vo: VOStack) -> Iterator[dict[str, str]]:
    """Two signed-in users (name -> token)."""
    tokens = {}
    with vo.admin() as admin:
        for name in ("vo-alice", "vo-bob"):
            admin.post("/users", json={"name": name})
            r = admin.post("/tokens", json={"user": name})
            assert r.status_code == 201, r.text
            tokens[name] = r.json()["token"]
    yield tokens


# -- Simple Cone Search --------------------------------------------------------------------

def test_cone_search_agrees_with_the_catalog(vo: VOStack, vo_night: VONight, sky: Sky) -> None:
    ra, dec = sky.centre["ccd50"]
    radius = sky.width["ccd50"] / 3
    result = SCSService(vo.url + "/scs").search(pos=(ra, dec), radius=radius, verbosity=3)
    got = {str(r.id) for r in result}
    with vo.admin() as admin:
        cone = admin.get("/sources/cone", params={"ra": ra, "dec": dec, "radius": radius})
    ours = set(vo_night.sourcelists.values())
    want = {f"{s['sourcelist']}:{s['seq']}" for s in cone.json()["sources"]
            if s["sourcelist"] in ours}
    assert want and got == want
    pos = [r.pos for r in result]  # pyvo finds the position by its SCS 1.03 UCDs
    assert max(float(p.separation(pos[0]).deg) for p in pos) <= 2 * radius
    distances = [float(d) for d in result["distance"]]
    assert distances == sorted(distances) and distances[-1] <= radius
    assert np.allclose(sep(ra, dec, np.asarray(result["ra"]), np.asarray(result["dec"])),
                       distances, atol=1e-9)
    # the document parses strictly, MAXREC marks the overflow, VERB picks the columns
    r = httpx.get(vo.url + "/scs", params={"RA": ra, "DEC": dec, "SR": radius, "MAXREC": 2,
                                           "VERB": 1})
    vot = strict(r.content)
    table = vot.get_first_table()
    assert r.status_code == 200 and len(table.array) == 2 and status_of(vot) == "OVERFLOW"
    assert [f.name for f in table.fields] == ["id", "ra", "dec"]
    assert [f.ucd for f in table.fields] == ["ID_MAIN", "POS_EQ_RA_MAIN", "POS_EQ_DEC_MAIN"]
    empty = strict(httpx.get(vo.url + "/scs", params={"RA": ra, "DEC": dec, "SR": 0}).content)
    assert len(empty.get_first_table().array) == 0 and status_of(empty) == "OK"


def test_cone_search_keeps_private_sources(vo: VOStack, vo_night: VONight, sky: Sky,
                                           users: dict[str, str]) -> None:
    """A user's private source list at the same place: theirs only."""
    ra, dec = sky.centre["ccd51"]
    alice = httpx.Client(base_url=vo.catalog_url, timeout=60,
                         headers={"Authorization": f"Bearer {users['vo-alice']}"})
    r = alice.post("/objects/batch", json={"objects": [{"type": "SourceList", "privileges": 1}]})
    assert r.status_code == 201, r.text
    (mine,) = r.json()["oids"]
    n = 7
    cols = {"ra": [ra + 1e-4 * i for i in range(n)], "dec": [dec] * n, "mag": [20.0] * n}
    assert alice.post(f"/sources/{mine}", json=cols).status_code == 201
    alice.close()
    params = {"RA": ra, "DEC": dec, "SR": 0.01, "VERB": 2}

    def owners(token: str | None) -> set[str]:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        vot = strict(httpx.get(vo.url + "/scs", params=params, headers=headers).content)
        return {str(s) for s in vot.get_first_table().array["sourcelist"]}

    assert mine not in owners(None)
    assert mine not in owners(users["vo-bob"])
    assert mine in owners(users["vo-alice"])
    assert vo_night.sourcelists["ccd51"] in owners(None)
    got = SCSService(vo.url + "/scs", session=session(users["vo-alice"])).search(
        pos=(ra, dec), radius=0.01)
    assert sum(1 for s in got["sourcelist"] if str(s) == mine) == n
    # the nearest MAXREC, as rounds of growing radii find them, are the catalog's nearest
    # for the same caller, in the same order (ties by list and number), whatever the page
    for token in (None, users["vo-alice"], users["vo-bob"]):
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        for maxrec in (1, 5, 40, 400):
            vot = strict(httpx.get(vo.url + "/scs", headers=headers, params={
                "RA": ra, "DEC": dec, "SR": 0.2, "VERB": 3, "MAXREC": maxrec}).content)
            got_ids = [str(s) for s in vot.get_first_table().array["id"]]
            cone = httpx.get(vo.catalog_url + "/sources/cone", headers=headers, params={
                "ra": ra, "dec": dec, "radius": 0.2, "limit": maxrec}, timeout=60)
            assert cone.status_code == 200, cone.text
            want_ids = [f"{s['sourcelist']}:{s['seq']}" for s in cone.json()["sources"]]
            # (400 is more than the cone holds: the whole cone)
            assert len(want_ids) == maxrec or maxrec == 400, (token, maxrec)
            assert want_ids and got_ids == want_ids, (token, maxrec)


# -- SIA v2 ----------------------------------------------------------------------------------

def test_sia_finds_images(vo: VOStack, vo_night: VONight, sky: Sky) -> None:
    sia = SIA2Service(vo.url + "/sia")
    ra, dec = sky.centre["ccd50"]
    # a circle well inside chip 50 whose bounding circle still meets chip 51's: the exact
    # footprint test must leave chip 51 out
    small = sky.width["ccd50"] * 0.4
    got = {r["obs_id"]: r for r in sia.search(pos=(ra, dec, small))}
    assert vo_night.reduced["ccd50"] in got and vo_night.reduced["ccd51"] not in got
    row = got[vo_night.reduced["ccd50"]]
    assert row["dataproduct_type"] == "image" and int(row["calib_level"]) == 2
    assert "datalink" in row["access_format"]
    both = {vo_night.reduced["ccd50"], vo_night.reduced["ccd51"]}
    mid = centre(np.array([sky.centre["ccd50"], sky.centre["ccd51"]]))
    assert both <= {r["obs_id"] for r in sia.search(pos=(*mid, 3 * sky.width["ccd50"]))}
    # polygon and range: just around chip 51's centre
    ra1, dec1 = sky.centre["ccd51"]
    d = sky.width["ccd51"] / 10
    poly = (ra1 - d, dec1 - d, ra1 + d, dec1 - d, ra1, dec1 + d)
    assert {r["obs_id"] for r in sia.search(pos=poly)} >= {vo_night.reduced["ccd51"]}
    assert vo_night.reduced["ccd50"] not in {r["obs_id"] for r in sia.search(pos=poly)}
    rng = (ra1 - d, ra1 + d, dec1 - d, dec1 + d)
    assert vo_night.reduced["ccd51"] in {r["obs_id"] for r in sia.search(pos=rng)}
    # time, collection, calibration level: in and out
    t = Time(f"{NIGHT}T00:00:00").mjd
    wide = (*mid, 3 * sky.width["ccd50"])
    assert both <= {r["obs_id"] for r in sia.search(pos=wide, time=(Time(t - 2, format="mjd"),
                                                                    Time(t + 2, format="mjd")))}
    assert not both & {r["obs_id"] for r in sia.search(
        pos=wide, time=(Time(t - 400, format="mjd"), Time(t - 300, format="mjd")))}
    assert both <= {r["obs_id"] for r in sia.search(pos=wide, collection="AWE", calib_level=2)}
    assert not both & {r["obs_id"] for r in sia.search(pos=wide, collection="elsewhere")}
    assert not both & {r["obs_id"] for r in sia.search(pos=wide, calib_level=3)}
    # MAXREC marks the overflow; the document parses strictly
    r = httpx.get(vo.url + "/sia/query", params={"POS": f"CIRCLE {wide[0]} {wide[1]} {wide[2]}",
                                                 "MAXREC": 1})
    vot = strict(r.content)
    assert len(vot.get_first_table().array) == 1 and status_of(vot) == "OVERFLOW"


def test_sia_band(vo: VOStack, vo_night: VONight, sky: Sky, users: dict[str, str]) -> None:
    """BAND against the filter's wavelength: a frame of Alice's through her own filter of
    620 nm (the simulated filters have no wavelength, so BAND leaves them out)."""
    with vo.admin() as admin:
        public = admin.get(f"/objects/{vo_night.reduced['ccd50']}").json()
    alice = httpx.Client(base_url=vo.catalog_url, timeout=60,
                         headers={"Authorization": f"Bearer {users['vo-alice']}"})
    r = alice.post("/objects/batch", json={"objects": [
        {"type": "Filter", "privileges": 1,
         "attributes": {"name": "r-vo-band", "central_wavelength": 620.0}}]})
    assert r.status_code == 201, r.text
    (band_filter,) = r.json()["oids"]
    r = alice.post("/objects/batch", json={"objects": [{
        "type": "ReducedScienceFrame", "privileges": 1, "attributes": public["attributes"],
        "refs": {"raw": public["refs"]["raw"], "filter": band_filter},
        "filename": f"alice/band-{vo_night.reduced['ccd50']}.fits"}]})
    alice.close()
    assert r.status_code == 201, r.text
    (frame,) = r.json()["oids"]
    sia = SIA2Service(vo.url + "/sia", session=session(users["vo-alice"]))
    ra, dec = sky.centre["ccd50"]
    pos = (ra, dec, sky.width["ccd50"] / 4)

    def found(band: tuple[float, float]) -> set[str]:
        return {r["obs_id"] for r in sia.search(pos=pos, band=band)}

    assert frame in found((550e-9, 700e-9)) and frame in found((620e-9, 620e-9))
    assert frame not in found((400e-9, 500e-9)) and frame not in found((700e-9, 900e-9))
    assert vo_night.reduced["ccd50"] not in found((550e-9, 700e-9))
    assert frame in {r["obs_id"] for r in sia.search(pos=pos)}


def _did(vo: VOStack, oid: str) -> str:
    with vo.admin() as admin:
        site = admin.get(f"/objects/{oid}").json()["site"]
    return f"ivo://awe.{site}/obj?{oid}"


@pytest.fixture(scope="module")
def private_frame(vo: VOStack, vo_night: VONight, users: dict[str, str]) -> str:
    """Alice's own reduced frame (privilege 1) of chip 50's exposure."""
    with vo.admin() as admin:
        public = admin.get(f"/objects/{vo_night.reduced['ccd50']}").json()
    refs = {k: public["refs"][k] for k in ("raw", "filter", "instrument", "chip")
            if k in public["refs"]}
    attrs = {k: public["attributes"][k] for k in ("date_obs", "exptime", "nx", "ny")
             if k in public["attributes"]}
    alice = httpx.Client(base_url=vo.catalog_url, timeout=60,
                         headers={"Authorization": f"Bearer {users['vo-alice']}"})
    r = alice.post("/objects/batch", json={"objects": [{
        "type": "ReducedScienceFrame", "privileges": 1, "refs": refs, "attributes": attrs,
        "filename": f"alice/{vo_night.reduced['ccd50']}.fits"}]})
    alice.close()
    assert r.status_code == 201, r.text
    return str(r.json()["oids"][0])


def test_sia_privileges(vo: VOStack, vo_night: VONight, sky: Sky, users: dict[str, str],
                        private_frame: str) -> None:
    ra, dec = sky.centre["ccd50"]
    pos = (ra, dec, sky.width["ccd50"] / 4)

    def found(token: str | None) -> set[str]:
        return {r["obs_id"] for r in SIA2Service(vo.url + "/sia", session=session(token))
                .search(pos=pos)}

    anonymous = found(None)
    assert vo_night.reduced["ccd50"] in anonymous and private_frame not in anonymous
    assert private_frame not in found(users["vo-bob"])
    assert private_frame in found(users["vo-alice"])
    # everything an anonymous caller gets is public
    with vo.admin() as admin:
        assert all(admin.get(f"/objects/{oid}").json()["privileges"] == 5 for oid in anonymous)


# -- DataLink and SODA ---------------------------------------------------------------------

def test_datalink_and_cutout(vo: VOStack, vo_night: VONight, sky: Sky) -> None:
    ra, dec = sky.centre["ccd50"]
    width = sky.width["ccd50"]
    (row,) = [r for r in SIA2Service(vo.url + "/sia").search(pos=(ra, dec, width / 4))
              if r["obs_id"] == vo_night.reduced["ccd50"]]
    links = DatalinkResults.from_result_url(row["access_url"])
    strict(httpx.get(row["access_url"]).content)
    by = {}
    for link in links:
        by.setdefault(link.semantics, []).append(link)
    assert {"#this", "#cutout", "#preview", "#progenitor"} <= set(by)
    # the file, as stored
    (this,) = by["#this"]
    parent = httpx.get(this.access_url, timeout=60)
    assert parent.status_code == 200
    with vo.admin() as admin:
        record = admin.get(f"/objects/{vo_night.reduced['ccd50']}").json()
    assert hashlib.sha256(parent.content).hexdigest() == record["checksum"]
    # the cutout through pyvo: the SODA descriptor in the DataLink document
    radius = width / 5
    cut = links.get_first_proc().processed(circle=(ra, dec, radius)).read()
    with fits.open(io.BytesIO(parent.content)) as p, fits.open(io.BytesIO(cut)) as c:
        image = next(h for h in p if h.is_image and h.data is not None)
        pw, cw = WCS(image.header), WCS(c[0].header)
        assert cw.has_celestial
        ny, nx = c[0].data.shape
        assert 0 < nx < image.data.shape[1] and 0 < ny < image.data.shape[0]
        # the same sky points on the same pixels (0.01 pixel), the same pixel values
        yy, xx = np.mgrid[0:ny:5, 0:nx:5]
        world = cw.pixel_to_world(xx.ravel(), yy.ravel())
        px, py = pw.world_to_pixel(world)
        x0, y0 = round(float(px[0] - xx.ravel()[0])), round(float(py[0] - yy.ravel()[0]))
        assert np.abs(px - (xx.ravel() + x0)).max() < 0.01
        assert np.abs(py - (yy.ravel() + y0)).max() < 0.01
        np.testing.assert_array_equal(c[0].data, image.data[y0:y0 + ny, x0:x0 + nx])
        # the box holds the circle: its width is about the circle's diameter
        scale = float(np.mean(np.abs(np.linalg.eigvals(pw.pixel_scale_matrix))))
        assert abs(nx - 2 * radius / scale) <= 3 and abs(ny - 2 * radius / scale) <= 3
        assert c[0].header.get("DATE-OBS") == image.header.get("DATE-OBS")
    # a polygon cutout straight from SODA
    d = width / 6
    poly = f"{ra - d} {dec - d} {ra + d} {dec - d} {ra + d} {dec + d} {ra - d} {dec + d}"
    r = httpx.get(vo.url + "/soda", params={"ID": row["obs_publisher_did"], "POLYGON": poly})
    assert r.status_code == 200 and r.headers["content-type"] == "application/fits"
    with fits.open(io.BytesIO(r.content)) as c:
        assert WCS(c[0].header).has_celestial and c[0].data.size > 0
    # a preview
    (preview,) = by["#preview"]
    png = httpx.get(preview.access_url, timeout=60)
    assert png.status_code == 200 and png.content[:8] == b"\x89PNG\r\n\x1a\n"


def test_datalink_privileges(vo: VOStack, vo_night: VONight, private_frame: str,
                             users: dict[str, str]) -> None:
    did = _did(vo, vo_night.reduced["ccd50"])

    def progenitors(token: str | None) -> set[str]:
        r = httpx.get(vo.url + "/datalink", params={"ID": did},
                      headers={"Authorization": f"Bearer {token}"} if token else {})
        table = strict(r.content).get_first_table().array
        return {str(u).rsplit("%3F", 1)[-1] for u, s in zip(table["access_url"],
                                                            table["semantics"], strict=True)
                if s == "#progenitor"}

    public = progenitors(None)
    everything = progenitors(vo.admin_token)
    assert vo_night.raw["ccd50"] in public
    assert public < everything  # the calibrations are not public
    with vo.admin() as admin:
        assert all(admin.get(f"/objects/{oid}").json()["privileges"] == 5 for oid in public)
    # a private frame: not found for others, neither its links nor its cutouts
    mine = _did(vo, private_frame)
    r = httpx.get(vo.url + "/datalink", params={"ID": [mine, "nonsense"]})
    table = strict(r.content).get_first_table().array
    assert r.status_code == 200
    assert [str(m).split(":")[0] for m in table["error_message"]] == ["NotFoundFault",
                                                                      "UsageFault"]
    r = httpx.get(vo.url + "/datalink", params={"ID": mine},
                  headers={"Authorization": f"Bearer {users['vo-alice']}"})
    assert "#this" in set(strict(r.content).get_first_table().array["semantics"])
    r = httpx.get(vo.url + "/soda", params={"ID": mine, "CIRCLE": "0 0 0.1"})
    assert r.status_code == 404 and status_of(strict(r.content)) == "ERROR"
    assert httpx.get(f"{vo.url}/datalink/file/{private_frame}").status_code == 404


# -- bad input: DALI errors ------------------------------------------------------------------

BAD = [
    ("/scs", {"RA": "10", "DEC": "10"}),
    ("/scs", {"RA": "10", "DEC": "100", "SR": "0.1"}),
    ("/scs", {"RA": "ten", "DEC": "10", "SR": "0.1"}),
    ("/scs", {"RA": "10", "DEC": "10", "SR": "-1"}),
    ("/scs", {"RA": "10", "DEC": "10", "SR": "0.1", "VERB": "7"}),
    ("/scs", {"RA": "10", "DEC": "10", "SR": "0.1", "MAXREC": "-3"}),
    ("/sia/query", {"POS": "CIRCLE 10 10"}),
    ("/sia/query", {"POS": "BOX 10 10 1 1"}),
    ("/sia/query", {"POS": "POLYGON 10 10 11 10"}),
    ("/sia/query", {"BAND": "5e-7 1e-7"}),
    ("/sia/query", {"TIME": "x y"}),
    ("/sia/query", {"CALIB": "two"}),
    ("/sia/query", {"RESPONSEFORMAT": "text/csv"}),
    ("/datalink", {}),
    ("/soda", {}),
    ("/soda", {"ID": "nonsense", "CIRCLE": "1 1 1"}),
    ("/soda", {"ID": "ivo://awe.x/obj?00000000-0000-0000-0000-000000000001",
               "CIRCLE": "1 1"}),
    ("/soda", {"ID": "00000000-0000-0000-0000-000000000001", "CIRCLE": "1 1 0.1",
               "POLYGON": "1 1 2 1 2 2"}),
    ("/soda", {"ID": "00000000-0000-0000-0000-000000000001", "CIRCLE": "1 1 0.1",
               "RESPONSEFORMAT": "image/png"}),
]


@pytest.mark.parametrize(("path", "params"), BAD)
def test_bad_parameters_are_dali_errors(vo: VOStack, path: str,
                                        params: dict[str, str]) -> None:
    r = httpx.get(vo.url + path, params=params)
    assert r.status_code == 400, r.text
    assert r.headers["content-type"].startswith("application/x-votable+xml")
    vot = strict(r.content)
    assert status_of(vot) == "ERROR"


def test_pyvo_reports_errors(vo: VOStack) -> None:
    with pytest.raises((DALServiceError, DALQueryError)):
        SCSService(vo.url + "/scs").search(pos=(10.0, 10.0), radius=95.0)
    with pytest.raises((DALServiceError, DALQueryError)):
        SIA2Service(vo.url + "/sia").search(pos=(10.0, 10.0, 0.1), TIME="yesterday today")
    # a wrong token is refused, never taken for anonymous
    r = httpx.get(vo.url + "/scs", params={"RA": 1, "DEC": 1, "SR": 0.1},
                  headers={"Authorization": "Bearer awe_wrong"})
    assert r.status_code == 401 and status_of(strict(r.content)) == "ERROR"
