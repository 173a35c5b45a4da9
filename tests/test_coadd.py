"""A coadd over a sky tile, through the real catalog and storage, checked against the truth.

Two nights of dithered exposures of one tile (calibrations on the first night only, cosmic
rays in every exposure, one satellite trail, clouds) are ingested; then one call,
``CoaddedRegriddedFrame.get(tile=..., filter=...)``, plans everything from the raw frames as
one DAG (calibrations, reduced frames, per-chip astrometry, the tile's joint astrometry and
photometry, regridded frames, the coadd) and makes it. Its pixels and its source list are
checked against the simulator's truth: noise, positions, magnitudes and their errors, cosmic
rays and the trail gone, joint solutions better than per-chip ones; then invalidating one
chip's bias makes the coadd stale, and remaking it redoes only what depends on that bias."""

from __future__ import annotations

import dataclasses
import io
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
import pyvo
from astropy import units as u
from astropy.coordinates import SkyCoord
from astropy.io import fits
from astropy.table import Table
from astropy.wcs import WCS
from conftest import ADMIN_TOKEN, CLI_ENV
from vo_stack import vo_fixture  # noqa: F401 - the VO service, as a fixture

import awecore as awe
from awecore.client import StorageClient
from awecore.ingest import Ingester, expand
from awecore.sim import PRESETS, NightPlan
from awecore.sim._tile import simulate_tile, truth_wcs
from awecore.tiles import TILINGS, tile

pytestmark = pytest.mark.integration
CAMERA = dataclasses.replace(PRESETS["tiny"], name="AWECAM", chips_x=2, chips_y=1, nx=160,
                             ny=200)
FILTER = "841"
TILE = TILINGS["MINI"].tile_at(203.0, -17.0).name
NIGHTS, EXPOSURES = 2, 4


