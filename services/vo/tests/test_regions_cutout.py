"""DALI regions and SODA cutouts, without a service: parsing, overlap, and the cutout's
WCS agreeing with its parent's on the same sky points."""

from __future__ import annotations

import io

import numpy as np
import pytest
from astropy.io import fits
from astropy.wcs import WCS

from awe_vo.services.cutout import cutout
from awe_vo.services.footprints import FootprintIndex
from awe_vo.services.ranged import ranged_cutout
from awe_vo.services.regions import (
    Circle,
    Polygon,
    footprint_polygon,
    parse_circle,
    parse_interval,
    parse_polygon,
    parse_pos,
    parse_range,
    separation,
)
from awe_vo.votable import VOError


def _image(nx: int = 400, ny: int = 300, sip: bool = False) -> bytes:
    header = fits.Header()
    suffix = "-SIP" if sip else ""
    header["CTYPE1"], header["CTYPE2"] = "RA---TAN" + suffix, "DEC--TAN" + suffix
    header["CRVAL1"], header["CRVAL2"] = 150.0, 2.0
    header["CRPIX1"], header["CRPIX2"] = nx / 2 + 0.5, ny / 2 + 0.5
    scale, turn = 0.2 / 3600, 0.1
    header["CD1_1"], header["CD1_2"] = -scale * np.cos(turn), scale * np.sin(turn)
    header["CD2_1"], header["CD2_2"] = scale * np.sin(turn), scale * np.cos(turn)
    if sip:
        header["A_ORDER"], header["B_ORDER"] = 2, 2
        header["A_2_0"], header["B_0_2"], header["A_1_1"] = 2e-6, -1.5e-6, 1e-6
    header["DATE-OBS"] = "2003-02-14T03:00:00"
    header["FILTER"] = "r"
    header["AWEOID"] = "0b6e8f0c-3a8e-4f59-9b8a-3f6d9e6a1c2d"
    data = np.arange(ny * nx, dtype=np.float32).reshape(ny, nx)
    count = np.ones((ny, nx), dtype=np.int16)
    out = io.BytesIO()
    fits.HDUList([fits.PrimaryHDU(data, header),
                  fits.ImageHDU(count, header, name="COUNT")]).writeto(out)
    return out.getvalue()


def test_parse_shapes() -> None:
    assert parse_circle("150 2 0.01") == Circle(150.0, 2.0, 0.01)
    assert parse_circle("-10 2 0.01").ra == 350.0
    assert len(parse_polygon("1 1 2 1 2 2").vertices) == 3
    assert isinstance(parse_pos("circle 10 20 1"), Circle)
    assert isinstance(parse_pos("POLYGON 1 1 2 1 2 2"), Polygon)
    r = parse_pos("RANGE 10 20 -5 5")
    assert parse_range("-Inf +Inf -5 5").ra_max == 360.0
    assert r.bounding_circle()[2] > 5
    assert parse_interval("1e-7 2e-7", "BAND") == (1e-7, 2e-7)
    assert parse_interval("-Inf 5", "TIME") == (float("-inf"), 5.0)
    assert parse_interval("3", "BAND") == (3.0, 3.0)
    for bad in ("1 2", "1 2 0", "1 95 1", "a b c", "1 2 nan", "1 2 500"):
        with pytest.raises(VOError):
            parse_circle(bad)
    for bad in ("1 1 2 1", "1 1 2 1 2", "1 1 2 x 3 3"):
        with pytest.raises(VOError):
            parse_polygon(bad)
    for bad in ("BOX 1 2 3 4", "RANGE 1 2 3", "RANGE 1 2 5 3"):
        with pytest.raises(VOError):
            parse_pos(bad)
    with pytest.raises(VOError):
        parse_interval("5 1", "TIME")


