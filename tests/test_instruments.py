"""Real instruments' conventions, end to end: an OmegaCAM-shaped night (ESO HIERARCH keywords,
``ESO_CCD_#65`` chips, uint16 with BZERO, a 32-column overscan at the right) and a camera with
NOAO-like conventions (chips ``CCD 1/A``, an instrument ``WFC/INT 2`` and a filter ``r 50%``,
a 24-column prescan on the left, gain in ``EGAIN``) are ingested and processed to source lists
through the compute service, then every chip is checked against the simulator's truth and
every product file against its catalogue object (``AWEOID``, size, sha256: ``awe verify``)."""

from __future__ import annotations

import datetime as dt
import io
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
from asgi_lifespan import LifespanManager
from astropy.io import fits
from conftest import ADMIN_TOKEN, CLI_ENV
from pydantic import SecretStr
from test_compute import finished, worker_env

import awecore as awe
from awe_compute.config import ComputeSettings
from awe_compute.main import create_app
from awecore.client import StorageClient
from awecore.ingest import Ingester, expand
from awecore.pipelines import QC, parse_section, wcs_from_attributes
from awecore.query import And, Between, Compare, QuerySpec
from awecore.sim import PRESETS, NightPlan, simulate_night, true_wcs
from awecore.stack import Broker, PostgresServer, ServiceProcess
from awecore.targets import plan

pytestmark = pytest.mark.integration

#: instrument preset -> (night, the filter processed)
CASES = {"omegacam-small": (dt.date(2008, 8, 8), "r_SDSS"),
         "widecam": (dt.date(2009, 9, 9), "r 50%")}
#: from an object of a class to the moment that places it in a night
NIGHT_PATHS = {"RawFrame": ("date_obs",), "ReducedScienceFrame": ("raw", "date_obs"),
               "AstrometricParameters": ("reduced", "raw", "date_obs"),
               "SourceList": ("frame", "raw", "date_obs")}
PLAN = NightPlan(n_bias=4, n_dome=3, n_twilight=3, science_fields=1, exposures_per_field=1,
                 stars_per_chip=150)


class Night:
    """One instrument's night: simulated, ingested, and its source lists made by compute."""

    def __init__(self, preset: str, truth: dict[str, Any], folder: Path,
                 catalog: awe.CatalogClient, storage: StorageClient) -> None:
        self.preset = preset
        self.date, self.filter = CASES[preset]
        self.truth = truth
        self.folder = folder
        self.catalog = catalog
        self.storage = storage
        self.inst = PRESETS[preset]

    def query(self, cls: str, *conds: Any) -> list[awe.ObjectOut]:
        spec = QuerySpec(cls=cls, where=And(items=tuple(conds)) if len(conds) > 1 else
                         conds[0])
        return [o.record for o in self.catalog.iter_query(spec) if o.record]

    def window(self) -> tuple[str, str]:
        start = dt.datetime.combine(self.date, dt.time(12), dt.UTC)
        return start.isoformat(), (start + dt.timedelta(days=1)).isoformat()

    def of_chip(self, cls: str, chip: str) -> list[awe.ObjectOut]:
        """Objects of a chip made from this night's raw frames (other tests use the same
        chip names on other nights)."""
        low, high = self.window()
        chip_is = Compare(op="eq", path=("chip", "name"), value=chip)
        if cls not in NIGHT_PATHS:  # a calibration: its window covers the middle of the night
            middle = (dt.datetime.fromisoformat(low) + dt.timedelta(hours=12)).isoformat()
            return self.query(cls, chip_is,
                              Compare(op="le", path=("timestamp_start",), value=middle),
                              Compare(op="ge", path=("timestamp_end",), value=middle))
        return self.query(cls, chip_is, Between(path=NIGHT_PATHS[cls], low=low, high=high))

    def header(self, raw: awe.ObjectOut) -> fits.Header:
        assert raw.filename is not None
        return fits.getheader(io.BytesIO(self.storage.get(raw.filename)))