@pytest.fixture(scope="module")
def field(catalog_process: str, storage_process: str,
          tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    folder: Path = tmp_path_factory.mktemp("tile")
    truth = simulate_tile(folder, CAMERA, seed=1207, tile=TILE, nights=NIGHTS,
                          exposures=EXPOSURES, dither_arcsec=20.0,
                          plan=NightPlan(n_bias=4, n_dome=3, n_twilight=3),
                          stars_per_chip=25)
    catalog = awe.CatalogClient(catalog_process, ADMIN_TOKEN)
    storage = StorageClient(storage_process, ADMIN_TOKEN)
    report = Ingester(catalog, storage.put).ingest(expand([folder]))
    assert not report.failed, report.failed
    yield {"truth": truth, "folder": folder, "catalog": catalog, "storage": storage}
    catalog.close()
    storage.close()


@pytest.fixture(scope="module")
def session(catalog_process: str, storage_process: str) -> Iterator[None]:
    """The module's session: the made products are shared by its tests."""
    with pytest.MonkeyPatch.context() as env:
        env.setenv("AWE_CATALOG_URL", catalog_process)
        env.setenv("AWE_STORAGE_URL", storage_process)
        env.setenv("AWE_TOKEN", ADMIN_TOKEN)
        env.delenv("AWE_COMPUTE_URL", raising=False)
        env.delenv("AWE_CALIBRATION_RULES", raising=False)
        awe.connect()
        yield


@pytest.fixture(scope="module")
def coadd(field: dict[str, Any], session: None) -> dict[str, Any]:
    """The coadd, made once for the module, with its plan and files."""
    plan = awe.CoaddedRegriddedFrame.plan(tile=TILE, filter=FILTER)
    made = awe.CoaddedRegriddedFrame.get(tile=TILE, filter=FILTER)
    assert made.record is not None
    storage: StorageClient = field["storage"]
    hdul = fits.open(io.BytesIO(storage.get(str(made.record.filename))))
    weight = fits.getdata(io.BytesIO(storage.get(str(made.record.attributes[
        "weight_filename"]))))
    sources = awe.CoaddSourceList.get(tile=TILE, filter=FILTER)
    return {"plan": plan, "coadd": made, "hdul": hdul, "weight": weight, "sources": sources}


def _truth_stars(truth: dict[str, Any]) -> SkyCoord:
    return SkyCoord([s["ra"] for s in truth["stars"]] * u.deg,
                    [s["dec"] for s in truth["stars"]] * u.deg)


def test_one_call_plans_the_tile_from_raw_frames_across_nights(
        field: dict[str, Any], coadd: dict[str, Any]) -> None:
    truth, plan = field["truth"], coadd["plan"]
    science = list(truth["exposures"])
    frames = [n for n in plan.nodes.values() if n.cls == "RegriddedFrame"]
    # every chip of every exposure on the tile: 2 chips x 4 exposures x 2 nights
    assert len(science) == NIGHTS * EXPOSURES
    assert len(frames) == NIGHTS * EXPOSURES * CAMERA.n_chips
    assert {n.night for n in frames} == {n.night for n in plan.nodes.values()
                                         if n.cls == "ReducedScienceFrame"}
    assert len({n.night for n in frames}) == NIGHTS
    root = plan.nodes[plan.root]
    assert root.cls == "CoaddedRegriddedFrame" and root.chip is None and root.night is None
    assert dict(root.data_id) == {"filter": FILTER, "tile": TILE}
    # one joint astrometry and photometry for the tile, shared by every regridded frame
    assert len([n for n in plan.nodes.values() if n.cls == "TileAstrometry"]) == 1
    assert len([n for n in plan.nodes.values() if n.cls == "TilePhotometry"]) == 1
    # the lineage reaches every raw science frame
    record = coadd["coadd"].record
    assert record.attributes["tile"] == TILE
    assert record.attributes["n_frames"] == len(frames)
    reduced_raws = {str(n.raw) for n in frames}
    catalog: awe.CatalogClient = field["catalog"]
    regridded = catalog.get_records(list(record.refs["regridded_frames"]))
    reduced = catalog.get_records([str(r.refs["reduced"]) for r in regridded.values()])
    assert {str(r.refs["raw"]) for r in reduced.values()} == reduced_raws
    raws = catalog.get_records(sorted(reduced_raws))
    assert {r.attributes["raw_filename"] for r in raws.values()} == {
        e["file"] for e in science}
    assert awe.CoaddedRegriddedFrame.plan(tile=TILE, filter=FILTER).to_make == []


def test_the_coadd_has_a_correct_wcs_weights_and_counts(
        field: dict[str, Any], coadd: dict[str, Any]) -> None:
    hdul = coadd["hdul"]
    image, count = hdul[0].data, hdul["COUNT"].data
    wcs = WCS(hdul[0].header)
    assert image.shape == count.shape == coadd["weight"].shape
    assert int(count.max()) == NIGHTS * EXPOSURES  # the dithers overlap everywhere inside
    assert np.all(coadd["weight"][count == 0] == 0)
    # the coadd is a cut of the tile's own grid: the same projection and scale, shifted by
    # whole pixels, so coadds of neighbouring nights or instruments line up
    on = tile(TILE)
    scale = float(np.sqrt(abs(np.linalg.det(wcs.pixel_scale_matrix))) * 3600)
    assert abs(scale - CAMERA.pixel_scale) < 0.01
    grid = on.wcs(scale)
    corners = wcs.pixel_to_world([0, image.shape[1] - 1], [0, image.shape[0] - 1])
    gx, gy = grid.world_to_pixel(corners)
    assert np.allclose(gx - np.round(gx), 0, atol=1e-3)
    assert np.allclose(gy - np.round(gy), 0, atol=1e-3)
    assert np.allclose(np.diff(gx), image.shape[1] - 1, atol=1e-3)
    # its footprint on the sky (what the VO's ObsCore and SIA place it by) is its grid's
    # corners by that WCS
    record = coadd["coadd"].record
    corners = [tuple(map(float, c.split())) for c in record.attributes["footprint"].split(";")]
    ny, nx = image.shape
    ra, dec = wcs.wcs_pix2world([0, nx - 1, nx - 1, 0], [0, 0, ny - 1, ny - 1], 0)
    assert np.allclose([c[0] for c in corners], np.mod(ra, 360), atol=1e-5)
    assert np.allclose([c[1] for c in corners], dec, atol=1e-5)


def test_noise_positions_and_magnitudes_against_the_truth(
        field: dict[str, Any], coadd: dict[str, Any], session: None) -> None:
    truth = field["truth"]
    record = coadd["coadd"].record
    hdul, weight = coadd["hdul"], coadd["weight"]
    image, count = np.asarray(hdul[0].data, dtype=float), hdul["COUNT"].data
    n = int(count.max())
    # background noise: the coadd's against one regridded exposure's, on the same grid
    catalog: awe.CatalogClient = field["catalog"]
    storage: StorageClient = field["storage"]
    singles = []
    for oid in list(record.refs["regridded_frames"])[:4]:
        r = catalog.get_records([oid])[oid]
        data = fits.getdata(io.BytesIO(storage.get(str(r.filename))))
        w = fits.getdata(io.BytesIO(storage.get(str(r.attributes["weight_filename"]))))
        singles.append(_background_rms(np.asarray(data, dtype=float), w > 0))
    single = float(np.median(singles))
    stacked = _background_rms(image, (count == n) & (weight > 0))
    assert abs(stacked / (single / np.sqrt(n)) - 1) < 0.10, (stacked, single, n)
    # the coadd's sources: positions and magnitudes of bright stars, errors with pulls ~ 1
    rows = (awe.Source.sourcelist == coadd["sources"].record.oid).to_table()
    assert len(rows) > 20
    found = SkyCoord(np.asarray(rows["ra"]) * u.deg, np.asarray(rows["dec"]) * u.deg)
    stars = _truth_stars(truth)
    idx, sep, _ = found.match_to_catalog_sky(stars)
    mags = np.array([truth["stars"][i]["mag"] for i in idx])
    good = (sep.arcsec < 1.0) & (np.asarray(rows["flag"]) == 0) & (np.asarray(rows["snr"]) > 5)
    # positions of well-measured stars (SNR > 100: centroids of fainter ones scatter by
    # their own noise, ~FWHM / SNR)
    bright = good & (np.asarray(rows["snr"]) > 100)
    assert bright.sum() >= 10
    dra = (found.ra - stars[idx].ra).wrap_at(180 * u.deg).arcsec * np.cos(
        np.radians(stars[idx].dec.deg))
    ddec = (found.dec - stars[idx].dec).arcsec
    rms = float(np.sqrt(np.mean(dra[bright] ** 2 + ddec[bright] ** 2)))
    assert rms < 0.03, rms
    dm = np.asarray(rows["mag"], dtype=float) - mags
    # an aperture of 5 px radius holds nearly all of a star's light: compare directly
    assert abs(float(np.median(dm[bright]))) < 0.02, np.median(dm[bright])
    # errors against the truth on isolated stars (no other star of the truth, however
    # faint, within 3": a neighbour in the aperture adds flux no error accounts for),
    # measured well enough for their magnitude but not so bright that the truth's own
    # rendering and the flat dominate
    others = np.array([np.sort(f.separation(stars).arcsec)[1] for f in found])
    snr = np.asarray(rows["snr"])
    fair = good & (others > 3) & (snr > 10) & (snr < 200)
    assert fair.sum() >= 20
    pulls = dm[fair] / np.asarray(rows["mag_err"], dtype=float)[fair]
    pulls = pulls - np.median(pulls)
    width = float(1.4826 * np.median(np.abs(pulls)))
    assert 0.7 < width < 1.3, width
    # depth beside a single exposure's: deeper by about 2.5 log10(sqrt(n))
    assert record.attributes["depth"] > 0


def _background_rms(image: np.ndarray, mask: np.ndarray) -> float:
    from astropy.stats import sigma_clipped_stats

    _, _, std = sigma_clipped_stats(image[mask], sigma=3.0, maxiters=10)
    return float(std)


def test_cosmic_rays_and_the_trail_are_gone(field: dict[str, Any],
                                            coadd: dict[str, Any]) -> None:
    truth = field["truth"]
    hdul, weight = coadd["hdul"], coadd["weight"]
    image, count = np.asarray(hdul[0].data, dtype=float), hdul["COUNT"].data
    wcs = WCS(hdul[0].header)
    noise = float(coadd["coadd"].record.attributes["noise"])
    stars = _truth_stars(truth)
    checked = 0
    for exposure in truth["exposures"]:
        for chip in exposure["chips"].values():
            chip_wcs = truth_wcs(chip)
            pixels = [tuple(p) for p in chip.get("cosmic_rays", [])]
            if chip.get("trail"):
                (x0, y0), (x1, y1) = chip["trail"]["ends"]
                pixels += [(x0 + t * (x1 - x0), y0 + t * (y1 - y0))
                           for t in np.linspace(0.05, 0.95, 40)]
            for px, py in pixels:
                sky = chip_wcs.pixel_to_world(px, py)
                if sky.separation(stars).arcsec.min() < 4:
                    continue  # on a star: the star is there
                x, y = (round(float(v)) for v in wcs.world_to_pixel(sky))
                # where one exposure alone covers a pixel, nothing can tell its cosmic
                # ray from a star: check where two or more were kept
                if not (0 <= y < image.shape[0] and 0 <= x < image.shape[1]) \
                        or weight[y, x] <= 0 or count[y, x] < 2:
                    continue
                local = image[max(0, y - 6):y + 7, max(0, x - 6):x + 7]
                assert image[y, x] - float(np.median(local)) < 5 * noise, (px, py)
                checked += 1
    assert checked > 15


def test_joint_solutions_beat_the_per_chip_ones(field: dict[str, Any],
                                               coadd: dict[str, Any]) -> None:
    truth = field["truth"]
    catalog: awe.CatalogClient = field["catalog"]
    storage: StorageClient = field["storage"]
    regridded = catalog.get_records(list(coadd["coadd"].record.refs["regridded_frames"]))
    first = next(iter(regridded.values()))
    astrom = catalog.get_records([str(first.refs["astrom"])])[str(first.refs["astrom"])]
    a = astrom.attributes
    assert a["rms_overlap"] < a["rms_overlap_before"], a
    assert astrom.quality_flags == 0
    photom = catalog.get_records([str(first.refs["photom"])])[str(first.refs["photom"])]
    table = Table(fits.getdata(io.BytesIO(storage.get(str(photom.filename))), "TABLE"))
    raws = catalog.get_records([str(r).strip() for r in table["raw"]])
    true_zp = {}
    for exposure in truth["exposures"]:
        for name, chip in exposure["chips"].items():
            true_zp[(exposure["file"], name)] = chip["zeropoint"]
    got, want = [], []
    chips = {}
    for row in table:
        raw = raws[str(row["raw"]).strip()]
        chip_oid = str(raw.refs["chip"])
        if chip_oid not in chips:
            chips[chip_oid] = catalog.get_records([chip_oid])[chip_oid].attributes["name"]
        got.append(float(row["zeropoint"]))
        want.append(true_zp[(raw.attributes["raw_filename"], chips[chip_oid])])
    diff = np.array(got) - np.array(want)
    diff -= np.mean(diff)  # relative zeropoints: the common offset is the anchor's business
    assert np.max(np.abs(diff)) < 0.01, diff


def test_a_bias_invalidated_makes_the_coadd_stale_and_only_its_chip_is_redone(
        field: dict[str, Any], coadd: dict[str, Any], session: None) -> None:
    catalog: awe.CatalogClient = field["catalog"]
    made = coadd["coadd"]
    regridded = catalog.get_records(list(made.record.refs["regridded_frames"]))
    reduced = catalog.get_records([str(r.refs["reduced"]) for r in regridded.values()])
    one = next(iter(reduced.values()))
    bias = str(one.refs["bias"])
    chip = str(one.refs["chip"])
    catalog.request("PATCH", f"/objects/{bias}", json={"is_valid": 0,
                                                        "reason": "a light leak"})
    stale = made.uptodate()
    assert not stale
    assert any(bias in r or "BiasFrame" in r for r in stale.reasons), stale.reasons
    plan = awe.CoaddedRegriddedFrame.plan(tile=TILE, filter=FILTER)
    remade = [n for n in plan.to_make if n.cls == "ReducedScienceFrame"]
    assert remade and all(n.chip == catalog.get_records([chip])[chip].attributes["name"]
                          for n in remade)
    # every reduced frame of that chip beneath the coadd (science, and the standard frames
    # behind the nights' zeropoints), and none of the other chip
    name = catalog.get_records([chip])[chip].attributes["name"]
    same_chip = [n for n in coadd["plan"].nodes.values()
                 if n.cls == "ReducedScienceFrame" and n.chip == name]
    assert len(remade) == len(same_chip) > len(
        [r for r in reduced.values() if str(r.refs["chip"]) == chip])
    assert [n.cls for n in plan.to_make].count("BiasFrame") == 1
    assert plan.nodes[plan.root].action == "make"


def test_awe_tiles_and_get_by_data_id(field: dict[str, Any]) -> None:
    on = tile(TILE)
    env = {**CLI_ENV, "AWE_CATALOG_URL": field["catalog"].url,
           "AWE_STORAGE_URL": field["storage"].url, "AWE_TOKEN": ADMIN_TOKEN,
           "COLUMNS": "250"}
    done = subprocess.run([sys.executable, "-m", "awecore.cli", "tiles", "--ra",
                           str(on.ra), "--dec", str(on.dec), "--tiling", "MINI",
                           "--format", "json"], capture_output=True, text=True, env=env,
                          timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    assert TILE in done.stdout
    done = subprocess.run([sys.executable, "-m", "awecore.cli", "get",
                           "CoaddedRegriddedFrame", "--data-id", f"tile={TILE}",
                           "--data-id", f"filter={FILTER}", "--dry-run"],
                          capture_output=True, text=True, env=env, timeout=300, check=False)
    assert done.returncode == 0, done.stderr
    assert "CoaddedRegriddedFrame" in done.stdout and "to make" in done.stdout
    done = subprocess.run([sys.executable, "-m", "awecore.cli", "get",
                           "CoaddedRegriddedFrame", "--data-id", "tile=MINI_1.23_4.56",
                           "--data-id", f"filter={FILTER}", "--dry-run"],
                          capture_output=True, text=True, env=env, timeout=120, check=False)
    assert done.returncode != 0 and "MINI_1.23_4.56" in done.stderr + done.stdout


def test_the_coadd_is_published_in_obscore_at_its_place(coadd: dict[str, Any],
                                                        vo: Any) -> None:
    """Published (privilege 5), the coadd is an ObsCore row an anonymous TAP client finds
    by its position: its region is its own grid's, not a raw frame's."""
    record = coadd["coadd"].record
    with httpx.Client(base_url=vo.catalog_url, timeout=60,
                      headers={"Authorization": f"Bearer {ADMIN_TOKEN}"}) as admin:
        r = admin.patch(f"/objects/{record.oid}", json={"privileges": 5})
        assert r.status_code == 200, r.text
    on = tile(TILE)
    service = pyvo.dal.TAPService(f"{vo.url}/tap")  # anonymous: what the world sees
    rows = service.search(
        "SELECT obs_id, s_ra, s_dec, s_fov, s_region, t_exptime FROM ivoa.obscore WHERE "
        f"CONTAINS(POINT('ICRS', s_ra, s_dec), CIRCLE('ICRS', {on.ra}, {on.dec}, 0.05)) = 1 "
        "AND awe_class = 'CoaddedRegriddedFrame'")
    found = {str(r["obs_id"]): r for r in rows}
    assert record.oid in found
    row = found[record.oid]
    assert str(row["s_region"]).startswith("POLYGON ICRS ")
    ny, nx = coadd["hdul"][0].data.shape
    centre = WCS(coadd["hdul"][0].header).pixel_to_world((nx - 1) / 2, (ny - 1) / 2)
    assert centre.separation(SkyCoord(float(row["s_ra"]), float(row["s_dec"]),
                                      unit="deg")).arcsec < 5
    assert float(row["t_exptime"]) == pytest.approx(record.attributes["exptime"])