def test_overlap_and_containment() -> None:
    square = np.array([[10.0, 0.0], [11.0, 0.0], [11.0, 1.0], [10.0, 1.0]])
    assert Circle(10.5, 0.5, 0.01).overlaps(square)           # inside
    assert Circle(11.2, 0.5, 0.25).overlaps(square)           # across an edge
    assert not Circle(11.2, 0.5, 0.15).overlaps(square)
    assert not Circle(200.0, 0.5, 1.0).overlaps(square)
    tri = Polygon(((10.5, 0.5), (12.0, 0.5), (12.0, 2.0)))
    assert tri.overlaps(square)
    assert not Polygon(((20.0, 0.0), (21.0, 0.0), (21.0, 1.0))).overlaps(square)
    # a polygon across RA 0, and containment at the pole
    wrap = Polygon(((359.5, -0.5), (0.5, -0.5), (0.5, 0.5), (359.5, 0.5)))
    assert wrap.contains(0.0, 0.0) and wrap.contains(359.8, 0.2)
    assert not wrap.contains(1.0, 0.0)
    cap = Polygon(((0.0, 89.0), (120.0, 89.0), (240.0, 89.0)))
    assert cap.contains(45.0, 89.9)
    assert float(separation(0.0, 0.0, 0.0, 1.0)) == pytest.approx(1.0)
    assert footprint_polygon("10 0;11 0;11 1;10 1").shape == (4, 2)
    assert footprint_polygon("POLYGON ICRS 10 0 11 0 11 1").shape == (3, 2)
    assert footprint_polygon("nonsense") is None


@pytest.mark.parametrize("sip", [False, True])
@pytest.mark.parametrize("region", [
    Circle(150.001, 2.002, 0.003),
    Polygon(((149.998, 1.998), (150.004, 1.999), (150.003, 2.004))),
    Circle(149.985, 1.99, 0.01),  # over the image's corner: trimmed
])
def test_cutout_wcs_agrees_with_parent(region: Circle | Polygon, sip: bool) -> None:
    parent_bytes = _image(sip=sip)
    out = cutout(parent_bytes, region)
    with fits.open(io.BytesIO(parent_bytes)) as parent, fits.open(io.BytesIO(out)) as cut:
        assert len(cut) == 2  # the COUNT map was cut too
        pw, cw = WCS(parent[0].header), WCS(cut[0].header)
        assert cw.has_celestial and (cw.sip is not None) == sip
        assert cut[0].header["FILTER"] == "r" and cut[0].header["DATE-OBS"].startswith("2003")
        ny, nx = cut[0].data.shape
        x0, y0 = -cut[0].header["LTV1"], -cut[0].header["LTV2"]
        # the cutout's pixels are the parent's
        np.testing.assert_array_equal(cut[0].data, parent[0].data[y0:y0 + ny, x0:x0 + nx])
        assert cut[1].data.shape == (ny, nx)
        # the same sky points land on the same pixels, to 0.01 pixel
        yy, xx = np.mgrid[0:ny:7, 0:nx:7]
        sky = cw.pixel_to_world(xx.ravel(), yy.ravel())
        px, py = pw.world_to_pixel(sky)
        assert np.abs(px - (xx.ravel() + x0)).max() < 0.01
        assert np.abs(py - (yy.ravel() + y0)).max() < 0.01
        # the box holds the whole region where it is on the image
        ra, dec = region.boundary()
        x, y = cw.world_to_pixel_values(ra, dec)
        inside = ((x + x0 >= -0.5) & (x + x0 < 399.5) & (y + y0 >= -0.5) & (y + y0 < 299.5))
        assert inside.any()
        assert (x[inside] >= -0.5).all() and (x[inside] < nx - 0.5).all()
        assert (y[inside] >= -0.5).all() and (y[inside] < ny - 0.5).all()


def test_cutout_refusals() -> None:
    with pytest.raises(VOError, match="NoOverlap"):
        cutout(_image(), Circle(10.0, 2.0, 0.01))
    plain = io.BytesIO()
    fits.PrimaryHDU(np.zeros((5, 5), dtype=np.float32)).writeto(plain)
    with pytest.raises(VOError) as err:
        cutout(plain.getvalue(), Circle(10.0, 2.0, 0.01))
    assert err.value.status == 422


