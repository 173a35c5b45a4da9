"""The tile simulator: dithered exposures of one sky tile over several nights, with cosmic
rays, one satellite trail and clouds, and the truth a coadd is checked against.

A pure simulator test (no services), like the night and survey simulators' tests: the files
are the camera's (its header conventions, read by the ingest's translators); the dithers
differ and move stars between chips; the pixels hold what the truth says (cosmic rays where
it lists them, exactly one trail, stars where the true WCS puts them with the flux the true
zeropoint gives); the existing per-chip astrometry solves every chip; the same seed gives the
same bytes and a night does not change when nights are added after it."""

from __future__ import annotations

import dataclasses
import hashlib
import itertools
import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from astropy.io import fits
from astropy.wcs import WCS
from typer.testing import CliRunner

from awecore.cli import app
from awecore.ingest import read_exposure, translator_for
from awecore.pipelines import extract_sources, fit_astrometry
from awecore.sim import (
    PRESETS,
    InstrumentSpec,
    NightPlan,
    load_tile_truth,
    simulate_tile,
    tile_refcat_name,
    truth_wcs,
)
from awecore.sim._tile import REFCAT_LIMIT
from awecore.tiles import tile as sky_tile

PLAN = NightPlan(n_bias=3, n_dome=2, n_twilight=2)
TINY = PRESETS["tiny"]
OMEGACAM = PRESETS["omegacam-small"]
CENTRE = (151.3, -12.4)
SEED = 11


def make(out: Path, inst: InstrumentSpec = TINY, **kw: Any) -> dict[str, Any]:
    args: dict[str, Any] = dict(ra=CENTRE[0], dec=CENTRE[1], nights=2, exposures=3,
                                dither_arcsec=25.0, plan=PLAN)
    args.update(kw)
    return simulate_tile(out, inst, SEED, **args)


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Any]]:
    out = tmp_path_factory.mktemp("tile")
    return out, make(out)


@pytest.fixture(scope="module")
def omegacam(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Any]]:
    out = tmp_path_factory.mktemp("tile-omegacam")
    return out, make(out, OMEGACAM, nights=1, exposures=2)


