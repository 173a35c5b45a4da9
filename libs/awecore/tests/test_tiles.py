"""The sky tiling: stable names, one containing tile per position, overlapping neighbours,
per-tile TAN WCS."""

from __future__ import annotations

import numpy as np
import pytest
from astropy.coordinates import SkyCoord

from awecore.errors import InvalidRequest
from awecore.tiles import TILINGS, Tile, default_tiling, tile, tiles_at, tiles_overlapping


def _positions(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Random positions, uniform on the sphere, plus the awkward places: RA near 0/360,
    declinations near the poles and just below zero."""
    rng = np.random.default_rng(seed)
    ra = rng.uniform(0, 360, n)
    dec = np.degrees(np.arcsin(rng.uniform(-1, 1, n)))
    ra_edge = np.array([0.0, 1e-9, 359.99999, 359.96, 0.04, 180.0, 359.5, 0.5])
    dec_edge = np.array([0.0, -0.0001, 89.99, -89.99, 89.5, -89.5, -0.05, 0.05])
    return np.concatenate([ra, ra_edge]), np.concatenate([dec, dec_edge])


@pytest.mark.parametrize("tiling", sorted(TILINGS))
def test_names_round_trip_and_one_tile_contains_each_position(tiling: str) -> None:
    ra, dec = _positions(400, seed=1)
    for r, d in zip(ra, dec, strict=True):
        found = tiles_at(float(r), float(d), tiling)
        home = found[0]
        assert home.contains(float(r), float(d))
        assert tile(home.name) == home  # the name gives back the same tile, exactly
        assert home.name.startswith(f"{tiling}_")
        containing = [t for t in found if t.contains(float(r), float(d))]
        assert containing == [home], (r, d, [t.name for t in found])
        # away from the polar caps the home tile's square covers the position
        if abs(d) < 80:
            assert home.overlaps([r], [d])
            centre = SkyCoord(home.ra, home.dec, unit="deg")
            assert centre.separation(SkyCoord(r, d, unit="deg")).deg < 0.75 * home.size


def test_negative_declinations_carry_a_minus_sign_and_centres_come_from_indices() -> None:
    t = TILINGS["KIDS"].tile_at(150.2, -2.3)
    assert t.name == "KIDS_150.0_-2.0"
    assert (t.ra, t.dec, t.size, t.margin) == (150.0, -2.0, 1.0, pytest.approx(0.05))
    m = TILINGS["MINI"].tile_at(10.02, -0.31)
    assert m.name == "MINI_10.00_-0.30"
    # at dec 60 a band has 180 tiles of 2 deg in RA: the centre is exact, not the name's
    k = TILINGS["KIDS"].tile_at(1.2, 60.2)
    assert k.name == "KIDS_2.0_60.0" and k.ra == 2.0


def test_neighbours_overlap_by_twice_the_margin() -> None:
    t = TILINGS["KIDS"].tile_at(150.0, 0.0)
    east = TILINGS["KIDS"].tile_at(151.0, 0.0)
    north = TILINGS["KIDS"].tile_at(150.0, 1.0)
    h = t.half_width
    # the neighbour's centre is `size` away: its square starts size - h from our centre
    for other in (east, north):
        x, y, _ = t.project(other.ra, other.dec)
        distance = float(np.hypot(x, y))
        overlap = 2 * h - distance
        assert overlap == pytest.approx(2 * t.margin, abs=2e-4)
    # a point inside the overlap strip is covered by both, outside it by one
    inside = tiles_at(150.5 + 0.04, 0.2, "KIDS")
    assert {x.name for x in inside} >= {"KIDS_150.0_0.0", "KIDS_151.0_0.0"}
    alone = tiles_at(150.3, 0.2, "KIDS")
    assert [x.name for x in alone] == ["KIDS_150.0_0.0"]


def test_tile_wcs_centre_scale_and_shape() -> None:
    t = tile("KIDS_150.0_2.0")
    ny, nx = t.shape(0.2)
    assert (ny, nx) == (19800, 19800)
    w = t.wcs(0.2)
    assert w.pixel_shape == (nx, ny)
    assert w.wcs.radesys == "ICRS"
    x, y = w.world_to_pixel_values(150.0, 2.0)
    assert (float(x), float(y)) == (pytest.approx((nx - 1) / 2), pytest.approx((ny - 1) / 2))
    # one pixel east is 0.2" away and to the left (x decreases), north is up
    a = w.pixel_to_world(1000, 1000)
    b = w.pixel_to_world(1001, 1000)
    c = w.pixel_to_world(1000, 1001)
    assert a.separation(b).arcsec == pytest.approx(0.2, rel=1e-3)
    assert b.ra.deg < a.ra.deg and c.dec.deg > a.dec.deg
    # the image's corners are the extended square: size + 2 margin along each axis
    left = w.pixel_to_world(-0.5, (ny - 1) / 2)
    right = w.pixel_to_world(nx - 0.5, (ny - 1) / 2)
    assert left.separation(right).deg == pytest.approx(t.size + 2 * t.margin, rel=1e-3)


def test_footprints_across_ra_zero_and_chips_far_away() -> None:
    # a chip straddling RA 0 on the equator touches the tiles on both sides
    names = {t.name for t in tiles_overlapping([359.9, 0.1, 0.1, 359.9],
                                              [-0.1, -0.1, 0.1, 0.1], "KIDS")}
    assert names == {"KIDS_0.0_0.0"}
    names = {t.name for t in tiles_overlapping([359.45, 359.6, 359.6, 359.45],
                                              [-0.1, -0.1, 0.1, 0.1], "KIDS")}
    assert names == {"KIDS_0.0_0.0", "KIDS_359.0_0.0"}
    t = tile("KIDS_0.0_0.0")
    assert not t.overlaps([180.0, 180.1], [0.0, 0.1])  # the far side of the sky
    assert not t.overlaps([2.0, 2.1], [0.0, 0.1])


@pytest.mark.parametrize("bad", ["KIDS_150.1_2.0", "KIDS_150.0_2", "KIDS_150.00_2.00",
                                 "FOO_1.0_1.0", "KIDS_150.0_95.0", "KIDS_360.0_0.0",
                                 "kids_150.0_2.0", "KIDS_150.0_2.0 ", "", "KIDS_150.0_-0.0"])
def test_bad_names_are_refused_with_the_expected_form(bad: str) -> None:
    with pytest.raises(InvalidRequest) as caught:
        tile(bad)
    assert "tile name" in str(caught.value)
    assert "\n" not in str(caught.value)


def test_default_tiling_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AWE_TILING", raising=False)
    assert default_tiling() == "KIDS"
    monkeypatch.setenv("AWE_TILING", "MINI")
    assert default_tiling() == "MINI"
    assert tiles_at(10.0, 0.0)[0].tiling == "MINI"
    monkeypatch.setenv("AWE_TILING", "HEALPIX")
    with pytest.raises(InvalidRequest, match="KIDS, MINI"):
        default_tiling()
    with pytest.raises(InvalidRequest):
        tiles_at(10.0, 0.0, "NOPE")


def test_tile_margin_defaults_to_five_percent() -> None:
    assert Tile("X", "KIDS", 0.0, 0.0, 2.0).margin == pytest.approx(0.1)
