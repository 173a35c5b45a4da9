"""Target processing through the real services: plan, make, reuse, remake after invalidation."""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from astropy import units as u
from astropy.coordinates import SkyCoord
from conftest import ADMIN_TOKEN, CLI_ENV

import awecore as awe
from awecore.client import StorageClient
from awecore.ingest import Ingester, expand
from awecore.sim import PRESETS, NightPlan, simulate_night

pytestmark = pytest.mark.integration
NIGHT = dt.date(2006, 6, 6)
CAMERA = dataclasses.replace(PRESETS["tiny"], name="AWECAM", chips_x=2, chips_y=1, nx=160,
                             ny=200)


@pytest.fixture(scope="module")
def truth(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    folder: Path = tmp_path_factory.mktemp("targets-night")
    found = simulate_night(folder, CAMERA, seed=6, date=NIGHT,
                           plan=NightPlan(n_bias=4, n_dome=3, n_twilight=3, science_fields=1,
                                          exposures_per_field=1, stars_per_chip=200))
    found["folder"] = folder
    return found


@pytest.fixture(scope="module")
def night(catalog_process: str, storage_process: str,
          truth: dict[str, Any]) -> Iterator[awe.CatalogClient]:
    folder = truth["folder"]
    catalog = awe.CatalogClient(catalog_process, ADMIN_TOKEN)
    storage = StorageClient(storage_process, ADMIN_TOKEN)
    report = Ingester(catalog, storage.put).ingest(expand([folder]))
    assert not report.failed
    yield catalog
    catalog.close()


@pytest.fixture(autouse=True)
def session(catalog_process: str, storage_process: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWE_CATALOG_URL", catalog_process)
    monkeypatch.setenv("AWE_STORAGE_URL", storage_process)
    monkeypatch.setenv("AWE_TOKEN", ADMIN_TOKEN)
    awe.connect()


def raw_science(catalog: awe.CatalogClient, chip: str) -> str:
    q = (awe.RawScienceFrame.chip.name == chip) & (awe.RawScienceFrame.filter.name == "841") \
        & (awe.RawScienceFrame.date_obs.between(f"{NIGHT}T12:00:00", f"{NIGHT}T23:59:59")) \
        & (awe.RawScienceFrame.type == "RawScienceFrame")  # not the standard field
    q._session = catalog
    (raw,) = list(q)
    assert raw.record is not None
    return raw.record.oid


def raw_bias(catalog: awe.CatalogClient) -> str:
    q = awe.RawBiasFrame.chip.name == "ccd50"
    q._session = catalog
    first = next(iter(q))
    assert first.record is not None
    return first.record.oid


def test_get_makes_what_is_missing_then_reuses(night: awe.CatalogClient) -> None:
    assert not awe.HotPixelMap.exists(NIGHT, "ccd50")
    plan = awe.HotPixelMap.plan(NIGHT, "ccd50")
    assert [n.cls for n in plan.to_make] == ["ReadNoise", "BiasFrame", "HotPixelMap"]
    assert all(n.reasons == [f"no valid {n.cls} exists"] for n in plan.to_make)
    hot = awe.HotPixelMap.get(NIGHT, "ccd50")
    assert hot.record is not None and hot.hot_pixels > 0
    assert hot.bias.read_noise.read_noise > 0  # type: ignore[union-attr]
    assert hot.record.software_version and hot.record.process_params == {"nsigma": 10.0}
    assert hot.record.quality_flags == 0 and hot.bias.record.quality_flags == 0  # type: ignore[union-attr]
    again = awe.HotPixelMap.plan(NIGHT, "ccd50")
    assert again.to_make == []
    assert awe.HotPixelMap.get(NIGHT, "ccd50") == hot
    assert awe.HotPixelMap.exists(NIGHT, "ccd50") and hot.uptodate()
    # user-tuned parameters give a separate product; the default one stays in use
    tuned = awe.HotPixelMap.get(NIGHT, "ccd50", params={"nsigma": 20.0})
    assert tuned != hot and tuned.record.process_params == {"nsigma": 20.0}  # type: ignore[union-attr]
    assert awe.HotPixelMap.plan(NIGHT, "ccd50").to_make == []
    assert awe.HotPixelMap.get(NIGHT, "ccd50") == hot and hot.uptodate() and tuned.uptodate()
    # make(): the target anew, on the inputs that are still up to date
    fresh = awe.HotPixelMap.make(NIGHT, "ccd50")
    assert fresh != hot and fresh.bias == hot.bias
    verdict = hot.uptodate()
    assert not verdict and f"the best HotPixelMap now is {fresh.record.oid}" in verdict.reasons  # type: ignore[union-attr]
    assert awe.HotPixelMap.get(NIGHT, "ccd50") == fresh and fresh.uptodate()


def test_reduced_frame_and_invalidation(night: awe.CatalogClient) -> None:
    raw = raw_science(night, "ccd50")
    plan = awe.ReducedScienceFrame.plan(NIGHT, "ccd50", "841", raw=raw)
    assert {n.cls for n in plan.to_make} >= {"DomeFlatFrame", "ColdPixelMap",
                                              "TwilightFlatFrame", "MasterFlatFrame",
                                              "ReducedScienceFrame"}
    with pytest.raises(awe.InvalidRequest, match="is of chip ccd50, filter 841"):
        awe.ReducedScienceFrame.plan(NIGHT, "ccd51", "841", raw=raw)  # not that chip's frame
    with pytest.raises(awe.InvalidRequest, match="not a raw science frame"):
        awe.ReducedScienceFrame.plan(NIGHT, "ccd50", "841", raw=raw_bias(night))
    reduced = awe.ReducedScienceFrame.get(NIGHT, "ccd50", "841", raw=raw)
    assert reduced.raw.record.oid == raw  # type: ignore[union-attr]
    assert reduced.weight_filename and reduced.imstat.stdev > 0
    other = awe.ReducedScienceFrame.get(NIGHT, "ccd51", "841", raw=raw_science(night, "ccd51"))
    # invalidate the bias the ccd50 frame used
    bias = reduced.bias
    night.curate(bias.record.oid, is_valid=0)  # type: ignore[union-attr]
    verdict = reduced.uptodate()
    assert not verdict and any(f"its bias {bias.record.oid} must be remade" in r  # type: ignore[union-attr]
                               for r in verdict.reasons), verdict.reasons
    assert other.uptodate()
    stale = awe.ReducedScienceFrame.plan(NIGHT, "ccd50", "841", raw=raw)
    bias_node = next(n for n in stale.to_make if n.cls == "BiasFrame")
    assert "no valid BiasFrame exists" in bias_node.reasons[0]
    root = stale.nodes[stale.root]
    assert root.action == "make" and any("must be remade" in r for r in root.reasons)
    remade = awe.ReducedScienceFrame.get(NIGHT, "ccd50", "841", raw=raw)
    assert remade != reduced and remade.bias != bias and remade.bias.is_valid == 1  # type: ignore[union-attr]
    # the other chip's frame did not use it: nothing to do
    assert awe.ReducedScienceFrame.plan(NIGHT, "ccd51", "841",
                                        raw=other.raw.record.oid).to_make == []  # type: ignore[union-attr]


def test_cannot_make_without_raw_data(night: awe.CatalogClient) -> None:
    with pytest.raises(awe.NotFound, match="0 RawBiasFrame that night"):
        awe.HotPixelMap.plan(dt.date(1999, 1, 1), "ccd50")
    assert not awe.HotPixelMap.exists(dt.date(1999, 1, 1), "ccd50")
    with pytest.raises(awe.InvalidRequest, match="depends on a filter"):
        awe.MasterFlatFrame.plan(NIGHT, "ccd50")
    with pytest.raises(awe.NotFound, match="0 RawStandardFrame that night"):
        awe.PhotometricParameters.plan(dt.date(1999, 1, 1), "ccd50", "841")


def test_awe_get_cli(night: awe.CatalogClient, catalog_process: str,
                     storage_process: str) -> None:
    import subprocess
    import sys

    env = {"AWE_CATALOG_URL": catalog_process, "AWE_STORAGE_URL": storage_process,
           "AWE_TOKEN": ADMIN_TOKEN, **CLI_ENV, "COLUMNS": "250"}
    args = [sys.executable, "-m", "awecore.cli", "get", "ColdPixelMap", "--date",
            NIGHT.isoformat(), "--chip", "ccd51", "--filter", "842"]
    r = subprocess.run([*args, "--dry-run"], capture_output=True, text=True, env=env,
                       timeout=120, check=False)
    assert r.returncode == 0, r.stderr
    assert "make DomeFlatFrame ccd51/842" in r.stdout and "to make" in r.stdout
    r = subprocess.run(args, capture_output=True, text=True, env=env, timeout=120,
                       check=False)
    assert r.returncode == 0, r.stderr
    r = subprocess.run([*args, "--dry-run"], capture_output=True, text=True, env=env,
                       timeout=120, check=False)
    assert "0 to make" in r.stdout


def test_source_list_of_a_science_frame(night: awe.CatalogClient) -> None:
    raw = raw_science(night, "ccd51")
    plan = awe.SourceList.plan(NIGHT, "ccd51", "841", raw=raw)
    assert plan.nodes[plan.root].action == "make"
    sources = awe.SourceList.get(NIGHT, "ccd51", "841", raw=raw)
    assert sources.frame.raw.record.oid == raw  # type: ignore[union-attr]
    assert sources.number_of_sources > 0
    assert awe.SourceList.plan(NIGHT, "ccd51", "841", raw=raw).to_make == []
    header = sources.frame.raw  # the raw frame's pointing: the sources are around it
    found = awe.Source.cone(header.ra, header.dec, 0.05, limit=100_000)  # type: ignore[union-attr]
    mine = [row for row in found if row["sourcelist"] == sources.record.oid]  # type: ignore[union-attr]
    assert len(mine) == sources.number_of_sources
    # the same through the DSL, from the shell
    import subprocess
    import sys

    env = {"AWE_CATALOG_URL": night.url, "AWE_TOKEN": ADMIN_TOKEN, **CLI_ENV}
    r = subprocess.run([sys.executable, "-m", "awecore.cli", "query", "--count",
                        f"Source.sourcelist == '{sources.record.oid}'"],  # type: ignore[union-attr]
                       capture_output=True, text=True, env=env, timeout=60, check=False)
    assert r.returncode == 0, r.stderr
    assert int(r.stdout) == sources.number_of_sources


def test_source_list_against_the_truth(night: awe.CatalogClient, truth: dict[str, Any]) -> None:
    """Astrometry fitted to the reference catalogue, the zeropoint from the standard field,
    and the sources they calibrate, each checked against what the simulator put there."""
    raw = raw_science(night, "ccd50")
    plan = awe.SourceList.plan(NIGHT, "ccd50", "841", raw=raw)
    made = {n.cls for n in plan.to_make}
    assert {"AstrometricParameters", "PhotometricParameters", "SourceList"} <= made
    sl = awe.SourceList.get(NIGHT, "ccd50", "841", raw=raw)
    astrom, photom = sl.astrom, sl.photom
    assert astrom.reduced == sl.frame and astrom.refcat.name == "AWE-SIM-REF-6"  # type: ignore[union-attr]
    # the header's pointing was off by arcseconds; the fit is good to < 0.1 arcsec
    assert astrom.pointing_offset > 0.5 and astrom.rms < 0.1 and astrom.n_matched >= 6  # type: ignore[union-attr]
    zeropoint = truth["filters"]["841"]["zeropoint"]
    assert abs(photom.zeropoint - zeropoint) < 0.02 and photom.n_stars >= 3  # type: ignore[union-attr]
    standards = [a.reduced.raw for a in photom.astrom]  # type: ignore[union-attr]
    assert standards and all(isinstance(r, awe.RawStandardFrame) for r in standards)
    assert photom.record.quality_flags == 0 and astrom.record.quality_flags == 0  # type: ignore[union-attr]
    # the sources: where the truth has its stars, as bright as the truth says
    field = next(f for name, f in truth["fields"].items() if name != "SA98")
    stars = SkyCoord([s["ra"] for s in field["stars"]] * u.deg,
                     [s["dec"] for s in field["stars"]] * u.deg)
    rows = [r for r in awe.Source.cone(field["ra"], field["dec"], 0.2, limit=100_000)
            if r["sourcelist"] == sl.record.oid and r["snr"] > 20]  # type: ignore[union-attr]
    assert len(rows) >= 10
    found = SkyCoord([r["ra"] for r in rows] * u.deg, [r["dec"] for r in rows] * u.deg)
    idx, sep, _ = found.match_to_catalog_sky(stars)
    close = sep.arcsec < 0.1  # a blend of two stars may land between them: the odd one out
    assert close.mean() >= 0.9 and np.sqrt(np.mean(sep.arcsec[close] ** 2)) < 0.05
    true_mag = np.array([field["stars"][i]["mag"] for i in idx[close]])
    mag = np.array([r["mag"] for r in rows])[close]
    assert abs(np.median(mag - true_mag)) < 0.03


def test_qc_flags_propagate_and_gate(night: awe.CatalogClient, storage_process: str) -> None:
    """A product carries its inputs' flags apart from its own; the QC policy refuses to make
    a source list from a poor astrometric solution, and the plan says so."""
    from awecore.pipelines import QC
    from awecore.targets import Maker, Planner

    # hot pixels found at 1 sigma: a map with many bad pixels, and flats made from it
    planner = Planner(night, {"HotPixelMap": {"nsigma": 1.0}})
    plan = planner.plan("DomeFlatFrame", "ccd51", NIGHT, "842")
    with StorageClient(storage_process, ADMIN_TOKEN) as storage:
        oid = Maker(night, storage).make(plan)
    flat = night.get(oid)
    assert flat.hot.record.quality_flags & QC.MANY_BAD_PIXELS  # type: ignore[union-attr]
    assert flat.inherited_flags & QC.MANY_BAD_PIXELS
    assert not flat.record.quality_flags & QC.MANY_BAD_PIXELS  # type: ignore[union-attr]
    # a poorer solution of the same frame, made later with the same parameters, is chosen
    # first: the source list is refused, with the reason, not made on it
    raw = raw_science(night, "ccd51")
    good = awe.SourceList.get(NIGHT, "ccd51", "841", raw=raw).astrom
    assert good.record is not None
    record = good.record
    poor = night.create_batch([awe.ObjectIn(
        type="AstrometricParameters", privileges=3, refs=record.refs,
        attributes={**record.attributes, "rms": 0.9}, process_params=record.process_params,
        software_version=record.software_version,
        quality_flags=int(QC.POOR_ASTROMETRY))])[0]
    plan = awe.SourceList.plan(NIGHT, "ccd51", "841", raw=raw)
    root = plan.nodes[plan.root]
    assert root.action == "refuse" and plan.to_make == []
    assert f"its astrom {poor} has POOR_ASTROMETRY, which SourceList refuses" in \
        root.reasons[0], root.reasons
    assert "refuse SourceList ccd51/841" in plan.describe()
    with pytest.raises(awe.QCRefused, match="POOR_ASTROMETRY"):
        awe.SourceList.get(NIGHT, "ccd51", "841", raw=raw)
    # a calibration scientist invalidates it: the good solution serves again
    night.curate(poor, is_valid=0)
    plan = awe.SourceList.plan(NIGHT, "ccd51", "841", raw=raw)
    assert plan.nodes[plan.root].action == "use", plan.describe()