def digest(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def night_truth(folder: Path, exposure: dict[str, Any]) -> dict[str, Any]:
    truth: dict[str, Any] = json.loads((folder / exposure["folder"] / "truth.json").read_text())
    return truth


def trimmed(inst: InstrumentSpec, data: np.ndarray) -> np.ndarray:
    """The light-sensitive pixels of a raw extension, as floats."""
    out: np.ndarray = data[:, inst.prescan_x:inst.prescan_x + inst.nx].astype(np.float64)
    return out


def electrons(inst: InstrumentSpec, data: np.ndarray, chip: dict[str, Any],
              flat: np.ndarray) -> np.ndarray:
    """A raw chip reduced with its truth: bias off, times the gain, divided by the flat."""
    x = np.arange(inst.nx) / inst.nx
    bias = chip["bias_level"] + chip["bias_slope"] * x[None, :]
    out: np.ndarray = (trimmed(inst, data) - bias) * chip["gain"] / flat
    return out


@pytest.mark.parametrize("which", ["tiny", "omegacam"])
def test_files_follow_the_cameras_conventions(which: str, request: pytest.FixtureRequest) -> None:
    folder, truth = request.getfixturevalue(which)
    inst = TINY if which == "tiny" else OMEGACAM
    survey = json.loads((folder / "survey.json").read_text())
    assert survey["refcat"]["name"] == tile_refcat_name(inst, SEED, truth["tile"]["field"])
    assert survey["tile"]["truth_file"] == "tile_truth.json"
    assert load_tile_truth(folder) == truth
    kinds: dict[str, int] = {}
    for night in survey["nights"]:
        files = sorted((folder / night["folder"]).glob("*.fits"))
        nt = json.loads((folder / night["folder"] / "truth.json").read_text())
        assert [p.name for p in files] == sorted(e["file"] for e in nt["exposures"])
        for path in files:
            with fits.open(path) as hdul:
                hdul.verify("exception")
                h = hdul[0].header
                assert h["INSTRUME"] == inst.name and len(hdul) == inst.n_chips + 1
                kind = translator_for(h).raw_class()
                kinds[kind] = kinds.get(kind, 0) + 1
                for i, ext in enumerate(hdul[1:]):
                    assert ext.data.shape == (inst.ny, inst.raw_nx)
                    assert ext.data.dtype.kind in "iu" and ext.header["BZERO"] == 32768
                    if inst.style == "omegacam":
                        assert ext.header["EXTNAME"] == f"ESO_CCD_#{65 + i}"
                        assert ext.header["HIERARCH ESO DET OUT1 OVSCX"] == 32
                    else:
                        assert ext.header["CHIPID"] == f"ccd{50 + i}"
                if kind == "RawScienceFrame":
                    assert h["OBJECT"] == truth["tile"]["field"]
                    if inst.style == "omegacam":
                        assert h["HIERARCH ESO DPR TYPE"] == "OBJECT"
                    else:
                        assert h["IMAGETYP"] == "OBJECT"
    # the ingest reads a science file as that night's raw chips, the catalogue as a catalogue
    first = truth["exposures"][0]
    path = folder / first["folder"] / first["file"]
    parts = read_exposure(path, path.name).parts
    assert len(parts) == inst.n_chips and {p.name.split("/")[2] for p in parts} == {
        first["folder"]}
    refcat_parts = read_exposure(folder / "refcat.fits", "refcat.fits").parts
    assert [p.cls for p in refcat_parts] == ["ReferenceCatalog"]
    n_science = len(truth["exposures"])
    assert kinds["RawScienceFrame"] == n_science == len(survey["nights"]) * (
        3 if which == "tiny" else 2)
    assert kinds["RawBiasFrame"] == PLAN.n_bias  # calibrations on night 1 only
    assert kinds["RawStandardFrame"] == len(inst.filters)
    # the catalogue: the field's stars brighter than its limit (and the standard's); the
    # truth has fainter ones too
    with fits.open(folder / "refcat.fits") as refcat:
        mags = np.asarray(refcat["STARS"].data[f"MAG_{inst.filters[0].name}"])
        assert refcat[0].header["REFCAT"] == survey["refcat"]["name"]
    stars = truth["stars"]
    assert max(s["mag"] for s in stars) > REFCAT_LIMIT + 1
    assert mags.max() < REFCAT_LIMIT + 0.05
    assert sum(s["in_refcat"] for s in stars) <= len(mags)


def test_dithers_differ_and_move_stars_between_chips(tiny: tuple[Path, dict[str, Any]]) -> None:
    folder, truth = tiny
    exposures = truth["exposures"]
    offsets = [tuple(e["dither_arcsec"]) for e in exposures]
    assert len(set(offsets)) == len(offsets)
    assert all(abs(v) <= 25.0 for o in offsets for v in o)
    for night in (1, 2):
        mine = [tuple(e["dither_arcsec"]) for e in exposures if e["night"] == night]
        assert min(np.hypot(a[0] - b[0], a[1] - b[1])
                   for a, b in itertools.combinations(mine, 2)) >= 25.0 / np.sqrt(len(mine))
    chips_of: dict[int, set[str]] = {}
    for e in exposures:
        with fits.open(folder / e["folder"] / e["file"]) as hdul:
            h = hdul[0].header
            # the header's pointing is the dithered one; its WCS is off by the pointing error
            assert (h["RA"], h["DEC"]) == (e["pointing"]["ra"], e["pointing"]["dec"])
            east = (e["pointing"]["ra"] - CENTRE[0]) * np.cos(np.radians(e["pointing"]["dec"]))
            assert east * 3600 == pytest.approx(e["dither_arcsec"][0], abs=1e-3)
            for name, chip in e["chips"].items():
                header = WCS(hdul[chip["hdu"]].header)
                true = truth_wcs(chip)
                error = header.pixel_to_world(50, 50).separation(
                    true.pixel_to_world(50 + TINY.prescan_x, 50)).arcsec
                assert error == pytest.approx(np.hypot(*e["pointing_error_arcsec"]), abs=0.01)
                x, y = true.world_to_pixel_values([s["ra"] for s in truth["stars"]],
                                                  [s["dec"] for s in truth["stars"]])
                on = np.flatnonzero((x >= 0) & (x < TINY.nx) & (y >= 0) & (y < TINY.ny))
                for i in on:
                    chips_of.setdefault(int(i), set()).add(name)
    assert sum(len(c) > 1 for c in chips_of.values()) >= 10  # stars seen on both chips


def test_cosmic_rays_where_the_truth_says(tiny: tuple[Path, dict[str, Any]]) -> None:
    folder, truth = tiny
    total = 0
    for e in truth["exposures"]:
        nt = night_truth(folder, e)
        with fits.open(folder / e["folder"] / e["file"]) as hdul:
            for name, chip in e["chips"].items():
                data = trimmed(TINY, hdul[chip["hdu"]].data)
                sky = float(np.median(data))
                hits = np.array(chip["cosmic_rays"]).reshape(-1, 2)
                total += len(hits)
                if len(hits):
                    # sharp deposits of 1500 e- or more: far above the sky
                    above = data[hits[:, 1], hits[:, 0]] - sky
                    assert (above > 1400 / nt["chips"][name]["gain"]).all(), (e["file"], name)
                    assert len(hits) < 200  # a few per 10^4 pixels, not a blizzard
    assert total >= len(truth["exposures"])  # every exposure has some, on average
    # none in the calibrations: a bias is flat around its level
    night1 = json.loads((folder / truth["nights"][0]["folder"] / "truth.json").read_text())
    bias = next(e["file"] for e in night1["exposures"] if e["type"] == "bias")
    with fits.open(folder / truth["nights"][0]["folder"] / bias) as hdul:
        data = trimmed(TINY, hdul[1].data)
        hot = np.array(night1["chips"]["ccd50"]["hot_pixels"])
        data[hot[:, 0], hot[:, 1]] = np.median(data)
        assert data.max() - np.median(data) < 60


def test_exactly_one_satellite_trail(tiny: tuple[Path, dict[str, Any]]) -> None:
    folder, truth = tiny
    trailed = [e for e in truth["exposures"] if e["trail"]]
    assert len(trailed) == 1 and trailed[0]["night"] == 1
    e = trailed[0]
    assert truth["trail"]["file"] == e["file"]
    crossed = {n: c["trail"] for n, c in e["chips"].items() if c["trail"]}
    assert crossed and crossed == truth["trail"]["chips"]
    other = next(x for x in truth["exposures"] if x["night"] == 1 and not x["trail"])
    with fits.open(folder / e["folder"] / e["file"]) as hdul, \
            fits.open(folder / other["folder"] / other["file"]) as clean:
        for name, t in crossed.items():
            (x0, y0), (x1, y1) = t["ends"]
            length = np.hypot(x1 - x0, y1 - y0)
            assert length > min(TINY.nx, TINY.ny) / 4
            hdu = e["chips"][name]["hdu"]
            n = int(length)
            xs = np.clip(np.rint(np.linspace(x0, x1, n)[2:-2]).astype(int), 0, TINY.nx - 1)
            ys = np.clip(np.rint(np.linspace(y0, y1, n)[2:-2]).astype(int), 0, TINY.ny - 1)
            on = trimmed(TINY, hdul[hdu].data)
            off = trimmed(TINY, clean[hdu].data)
            # hundreds of e- per pixel along the line, nothing there in another exposure
            assert np.median(on[ys, xs]) - np.median(on) > 150
            assert abs(np.median(off[ys, xs]) - np.median(off)) < 30
            # the line's ends on the sky are where the true WCS puts them
            ra, dec = truth_wcs(e["chips"][name]).pixel_to_world_values(x0, y0)
            assert (ra, dec) == pytest.approx(tuple(t["ends_radec"][0]), abs=1e-9)


def test_transparency_and_zeropoints(tiny: tuple[Path, dict[str, Any]]) -> None:
    folder, truth = tiny
    losses = [e["cloud_loss"] for e in truth["exposures"]]
    assert all(0 <= v <= 0.05 for v in losses) and len(set(losses)) == len(losses)
    for e in truth["exposures"]:
        f = truth["filters"][e["filter"]]
        assert e["zeropoint_top"] == f["zeropoint"]
        assert e["zeropoint"] == pytest.approx(f["zeropoint"] - f["extinction"] * e["airmass"]
                                               - e["cloud_loss"])
        gains = night_truth(folder, e)["chips"]
        for name, chip in e["chips"].items():
            assert chip["zeropoint"] == e["zeropoint"]
            assert chip["zeropoint_adu"] == pytest.approx(
                e["zeropoint"] - 2.5 * np.log10(gains[name]["gain"]))


@pytest.mark.parametrize("which", ["tiny", "omegacam"])
def test_stars_are_where_the_wcs_says_with_the_true_flux(which: str,
                                                         request: pytest.FixtureRequest) -> None:
    folder, truth = request.getfixturevalue(which)
    inst = TINY if which == "tiny" else OMEGACAM
    stars = truth["stars"]
    ra = np.array([s["ra"] for s in stars])
    dec = np.array([s["dec"] for s in stars])
    mag = np.array([s["mag"] for s in stars])
    half = 7
    with fits.open(folder / "truth_flats.fits") as flats:
        flat = {h.name: np.asarray(h.data, dtype=np.float64) for h in flats[1:]}
    for e in truth["exposures"]:
        nt = night_truth(folder, e)
        ratios, offsets = [], []
        with fits.open(folder / e["folder"] / e["file"]) as hdul:
            for name, chip in e["chips"].items():
                image = electrons(inst, hdul[chip["hdu"]].data, nt["chips"][name],
                                  flat[name.upper()])
                x, y = truth_wcs(chip).world_to_pixel_values(ra, dec)
                for i in np.flatnonzero((mag > 17.0) & (mag < 20.5) & (x > 2 * half)
                                        & (x < inst.nx - 2 * half) & (y > 2 * half)
                                        & (y < inst.ny - 2 * half)):
                    xi, yi = round(x[i]), round(y[i])
                    box = image[yi - half:yi + half + 1, xi - half:xi + half + 1]
                    ring = image[yi - 2 * half:yi + 2 * half + 1,
                                 xi - 2 * half:xi + 2 * half + 1].copy()
                    ring[half:3 * half + 1, half:3 * half + 1] = np.nan  # the star's box
                    net = box - np.nanmedian(ring)
                    expected = 10 ** (-0.4 * (mag[i] - chip["zeropoint"])) * e["exptime"]
                    ratios.append(net.sum() / expected)
                    core = net[half - 3:half + 4, half - 3:half + 4]  # the centroid's
                    gy, gx = np.mgrid[yi - 3:yi + 4, xi - 3:xi + 4]
                    offsets.append(np.hypot((core * gx).sum() / core.sum() - x[i],
                                            (core * gy).sum() / core.sum() - y[i]))
        assert len(ratios) >= 3, e["file"]
        # the flux the true zeropoint gives (clouds included), where the true WCS says
        assert np.median(ratios) == pytest.approx(1.0, abs=0.025), e["file"]
        assert np.median(offsets) < 0.2, e["file"]  # pixels


def test_the_per_chip_astrometry_solves_every_chip(tiny: tuple[Path, dict[str, Any]]) -> None:
    """The existing pipeline step, as the recipe calls it (8-arcsec search, SNR 15), on
    frames reduced with the truth: enough catalogue stars on every chip, cosmic rays and
    all."""
    folder, truth = tiny
    with fits.open(folder / "refcat.fits") as refcat:
        ref_ra = np.asarray(refcat["STARS"].data["RA"], dtype=np.float64)
        ref_dec = np.asarray(refcat["STARS"].data["DEC"], dtype=np.float64)
    with fits.open(folder / "truth_flats.fits") as flats:
        flat = {h.name: np.asarray(h.data, dtype=np.float64) for h in flats[1:]}
    for e in truth["exposures"]:
        nt = night_truth(folder, e)
        with fits.open(folder / e["folder"] / e["file"]) as hdul:
            for name, chip in e["chips"].items():
                c = nt["chips"][name]
                image = electrons(TINY, hdul[chip["hdu"]].data, c, flat[name.upper()]) / c["gain"]
                # as the reduction masks them: hot, cold and saturated pixels
                weight = np.where(trimmed(TINY, hdul[chip["hdu"]].data) >= 65000, 0.0, 1.0)
                for key in ("hot_pixels", "cold_pixels"):
                    bad = np.array(c[key])
                    weight[bad[:, 0], bad[:, 1]] = 0
                image[weight == 0] = 0
                header = WCS(hdul[chip["hdu"]].header)
                sources = extract_sources(image, weight, gain=c["gain"])
                solution = fit_astrometry(sources, header, ref_ra, ref_dec, radius_arcsec=8.0)
                centre = (TINY.nx / 2, TINY.ny / 2)
                error = solution.wcs.pixel_to_world(*centre).separation(
                    truth_wcs(chip).pixel_to_world(*centre)).arcsec
                assert error < 0.3 and solution.n_matched >= 4, (e["file"], name, error)


def test_same_seed_same_bytes_and_nights_do_not_change(tiny: tuple[Path, dict[str, Any]],
                                                       tmp_path: Path) -> None:
    folder, _ = tiny
    make(tmp_path / "again")
    assert digest(tmp_path / "again") == digest(folder)
    make(tmp_path / "short", nights=1)
    night = folder.joinpath(json.loads((folder / "survey.json").read_text())["nights"][0][
        "folder"])
    short = digest(tmp_path / "short")
    first = {k: v for k, v in digest(folder).items() if k.startswith(night.name)}
    assert first and first == {k: v for k, v in short.items() if k.startswith(night.name)}


def test_bad_plans_are_refused(tmp_path: Path) -> None:
    for kw, says in ((dict(nights=0), "1 to 100 nights"),
                     (dict(exposures=0), "1 to 100 exposures"),
                     (dict(calib_nights=(3,)), r"\[3\] are not in the survey"),
                     (dict(transparency=-0.1), "cloud loss"),
                     (dict(ra=359.99), "crosses RA 0h"),
                     (dict(tile="MINI_150.00_2.00"), "not both")):
        with pytest.raises(ValueError, match=says):
            make(tmp_path, **kw)
    with pytest.raises(ValueError, match="no such tile"):
        simulate_tile(tmp_path, TINY, tile="MINI_150.00_2.00")
    with pytest.raises(KeyError, match="no filter"):
        make(tmp_path, filters=["nope"])


def test_cli(tmp_path: Path) -> None:
    runner = CliRunner()
    result = runner.invoke(app, ["simulate", "tile", "--help"])
    assert result.exit_code == 0
    for option in ("--tile", "--ra", "--dither", "--exposures", "--preset", "--nights"):
        assert option in result.output
    name = "MINI_149.98_2.00"
    result = runner.invoke(app, ["simulate", "tile", "--out", str(tmp_path / "t"), "--tile",
                                 name, "--nights", "1", "--exposures", "2", "--seed", "5",
                                 "--preset", "tiny", "--no-trail"])
    assert result.exit_code == 0, result.output
    truth = load_tile_truth(tmp_path / "t")
    t = sky_tile(name)
    assert truth["tile"] == {"name": name, "field": name, "ra": t.ra, "dec": t.dec,
                             "size": t.size}
    assert len(truth["exposures"]) == 2 and truth["trail"] is None
    centres = [(e["pointing"]["ra"], e["pointing"]["dec"]) for e in truth["exposures"]]
    assert all(abs(d - t.dec) * 3600 <= 25.0 + 1e-6 for _, d in centres)
    for args, says in ((["--ra", "150"], "--ra and --dec"),
                       (["--tile", name, "--ra", "150", "--dec", "2"], "--ra and --dec"),
                       (["--tile", "MINI_1_2"], "bad tile name"),
                       (["--ra", "150", "--dec", "2", "--filters", "x"], "no filter")):
        result = runner.invoke(app, ["simulate", "tile", "--out", str(tmp_path / "bad"),
                                     *args])
        assert result.exit_code == 2, (args, result.output)
        assert says in " ".join(result.output.split()), (args, result.output)


def test_seeds_differ(tmp_path: Path) -> None:
    a = make(tmp_path / "a", nights=1, exposures=1, plan=dataclasses.replace(PLAN, n_bias=1))
    b = simulate_tile(tmp_path / "b", TINY, SEED + 1, ra=CENTRE[0], dec=CENTRE[1], nights=1,
                      exposures=1, plan=dataclasses.replace(PLAN, n_bias=1))
    assert a["stars"] != b["stars"] and a["exposures"][0]["dither_arcsec"] != b["exposures"][
        0]["dither_arcsec"]