def _reader(data: bytes, log: list[int]):  # type: ignore[no-untyped-def]
    async def read(start: int, end: int) -> tuple[bytes, int]:
        chunk = data[start:end + 1]
        log.append(len(chunk))
        return chunk, len(data)
    return read


def _in_extension(data: bytes, scaled: bool = False) -> bytes:
    """The same image as an extension behind an empty primary (and as scaled int16)."""
    with fits.open(io.BytesIO(data)) as hdul:
        header = hdul[0].header.copy()
        pixels = hdul[0].data
        ext = fits.ImageHDU(pixels, header, name="SCI")
        if scaled:
            ext = fits.ImageHDU((pixels % 3000).astype(np.float32), header, name="SCI")
            ext.scale("int16", bzero=1000.0, bscale=0.5)
        out = io.BytesIO()
        fits.HDUList([fits.PrimaryHDU(), ext]).writeto(out)
        return out.getvalue()


@pytest.mark.parametrize("form", ["primary", "extension", "scaled"])
async def test_ranged_cutout_reads_only_its_rows(form: str) -> None:
    data = _image(nx=400, ny=3000, sip=True)
    if form != "primary":
        data = _in_extension(data, scaled=form == "scaled")
    region = Circle(150.0, 2.0, 0.004)
    log: list[int] = []
    got = await ranged_cutout(_reader(data, log), region, "test")
    assert got is not None
    want = cutout(data, region, "test")
    assert sum(log) < len(data) / 4  # headers and ~150 of 3000 rows
    with fits.open(io.BytesIO(got)) as a, fits.open(io.BytesIO(want)) as b:
        assert len(a) == len(b)
        for ha, hb in zip(a, b, strict=True):
            np.testing.assert_array_equal(ha.data, hb.data)
            assert ha.header["LTV2"] == hb.header["LTV2"] and ha.header["LTV1"] == hb.header["LTV1"]
            wa, wb = WCS(ha.header), WCS(hb.header)
            yy, xx = np.mgrid[0:ha.data.shape[0]:9, 0:ha.data.shape[1]:9]
            sa = wa.pixel_to_world_values(xx.ravel(), yy.ravel())
            sb = wb.pixel_to_world_values(xx.ravel(), yy.ravel())
            np.testing.assert_allclose(sa, sb, atol=1e-10)
    with pytest.raises(VOError, match="NoOverlap"):
        await ranged_cutout(_reader(data, []), Circle(10.0, 2.0, 0.01), "test")


def test_footprint_index_finds_every_overlapping_image() -> None:
    """Candidates hold every image whose footprint overlaps a circle (checked exactly over
    random chip-sized footprints), and not many more."""
    rng = np.random.default_rng(5)
    index = FootprintIndex()
    rows, corners = [], {}
    for i in range(400):
        ra, dec = rng.uniform(0, 4), rng.uniform(-2, 2)
        c = np.array([[ra, dec], [ra + 0.1, dec], [ra + 0.1, dec + 0.2], [ra, dec + 0.2]])
        corners[f"oid{i}"] = c
        rows.append({"oid": f"oid{i}", "footprint": ";".join(f"{a} {b}" for a, b in c)})
    rows.append({"oid": "none", "footprint": None})
    index._add(rows)  # what refresh() does with the catalog's rows
    assert len(index) == 400
    for ra, dec, r in [(2.0, 0.0, 0.05), (1.0, 1.0, 0.3), (3.95, -1.9, 0.01)]:
        found = set(index.near(ra, dec, r))
        exact = {oid for oid, c in corners.items() if Circle(ra, dec, r).overlaps(c)}
        assert exact <= found and len(found) <= 3 * len(exact) + 3