@pytest.fixture(scope="module", params=sorted(CASES))
async def night(request: pytest.FixtureRequest, postgres: PostgresServer, broker: Broker,
                catalog_process: str, storage_process: str,
                tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Night]:
    preset: str = request.param
    date, filt = CASES[preset]
    folder = tmp_path_factory.mktemp(f"night-{preset}")
    truth = simulate_night(folder, PRESETS[preset], seed=8, date=date, plan=PLAN)
    catalog = awe.CatalogClient(catalog_process, ADMIN_TOKEN)
    storage = StorageClient(storage_process, ADMIN_TOKEN)
    report = Ingester(catalog, storage.put).ingest(expand([folder]))
    assert not report.failed, report.failed
    settings = ComputeSettings(  # a site of its own: its own jobs topic and worker group
        site=f"test-{preset}", database_url=SecretStr(postgres.create_database(
            f"awe_compute_{preset.replace('-', '_')}")),
        catalog_url=catalog_process, storage_url=storage_process,
        service_token=SecretStr(ADMIN_TOKEN), kafka_bootstrap_servers=broker.bootstrap_servers,
        log_level="WARNING")
    logs = tmp_path_factory.mktemp(f"workers-{preset}")
    workers = [ServiceProcess(f"worker-{preset}-{i}", [sys.executable, "-m",
                                                       "awe_compute.worker"],
                              worker_env(settings), logs / f"worker{i}.log") for i in range(2)]
    for w in workers:
        w.start()
    it = Night(preset, truth, folder, catalog, storage)
    raws = it.query("RawScienceFrame", Compare(op="eq", path=("filter", "name"), value=filt))
    assert len(raws) == 2 * PRESETS[preset].n_chips  # a science field and a standard field
    targets = [{"cls": "SourceList", "date": date.isoformat(), "chip": str(
        catalog.get_records([str(r.refs["chip"])])[str(r.refs["chip"])].attributes["name"]),
        "filter": filt, "raw": r.oid} for r in raws if r.type == "RawScienceFrame"]
    app = create_app(settings)
    try:
        async with LifespanManager(
                app, startup_timeout=120, shutdown_timeout=120) as manager, httpx.AsyncClient(
                transport=httpx.ASGITransport(app=manager.app),  # type: ignore[arg-type]
                base_url="http://compute",
                headers={"Authorization": f"Bearer {ADMIN_TOKEN}"}) as compute:
            r = await compute.post("/jobs/plan", json={"targets": targets})
            assert r.status_code == 201, r.text
            await finished(compute, [j["id"] for j in r.json()["jobs"]], seconds=600)
        yield it
    finally:
        for w in workers:
            w.stop()
        catalog.close()
        storage.close()


def test_raw_frames_record_overscan_and_trimmed_size(night: Night) -> None:
    for chip, t in night.truth["chips"].items():
        raws = night.of_chip("RawFrame", chip)
        assert raws, chip
        for raw in raws:
            a = raw.attributes
            assert (a["nx"], a["ny"]) == (night.inst.nx, night.inst.ny)
            assert raw.checksum and raw.file_size
            assert abs(float(a["overscan_level"]) - t["bias_level"]) < 0.5, (chip, a)
            data = parse_section(a["data_section"])
            assert data[1].start == night.inst.prescan_x


def test_calibrations_per_chip_against_the_truth(night: Night) -> None:
    for chip, t in night.truth["chips"].items():
        (bias,) = night.of_chip("BiasFrame", chip)
        assert bias.filename is not None
        pixels = fits.getdata(io.BytesIO(night.storage.get(bias.filename)))
        # on the trimmed image, the overscan level subtracted: what is left is the structure
        assert pixels.shape == (night.inst.ny, night.inst.nx)
        assert abs(float(np.median(pixels)) - t["bias_slope"] / 2) < 0.5, chip
        (hot,) = night.of_chip("HotPixelMap", chip)
        assert hot.filename is not None
        found = fits.getdata(io.BytesIO(night.storage.get(hot.filename))).astype(bool)
        true = np.zeros_like(found)
        true[tuple(np.array(t["hot_pixels"]).T)] = True
        hits = np.sum(found & true)
        assert hits / found.sum() >= 0.99 and hits / true.sum() >= 0.99, chip
        for cls in ("ColdPixelMap", "ReducedScienceFrame"):
            for obj in night.of_chip(cls, chip):
                assert not obj.quality_flags & QC.MANY_BAD_PIXELS, (cls, chip)


