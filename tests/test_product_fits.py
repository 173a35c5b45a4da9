"""Product files that stand on their own, and data in one step, through the real catalog
and storage.

One night of two dithered exposures of a small camera on one sky tile is ingested and its
coadd made (``CoaddedRegriddedFrame.get``: calibrations, reduced frames, astrometry, the
regridded frames, the coadd). Then the files' headers are checked against the raw frames
they came from: a reduced frame, a bias and the coadd carry a celestial WCS that agrees with
the raw header's pointing, the raw frame's observing keywords, units, zeropoints and their
inputs' ids as the catalogue records them. And the data is reached in one step:
``awe download``, ``obj.hdul()``, ``obj.data``, ``AstrometricParameters.wcs``,
``Source.cone(SkyCoord, Quantity)`` and ``awe query --format votable|fits|csv|json``."""

from __future__ import annotations

import csv
import dataclasses
import datetime as dt
import hashlib
import io
import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from astropy import units as u
from astropy.io import fits
from astropy.io.votable import parse
from astropy.table import Table
from astropy.time import Time
from astropy.wcs import WCS
from conftest import ADMIN_TOKEN, CLI_ENV

import awecore as awe
from awecore.client import StorageClient
from awecore.ingest import Ingester, expand
from awecore.records import ObjectOut
from awecore.sim import PRESETS, NightPlan, simulate_night
from awecore.sim._tile import simulate_tile
from awecore.tiles import TILINGS

pytestmark = pytest.mark.integration
CAMERA = dataclasses.replace(PRESETS["tiny"], name="AWECAM", chips_x=2, chips_y=1, nx=128,
                             ny=160)
FILTER = "841"
#: a tile and nights of its own: no other test's frames fall on it
TILE = TILINGS["MINI"].tile_at(211.0, -23.0).name
START = "2006-04-21"
DESCRIPTIVE = {"chip", "filter", "instrument"}


