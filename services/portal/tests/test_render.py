"""The portal's pictures as pure functions: previews (pixels checked), the lineage graph,
QC series and the calibration timeline (SVG parsed and its geometry checked)."""

from __future__ import annotations

import asyncio
import datetime as dt
import io
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pytest
from astropy.io import fits
from astropy.wcs import WCS
from PIL import Image

from awe_portal.render import (
    NoPixels,
    Point,
    PreviewCache,
    lineage_svg,
    render_preview,
    series_svg,
    timeline_svg,
)
from awe_portal.render._svg import date_ticks, nice_ticks
from awecore.lineage import Edge, Graph, Node
from awecore.records import CurationChange, TimelineEntry

SVG = "{http://www.w3.org/2000/svg}"
T0 = dt.datetime(2003, 2, 14, 12, tzinfo=dt.UTC)


def _fits(data: np.ndarray, wcs: WCS | None = None) -> bytes:
    out = io.BytesIO()
    header = wcs.to_header() if wcs is not None else None
    fits.PrimaryHDU(data, header=header).writeto(out)
    return out.getvalue()


def _wcs(nx: int, ny: int) -> WCS:
    w = WCS(naxis=2)
    w.wcs.ctype = ["RA---TAN", "DEC--TAN"]
    w.wcs.crval = [150.0, 2.0]
    w.wcs.crpix = [nx / 2, ny / 2]
    w.wcs.cdelt = [-0.2 / 3600, 0.2 / 3600]
    return w


def _png(data: bytes) -> np.ndarray:
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    return np.asarray(Image.open(io.BytesIO(data)).convert("RGB")).astype(int)


def _sky(ny: int = 200, nx: int = 300, seed: int = 3) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return (1000 + rng.normal(0, 10, (ny, nx))).astype(np.float32)