def test_astrometry_and_zeropoint_per_chip(night: Night) -> None:
    zeropoint = night.truth["filters"][night.filter]["zeropoint"]
    exposures = {e["file"]: e for e in night.truth["exposures"]}
    for chip in night.truth["chips"]:
        solutions = night.of_chip("AstrometricParameters", chip)
        assert len(solutions) == 2  # the science and the standard frame
        for astrom in solutions:
            assert astrom.quality_flags == 0 and astrom.attributes["rms"] < 0.1, chip
            reduced = night.catalog.get_records([str(astrom.refs["reduced"])])
            raw_oid = str(next(iter(reduced.values())).refs["raw"])
            raw = night.catalog.get_records([raw_oid])[raw_oid]
            truth_wcs = true_wcs(night.header(raw),
                                 exposures[str(raw.attributes["raw_filename"])])
            truth_wcs.wcs.crpix[0] -= night.inst.prescan_x  # the trimmed image's columns
            fitted = wcs_from_attributes(astrom.attributes)
            xy = np.mgrid[0:night.inst.nx:32, 0:night.inst.ny:64].reshape(2, -1)
            assert fitted.pixel_to_world(*xy).separation(
                truth_wcs.pixel_to_world(*xy)).arcsec.max() < 0.15, chip
        (photom,) = night.of_chip("PhotometricParameters", chip)
        assert abs(float(photom.attributes["zeropoint"]) - zeropoint) < 0.03, chip
        (sources,) = night.of_chip("SourceList", chip)
        assert sources.attributes["number_of_sources"] > 10
        assert sources.attributes["inherited_flags"] == 0 and sources.quality_flags == 0
        # the seeing the QC page plots: the stars' FWHM, as simulated
        assert sources.attributes["seeing"] == pytest.approx(
            night.truth["seeing_fwhm_arcsec"], rel=0.15), chip


def test_every_product_file_holds_its_own_object(night: Night) -> None:
    products = [p for chip in night.truth["chips"] for cls in (
        "BiasFrame", "HotPixelMap", "DomeFlatFrame", "ColdPixelMap", "TwilightFlatFrame",
        "MasterFlatFrame", "ReducedScienceFrame") for p in night.of_chip(cls, chip)]
    assert len(products) >= 8 * len(night.truth["chips"])
    names = set()
    for obj in products:
        if obj.filename is None:
            continue
        names.add(obj.filename)
        data = night.storage.get(obj.filename)
        assert len(data) == obj.file_size and obj.checksum
        assert fits.getheader(io.BytesIO(data))["AWEOID"] == obj.oid
    assert len(names) == len([o for o in products if o.filename])  # no two share a file
    low, high = night.window()
    done = subprocess.run([sys.executable, "-m", "awecore.cli", "verify", "--class",
                           "ReducedScienceFrame", "--where",
                           f"ReducedScienceFrame.raw.date_obs.between('{low}', '{high}')"],
                          env={**CLI_ENV, "AWE_CATALOG_URL": night.catalog.url,
                               "AWE_STORAGE_URL": night.storage.url, "AWE_TOKEN": ADMIN_TOKEN},
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"{2 * len(night.truth['chips'])} ReducedScienceFrame objects" in done.stdout


def test_unknown_chip_or_filter_lists_what_exists(night: Night) -> None:
    chips = sorted(night.truth["chips"])
    with pytest.raises(awe.NotFound, match="no chip 'ESO_CCD_#99'; known: .*" + chips[0][:5]):
        plan("HotPixelMap", night.date, "ESO_CCD_#99", catalog=night.catalog)
    with pytest.raises(awe.NotFound, match="no filter 'z_SDSS'; known: "):
        plan("DomeFlatFrame", night.date, chips[0], "z_SDSS",
                         catalog=night.catalog)
    with pytest.raises(awe.InvalidRequest, match="expected the night as YYYY-MM-DD"):
        plan("HotPixelMap", "14-02-2003", chips[0], catalog=night.catalog)