@pytest.fixture(scope="module")
def field(catalog_process: str, storage_process: str,
          tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    folder: Path = tmp_path_factory.mktemp("fits")
    truth = simulate_tile(folder, CAMERA, seed=4242, tile=TILE, nights=1, exposures=2,
                          dither_arcsec=15.0, plan=NightPlan(n_bias=3, n_dome=2, n_twilight=2),
                          stars_per_chip=25, cosmics=False, trail=False,
                          start=dt.date.fromisoformat(START))
    catalog = awe.CatalogClient(catalog_process, ADMIN_TOKEN)
    storage = StorageClient(storage_process, ADMIN_TOKEN)
    report = Ingester(catalog, storage.put).ingest(expand([folder]))
    assert not report.failed, report.failed
    yield {"truth": truth, "catalog": catalog, "storage": storage,
           "urls": {"AWE_CATALOG_URL": catalog_process, "AWE_STORAGE_URL": storage_process}}
    catalog.close()
    storage.close()


@pytest.fixture(scope="module")
def made(field: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """The coadd and what it was made from, once for the module; the session is the
    default one, with storage, as after ``awe.connect()`` with ``awe up``'s settings."""
    with pytest.MonkeyPatch.context() as env:
        for key, value in field["urls"].items():
            env.setenv(key, value)
        env.setenv("AWE_TOKEN", ADMIN_TOKEN)
        env.delenv("AWE_COMPUTE_URL", raising=False)
        env.delenv("AWE_LINEAGE_URL", raising=False)
        env.delenv("AWE_CALIBRATION_RULES", raising=False)
        awe.connect()
        coadd = awe.CoaddedRegriddedFrame.get(tile=TILE, filter=FILTER)
        catalog: awe.CatalogClient = field["catalog"]
        assert coadd.record is not None
        regridded = catalog.get_records(list(coadd.record.refs["regridded_frames"]))
        reduced = catalog.get_records([str(r.refs["reduced"]) for r in regridded.values()])
        raws = catalog.get_records([str(r.refs["raw"]) for r in reduced.values()])
        first = sorted(reduced.values(), key=lambda r: r.oid)[0]
        bias = catalog.get_records([str(first.refs["bias"])])[str(first.refs["bias"])]
        yield {"coadd": coadd, "regridded": regridded, "reduced": reduced, "raws": raws,
               "frame": first, "raw": raws[str(first.refs["raw"])], "bias": bias}


def stored(field: dict[str, Any], name: str | None) -> bytes:
    assert name
    data: bytes = field["storage"].get(name)
    return data


def header_of(field: dict[str, Any], record: ObjectOut) -> fits.Header:
    return fits.getheader(io.BytesIO(stored(field, record.filename)))


def inputs_of(header: fits.Header) -> list[str]:
    """The input oids a product's header names (AWEIN001, AWEIN002, ...)."""
    n = int(header["AWENIN"])
    return [str(header[f"AWEIN{i:03d}"]) for i in range(1, n + 1)]


def recorded_inputs(record: ObjectOut) -> list[str]:
    return sorted(o for name, value in record.refs.items() if name not in DESCRIPTIVE
                  for o in (value if isinstance(value, list) else [value]))


def same_time(a: str, b: str) -> bool:
    return abs((Time(a, scale="utc") - Time(b, scale="utc")).to_value(u.s)) < 1e-3


def provenance_is_the_records(header: fits.Header, record: ObjectOut) -> None:
    assert header["AWEOID"] == record.oid and header["AWETYPE"] == record.type
    assert header["AWEVERS"] == record.software_version
    assert sorted(inputs_of(header)) == recorded_inputs(record)
    if record.process_params:
        assert json.loads(header["AWEPARS"]) == record.process_params


# -- the headers ------------------------------------------------------------------------
def test_a_reduced_frame_is_on_the_sky_with_its_raw_frames_keywords(
        field: dict[str, Any], made: dict[str, Any]) -> None:
    frame, raw = made["frame"], made["raw"]
    header = header_of(field, frame)
    raw_header = header_of(field, raw)
    wcs = WCS(header)
    assert wcs.has_celestial and wcs.celestial.naxis == 2
    assert header["AWEWCS"] == "raw"
    # pixel (0, 0) of the trimmed image is pixel (0, 0) of the raw data section
    assert raw.attributes.get("data_section") in (None, f"[1:{CAMERA.nx},1:{CAMERA.ny}]")
    here = wcs.pixel_to_world(0, 0)
    there = WCS(raw_header).celestial.pixel_to_world(0, 0)
    assert here.separation(there).arcsec < 5
    # the observing keywords are the raw frame's, under their standard names
    assert same_time(header["DATE-OBS"], raw_header["DATE-OBS"])
    assert abs(header["MJD-OBS"] - Time(raw_header["DATE-OBS"]).mjd) < 1e-6
    assert header["EXPTIME"] == raw_header["EXPTIME"]
    assert header["FILTER"] == raw_header["FILTER"] == FILTER
    assert header["OBJECT"] == raw_header["OBJECT"]
    assert header["INSTRUME"] == raw_header["INSTRUME"] == "AWECAM"
    assert header["AIRMASS"] == pytest.approx(raw_header["AIRMASS"])
    assert header["GAIN"] == pytest.approx(raw_header["GAIN"])
    assert header["BUNIT"] == "adu"
    provenance_is_the_records(header, frame)
    assert str(raw.oid) in inputs_of(header)
    # and its record says when and how long, as the raw frame's does
    assert same_time(str(frame.attributes["date_obs"]), str(raw.attributes["date_obs"]))
    assert frame.attributes["exptime"] == raw.attributes["exptime"]
    # the weight map is placed alike, but it is no flux
    weight = fits.getheader(io.BytesIO(stored(field, frame.attributes["weight_filename"])))
    assert weight["AWETYPE"] == "weight" and weight["AWEOID"] == frame.oid
    assert "BUNIT" not in weight and WCS(weight).has_celestial


def test_a_bias_carries_its_first_raw_frames_keywords_and_inputs(
        field: dict[str, Any], made: dict[str, Any]) -> None:
    bias = made["bias"]
    header = header_of(field, bias)
    catalog: awe.CatalogClient = field["catalog"]
    raws = catalog.get_records(list(bias.refs["raw_bias_frames"]))
    first = min(raws.values(), key=lambda r: str(r.attributes["date_obs"]))
    raw_header = header_of(field, first)
    assert same_time(header["DATE-OBS"], raw_header["DATE-OBS"])
    assert header["EXPTIME"] == raw_header["EXPTIME"]
    # a bias has no filter: the raw header's says NONE, and the product names none
    assert str(raw_header["FILTER"]).upper() == "NONE" and "FILTER" not in header
    assert header["INSTRUME"] == "AWECAM" and header["BUNIT"] == "adu"
    assert header["GAIN"] == pytest.approx(raw_header["GAIN"])
    provenance_is_the_records(header, bias)
    assert set(inputs_of(header)) >= set(bias.refs["raw_bias_frames"])
    assert int(header["AWENIN"]) == len(bias.refs["raw_bias_frames"]) + 1  # + read noise


def test_the_coadd_carries_the_tile_wcs_zeropoint_and_its_frames(
        field: dict[str, Any], made: dict[str, Any]) -> None:
    coadd: ObjectOut = made["coadd"].record
    hdul = fits.open(io.BytesIO(stored(field, coadd.filename)))
    header = hdul[0].header
    wcs = WCS(header)
    assert wcs.has_celestial and header["AWEWCS"] == "tile" and header["AWETILE"] == TILE
    assert WCS(hdul["COUNT"].header).has_celestial
    # each raw frame's pointing (its chip's centre by the raw header) lands on the coadd
    ny, nx = hdul[0].data.shape
    for raw in made["raws"].values():
        raw_wcs = WCS(header_of(field, raw)).celestial
        centre = raw_wcs.pixel_to_world((CAMERA.nx - 1) / 2, (CAMERA.ny - 1) / 2)
        x, y = wcs.world_to_pixel(centre)
        assert -0.5 < x < nx - 0.5 and -0.5 < y < ny - 0.5
        assert wcs.pixel_to_world(x, y).separation(centre).arcsec < 5
    assert header["MAGZP"] == header["PHOTZP"] == 30.0 and header["BUNIT"]
    raws = list(made["raws"].values())
    assert same_time(header["DATE-OBS"], min(str(r.attributes["date_obs"]) for r in raws))
    assert abs(header["MJD-OBS"] - Time(header["DATE-OBS"]).mjd) < 1e-6
    # said once, for the stack (not an input's, as a WCS copied from its header would)
    assert header.comments["DATE-OBS"].startswith("start of the (first) exposure")
    assert header["EXPTIME"] == pytest.approx(sum(float(r.attributes["exptime"])
                                                  for r in raws))
    assert header["FILTER"] == FILTER and header["INSTRUME"] == "AWECAM"
    assert header["OBJECT"] == TILE and "AIRMASS" not in header
    assert header["GAIN"] > 0
    provenance_is_the_records(header, coadd)
    assert sorted(inputs_of(header)) == sorted(coadd.refs["regridded_frames"])
    # a regridded frame: the tile's WCS too, and its own exposure's keywords
    one = next(iter(made["regridded"].values()))
    regridded = header_of(field, one)
    raw = made["raws"][str(made["reduced"][str(one.refs["reduced"])].refs["raw"])]
    assert WCS(regridded).has_celestial and regridded["MAGZP"] == 30.0
    assert same_time(regridded["DATE-OBS"], str(raw.attributes["date_obs"]))
    assert regridded["EXPTIME"] == raw.attributes["exptime"]
    assert regridded["AIRMASS"] == pytest.approx(raw.attributes["airmass"])


# -- data in one step ---------------------------------------------------------------------
def test_hdul_data_and_the_fitted_wcs_from_the_object(
        field: dict[str, Any], made: dict[str, Any]) -> None:
    frame = awe.current().get(made["frame"].oid)
    assert isinstance(frame, awe.ReducedScienceFrame)
    with frame.hdul() as hdul:
        assert hdul[0].header["AWEOID"] == frame.record.oid
    pixels = fits.getdata(io.BytesIO(stored(field, made["frame"].filename)))
    assert frame.data.shape == (CAMERA.ny, CAMERA.nx)
    assert np.array_equal(frame.data, pixels, equal_nan=True)
    coadd = made["coadd"]
    assert np.array_equal(coadd.data, fits.getdata(io.BytesIO(stored(
        field, coadd.record.filename))), equal_nan=True)
    # the fitted WCS of the frame: an astropy WCS, where the fit put the chip's centre
    astrom = next(a for a in awe.AstrometricParameters.select()
                  if a.record.refs["reduced"] == frame.record.oid)
    fitted = astrom.wcs
    assert isinstance(fitted, WCS) and fitted.has_celestial
    centre = np.array([CAMERA.nx, CAMERA.ny]) / 2
    moved = fitted.pixel_to_world(*centre).separation(
        WCS(frame.hdul()[0].header).pixel_to_world(*centre)).arcsec
    assert moved == pytest.approx(astrom.pointing_offset, abs=0.01)
    with pytest.raises(awe.InvalidRequest, match="not stored"):
        awe.ReducedScienceFrame().hdul()


def test_a_cone_takes_a_skycoord_and_an_angle(made: dict[str, Any]) -> None:
    awe.CoaddSourceList.get(tile=TILE, filter=FILTER)
    header = made["coadd"].hdul()[0].header
    ny, nx = made["coadd"].data.shape
    centre = WCS(header).pixel_to_world((nx - 1) / 2, (ny - 1) / 2)
    by_coord = awe.Source.cone(centre, 1 * u.arcmin)
    by_degrees = awe.Source.cone(float(centre.ra.deg), float(centre.dec.deg), 1 / 60)
    assert len(by_coord) > 5
    assert list(by_coord["sourcelist"]) == list(by_degrees["sourcelist"])
    assert list(by_coord["seq"]) == list(by_degrees["seq"])
    assert float(np.max(by_coord["distance"])) <= 1 / 60 + 1e-9
    galactic = awe.Source.cone(centre.galactic, radius=60 * u.arcsec)
    assert list(galactic["seq"]) == list(by_coord["seq"])
    with pytest.raises(awe.InvalidQuery, match="must be an angle"):
        awe.Source.cone(centre, 1 * u.m)


def awe_run(*args: str, urls: dict[str, str]) -> subprocess.CompletedProcess[bytes]:
    env = {**CLI_ENV, **urls, "AWE_TOKEN": ADMIN_TOKEN, "COLUMNS": "300"}
    return subprocess.run([sys.executable, "-m", "awecore.cli", *args], capture_output=True,
                          env=env, timeout=120, check=False)


def ok(r: subprocess.CompletedProcess[bytes]) -> bytes:
    assert r.returncode == 0, f"exit {r.returncode}\n{r.stdout!r}\n{r.stderr.decode()}"
    return r.stdout


def test_awe_download_writes_the_checked_file_and_its_weights(
        field: dict[str, Any], made: dict[str, Any], tmp_path: Path) -> None:
    frame: ObjectOut = made["frame"]
    out = ok(awe_run("download", frame.oid[:13], "--out", str(tmp_path / "got"),
                     urls=field["urls"])).decode().split()
    main, weight = (Path(p) for p in out)
    assert main == tmp_path / "got" / Path(str(frame.filename)).name
    data = main.read_bytes()
    assert hashlib.sha256(data).hexdigest() == frame.checksum
    assert data == stored(field, frame.filename)
    assert weight.read_bytes() == stored(field, frame.attributes["weight_filename"])
    assert fits.getheader(main)["AWEOID"] == frame.oid
    assert not list((tmp_path / "got").glob("*.part"))
    # an object without a file: one line saying so, exit code 1
    astrom = next(iter(awe.AstrometricParameters.select().limit(1)))
    refused = awe_run("download", astrom.record.oid, "--out", str(tmp_path),
                      urls=field["urls"])
    assert refused.returncode == 1 and b"has no file" in refused.stderr
    assert b"Traceback" not in refused.stderr


def test_awe_query_writes_votable_fits_csv_and_json(
        field: dict[str, Any], made: dict[str, Any]) -> None:
    expression = "ReducedScienceFrame.filter.name == '841'"
    columns = "oid,chip.name,date_obs,exptime,imstat.median,is_valid"
    n = len(made["reduced"])
    want = sorted(made["reduced"])

    def run(fmt: str) -> bytes:
        return ok(awe_run("query", expression, "--columns", columns, "--limit", "0",
                          "--format", fmt, urls=field["urls"]))

    votable = parse(io.BytesIO(run("votable")), verify="exception").get_first_table()
    table = votable.to_table()
    assert len(table) >= n and set(want) <= {str(o) for o in table["oid"]}
    assert table["exptime"].unit == u.s and table["imstat.median"].unit == u.adu
    assert votable.get_field_by_id_or_name("exptime").datatype == "double"
    fits_table = Table.read(io.BytesIO(run("fits")), format="fits")
    assert sorted(str(o) for o in fits_table["oid"]) == sorted(str(o) for o in table["oid"])
    assert fits_table["exptime"].unit == u.s
    rows = list(csv.DictReader(io.StringIO(run("csv").decode())))
    assert sorted(r["oid"] for r in rows) == sorted(str(o) for o in table["oid"])
    listed = json.loads(run("json"))
    assert sorted(r["oid"] for r in listed) == sorted(r["oid"] for r in rows)
    # the source table too: positions in degrees, strict VOTable
    sources = ok(awe_run("query", "Source.mag < 40", "--limit", "20", "--format", "votable",
                         urls=field["urls"]))
    found = parse(io.BytesIO(sources), verify="exception").get_first_table().to_table()
    assert 0 < len(found) <= 20 and found["ra"].unit == u.deg


# -- another camera's conventions ---------------------------------------------------------
WIDECAM = dataclasses.replace(PRESETS["widecam"], nx=96, ny=128)


def test_another_cameras_keywords_come_out_standard(
        field: dict[str, Any], made: dict[str, Any],
        tmp_path_factory: pytest.TempPathFactory) -> None:
    """A camera with NOAO-like headers (FILTER1, EGAIN, a sexagesimal RA, a 24-column prescan
    on the left): its reduced frame says the same things under the standard keywords, and
    its WCS is the raw one moved by the prescan."""
    folder = tmp_path_factory.mktemp("widecam")
    simulate_night(folder, WIDECAM, seed=77, date=dt.date(2009, 10, 20),
                   plan=NightPlan(n_bias=3, n_dome=2, n_twilight=2, science_fields=1,
                                  exposures_per_field=1, standard=False, stars_per_chip=10))
    report = Ingester(field["catalog"], field["storage"].put).ingest(expand([folder]))
    assert not report.failed, report.failed
    raw = next(r for r in awe.RawScienceFrame.select()
               if r.record.attributes.get("date_obs", "").startswith("2009-10-2")
               and r.chip.name == "CCD 1/A" and r.record.type == "RawScienceFrame")
    reduced = awe.ReducedScienceFrame.get("2009-10-20", "CCD 1/A", "r 50%", raw.record.oid)
    header = reduced.hdul()[0].header
    raw_header = raw.hdul()[0].header
    assert header["FILTER"] == raw_header["FILTER1"] == "r 50%"
    assert header["GAIN"] == pytest.approx(raw_header["EGAIN"])
    assert header["AIRMASS"] == pytest.approx(raw_header["AIRMASS"])
    assert header["INSTRUME"] == raw_header["INSTRUME"] == "WFC/INT 2"
    assert same_time(header["DATE-OBS"], raw_header["DATE-OBS"])
    # pixel (0, 0) of the reduced frame is the first column after the prescan
    assert raw.record.attributes["data_section"].startswith("[25:")
    here = WCS(header).pixel_to_world(0, 0)
    there = WCS(raw_header).celestial.pixel_to_world(24, 0)
    assert here.separation(there).arcsec < 0.01
    assert reduced.data.shape == (WIDECAM.ny, WIDECAM.nx)  # nx: the light-sensitive columns