# -- previews -------------------------------------------------------------------------------
def test_preview_zscale_shows_the_sky_and_a_star_despite_an_outlier() -> None:
    data = _sky()
    data[100:110, 200:210] += 400  # a star, well above the noise
    data[5, 5] = 1e7  # a cosmic ray: a min/max stretch would turn the sky black
    img = _png(render_preview(_fits(data), size=300))
    grey = img.mean(axis=2)
    h, w = grey.shape
    # no WCS: the picture fills the figure but for a thin margin, rows flipped (origin lower)
    sy, sx = (h - 10) / 200, (w - 10) / 300
    star = grey[int(h - 5 - 105 * sy), int(5 + 205 * sx)]
    sky = np.median(grey[h // 4: h // 2, w // 8: w // 3])
    assert 40 < sky < 215  # zscale puts the sky mid-grey
    assert star == pytest.approx(255, abs=3)  # the star saturates the stretch
    assert star - sky > 40


def test_preview_draws_a_wcs_grid_only_when_there_is_a_wcs() -> None:
    data = _sky()
    plain = _png(render_preview(_fits(data), size=300))
    gridded = _png(render_preview(_fits(data, _wcs(300, 200)), size=300))
    assert gridded.shape[1] > plain.shape[1]  # room for the coordinate labels
    # the grid's colour (#33ccff, blended) is a bluish pixel a grey image never has
    def bluish(img: np.ndarray) -> int:
        return int(((img[..., 2] - img[..., 0]) > 60).sum())
    assert bluish(plain) == 0
    assert bluish(gridded) > 100


def test_preview_of_a_large_image_is_binned_to_the_size() -> None:
    img = _png(render_preview(_fits(_sky(800, 3000)), size=250))
    assert img.shape[1] <= 260 and img.shape[0] <= 80


def test_preview_takes_the_first_image_extension() -> None:
    out = io.BytesIO()
    fits.HDUList([fits.PrimaryHDU(), fits.ImageHDU(_sky(50, 60))]).writeto(out)
    assert _png(render_preview(out.getvalue(), size=120)).shape[1] > 100


def test_no_pixels_in_a_table_or_a_non_fits_file() -> None:
    out = io.BytesIO()
    table = fits.BinTableHDU.from_columns([fits.Column(name="x", format="E", array=[1.0])])
    fits.HDUList([fits.PrimaryHDU(), table]).writeto(out)
    with pytest.raises(NoPixels):
        render_preview(out.getvalue())
    with pytest.raises(NoPixels):
        render_preview(b"not a fits file at all" * 200)


def test_cache_renders_once_per_oid_and_checksum(tmp_path: Path) -> None:
    cache = PreviewCache(tmp_path, size=100)
    calls: list[str] = []
    payload = _fits(_sky(40, 40))

    async def load() -> bytes:
        calls.append("x")
        await asyncio.sleep(0)
        return payload

    async def main() -> list[bytes]:
        first = await asyncio.gather(*(cache.png("0190-a", "abc", load) for _ in range(4)))
        again = await cache.png("0190-a", "abc", load)
        other = await cache.png("0190-a", "def", load)
        return [*first, again, other]

    got = asyncio.run(main())
    assert len(calls) == 2  # one render for "abc" however many asked, one for "def"
    assert len({bytes(g) for g in got[:5]}) == 1
    assert cache.path("0190-a", "abc").read_bytes() == got[0]
    assert cache.path("0190-a", "abc") != cache.path("0190-a", "def")
    assert cache.path("../../etc", "x/y").parent == tmp_path  # no escaping the cache


def test_cache_keeps_nothing_for_a_file_without_pixels(tmp_path: Path) -> None:
    cache = PreviewCache(tmp_path)

    async def load() -> bytes:
        return b"nope"

    with pytest.raises(NoPixels):
        asyncio.run(cache.png("o", "c", load))
    assert list(tmp_path.iterdir()) == []


# -- lineage graph --------------------------------------------------------------------------
def _node(oid: str, type_: str, depth: int, is_valid: int = 1, **data_id: str) -> Node:
    return Node(oid=oid, type=type_, site="s1", creation_date=T0, creator="alice",
                is_valid=is_valid, data_id=data_id or None, depth=depth)


def _links(svg: str) -> dict[str, ET.Element]:
    root = ET.fromstring(svg)
    return {a.get("data-oid", ""): a for a in root.iter(f"{SVG}a")}


def _box_x(a: ET.Element) -> float:
    rect = a.find(f"{SVG}rect")
    assert rect is not None
    return float(rect.get("x", "nan"))


def test_lineage_graph_puts_inputs_left_products_right_and_links_each_node() -> None:
    up = Graph(root="r", direction="upstream", nodes=[
        _node("r", "ReducedScienceFrame", 0, chip="ccd50", night="2003-02-14"),
        _node("b", "BiasFrame", 1, is_valid=0, chip="ccd50", night="2003-02-13"),
        _node("f", "MasterFlatFrame", 1, chip="ccd50", filter="r"),
        _node("rb", "RawBiasFrame", 2)],
        edges=[Edge(src="r", name="bias", dst="b"), Edge(src="r", name="flat", dst="f"),
               Edge(src="b", name="raw_bias_frames", dst="rb")])
    down = Graph(root="r", direction="downstream", nodes=[
        _node("r", "ReducedScienceFrame", 0), _node("s", "SourceList", 1)],
        edges=[Edge(src="s", name="frame", dst="r")])
    svg = str(lineage_svg("r", up, down, href=lambda o: f"/o/{o}"))
    links = _links(svg)
    assert set(links) == {"r", "b", "f", "rb", "s"}
    assert links["r"].get("href") == "/o/r" and "root" in links["r"].get("class", "")
    assert _box_x(links["rb"]) < _box_x(links["b"]) == _box_x(links["f"]) \
        < _box_x(links["r"]) < _box_x(links["s"])
    assert links["b"].get("data-valid") == "0"
    assert "ccd50 2003-02-13" in ET.tostring(links["b"], encoding="unicode")
    edges = [p for p in ET.fromstring(svg).iter(f"{SVG}path") if p.get("class") == "edge"]
    assert len(edges) == 4


def test_lineage_graph_cuts_wide_columns_and_escapes_text() -> None:
    raws = [_node(f"raw{i:03d}", "RawBiasFrame", 1) for i in range(60)]
    up = Graph(root="r", direction="upstream",
               nodes=[_node("r", "<script>alert(1)</script>", 0), *raws],
               edges=[Edge(src="r", name="raw", dst=n.oid) for n in raws])
    svg = str(lineage_svg("r", up, max_per_column=10))
    root = ET.fromstring(svg)  # well-formed although a type name holds markup
    assert not list(root.iter("script")) and not list(root.iter(f"{SVG}script"))
    assert len(_links(svg)) == 10  # the root and 9 raw frames; the other 51 summed up
    assert "+51 more RawBiasFrame" in svg


def test_lineage_graph_without_the_root_says_so() -> None:
    assert "no lineage recorded" in str(lineage_svg("x"))


# -- QC series ------------------------------------------------------------------------------
def _circle_y(a: ET.Element) -> float:
    c = a.find(f"{SVG}circle")
    assert c is not None
    return float(c.get("cy", "nan"))


def test_series_marks_each_point_by_verdict_and_flags_and_links_it() -> None:
    pts = [Point(T0, 4.0, "a"), Point(T0 + dt.timedelta(days=1), 6.0, "b", is_valid=0),
           Point(T0 + dt.timedelta(days=2), 5.0, "c", flags=4),
           Point(T0 + dt.timedelta(days=3), 5.5, "d", is_valid=2),
           Point(T0 + dt.timedelta(days=4), float("nan"), "e")]
    svg = str(series_svg(pts, title="read noise", unit="adu"))
    links = _links(svg)
    assert set(links) == {"a", "b", "c", "d"}  # not a number: left out
    assert links["a"].get("href") == "/objects/a"
    assert "valid-0" in links["b"].get("class", "")
    assert "flagged" in links["c"].get("class", "") and "flagged" not in links["a"].get("class", "")
    # bad is a cross (no filled disc), flagged has a red ring
    assert links["b"].find(f"{SVG}path") is not None
    assert any(c.get("stroke") == "#cc0000" for c in links["c"].iter(f"{SVG}circle"))
    # higher values are higher up; later nights further right
    assert _circle_y(links["a"]) > _circle_y(links["c"]) > _circle_y(links["d"])
    xs = [float(links[k].find(f"{SVG}circle").get("cx", "nan")) for k in "acd"]  # type: ignore[union-attr]
    assert xs == sorted(xs)
    assert "read noise (adu)" in svg


def test_series_without_points_says_no_data() -> None:
    svg = str(series_svg([], title="seeing", unit="arcsec"))
    assert "no data" in svg and ET.fromstring(svg) is not None


# -- timeline -------------------------------------------------------------------------------
def _entry(oid: str, start: dt.datetime | None, end: dt.datetime | None, is_valid: int = 1,
           flags: int = 0) -> TimelineEntry:
    return TimelineEntry(oid=oid, type="BiasFrame", timestamp_start=start, timestamp_end=end,
                         is_valid=is_valid, quality_flags=flags, creator="alice",
                         creation_date=T0, site="s1", chip="ccd50",
                         last_curation=CurationChange(oid=oid, at=T0, by="carol", site="s1",
                                                      reason="moved", changes={}))


def _bar(a: ET.Element) -> tuple[float, float]:
    rect = a.find(f"{SVG}rect")
    assert rect is not None
    x = float(rect.get("x", "nan"))
    return x, x + float(rect.get("width", "nan"))


def test_timeline_draws_each_window_on_a_shared_axis() -> None:
    d = dt.timedelta(days=1)
    entries = [_entry("late", T0 + 2 * d, T0 + 4 * d), _entry("early", T0, T0 + 3 * d, flags=2),
               _entry("bad", T0 + d, T0 + 2 * d, is_valid=0), _entry("open", T0 + 3 * d, None)]
    svg = str(timeline_svg(entries, href=lambda o: f"/timeline?edit={o}", highlight={"late"}))
    links = _links(svg)
    assert set(links) == {"late", "early", "bad", "open"}
    early, bad, late, open_ = (_bar(links[k]) for k in ("early", "bad", "late", "open"))
    assert early[0] < bad[0] < late[0] < open_[0]
    assert early[1] > late[0]  # the overlap is visible
    assert late[1] - late[0] == pytest.approx(early[1] - early[0] - (bad[1] - bad[0]), rel=0.01)
    assert "flagged" in links["early"].get("class", "")
    assert "edited" in links["late"].get("class", "")
    assert links["bad"].get("data-valid") == "0"
    assert links["open"].get("data-end") == ""
    assert links["late"].get("href") == "/timeline?edit=late"
    assert "last changed by carol" in svg and "moved" in svg
    # rows in order of start: early above bad above late
    ys = [float(links[k].find(f"{SVG}rect").get("y", "nan"))  # type: ignore[union-attr]
          for k in ("early", "bad", "late")]
    assert ys == sorted(ys)


def test_timeline_clips_windows_to_the_range_asked() -> None:
    d = dt.timedelta(days=1)
    svg = str(timeline_svg([_entry("a", T0 - 10 * d, T0 + 10 * d)], start=T0, end=T0 + d,
                           width=500))
    x1, x2 = _bar(_links(svg)["a"])
    assert x1 == pytest.approx(210) and x2 == pytest.approx(500 - 16)


def test_empty_timeline_says_so() -> None:
    assert "no calibrations" in str(timeline_svg([]))


# -- axes -----------------------------------------------------------------------------------
def test_ticks_are_round_and_cover_the_range() -> None:
    assert nice_ticks(0.13, 0.91, 5) == [0.2, 0.4, 0.6, 0.8]
    assert nice_ticks(5, 5) != []
    ticks = date_ticks(T0, T0 + dt.timedelta(days=30), 8)
    assert 3 <= len(ticks) <= 8 and all(t.hour == 0 for t in ticks)
    assert len(date_ticks(T0, T0 + dt.timedelta(hours=6))) >= 3
