"""Calibrations across nights, through the real catalog and storage: validity drives the
choice. A two-night survey (calibrations on the first night only) is ingested; the second,
science-only night is reduced with the first night's calibrations (their default windows
span nights), and its pixels checked against the truth. A calibration scientist then
shortens, extends and invalidates a bias's window (PATCH): each time the plan's choice
follows, ``uptodate()`` says why (who changed what, from the curation history), and no
calibration is ever used outside its window."""

from __future__ import annotations

import dataclasses
import datetime as dt
import io
import json
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from astropy.io import fits
from conftest import ADMIN_TOKEN, CLI_ENV

import awecore as awe
from awecore.client import StorageClient
from awecore.dimensions import DataId
from awecore.ingest import Ingester, expand
from awecore.query import And, Between, Compare, QuerySpec
from awecore.sim import PRESETS, NightPlan, SurveyPlan, simulate_survey
from awecore.targets import Plan
from awecore.targets._plan import calibrates

pytestmark = pytest.mark.integration
FIRST, SECOND = dt.date(2012, 4, 10), dt.date(2012, 4, 11)
CAMERA = dataclasses.replace(PRESETS["tiny"], name="AWECAM", chips_x=2, chips_y=1, nx=160,
                             ny=200)
FILTER = "841"
PLAN = SurveyPlan(nights=2, start=FIRST, calib_nights=(1,), fields=1,
                  night=NightPlan(n_bias=4, n_dome=3, n_twilight=3, science_fields=1,
                                  exposures_per_field=1, stars_per_chip=60))


@pytest.fixture(scope="module")
def survey(catalog_process: str, storage_process: str,
           tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    folder: Path = tmp_path_factory.mktemp("survey")
    found = simulate_survey(folder, PLAN, CAMERA, seed=411)
    assert [n["calibrations"] != [] for n in found["nights"]] == [True, False]
    catalog = awe.CatalogClient(catalog_process, ADMIN_TOKEN)
    storage = StorageClient(storage_process, ADMIN_TOKEN)
    report = Ingester(catalog, storage.put).ingest(expand([folder]))
    assert not report.failed, report.failed
    truths = {n["date"]: json.loads((folder / n["folder"] / "truth.json").read_text())
              for n in found["nights"]}
    yield {"survey": found, "truth": truths, "folder": folder, "catalog": catalog,
           "storage": storage}
    catalog.close()
    storage.close()


@pytest.fixture(autouse=True)
def session(catalog_process: str, storage_process: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWE_CATALOG_URL", catalog_process)
    monkeypatch.setenv("AWE_STORAGE_URL", storage_process)
    monkeypatch.setenv("AWE_TOKEN", ADMIN_TOKEN)
    monkeypatch.delenv("AWE_COMPUTE_URL", raising=False)
    monkeypatch.delenv("AWE_CALIBRATION_RULES", raising=False)
    awe.connect()


def science(catalog: awe.CatalogClient, night: dt.date, chip: str) -> awe.ObjectOut:
    start = dt.datetime.combine(night, dt.time(12), dt.UTC)
    spec = QuerySpec(cls="RawScienceFrame", where=And(items=(
        Compare(op="eq", path=("chip", "name"), value=chip),
        Compare(op="eq", path=("filter", "name"), value=FILTER),
        Compare(op="eq", path=("type",), value="RawScienceFrame"),
        Compare(op="eq", path=("instrument", "name"), value=CAMERA.name),
        Between(path=("date_obs",), low=start.isoformat(),
                high=(start + dt.timedelta(days=1)).isoformat()))))
    (raw,) = [o.record for o in catalog.iter_query(spec) if o.record is not None]
    return raw


def observed(raw: awe.ObjectOut) -> dt.datetime:
    return dt.datetime.fromisoformat(str(raw.attributes["date_obs"]))


def stamp(when: dt.datetime) -> str:
    return when.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")


def within_windows(plan: Plan, catalog: awe.CatalogClient) -> None:
    """No calibration is used outside its window: each one a node uses, or will be made
    with, covers the node's moment."""
    used = {n.oid for n in plan.nodes.values() if n.action == "use" and n.oid}
    records = catalog.get_records(sorted(used))
    for node in plan.nodes.values():
        for key in node.input_keys():
            dep = plan.nodes[key]
            if not calibrates(dep.cls) or dep.action == "refuse":
                continue
            if dep.action == "use":
                record = records[str(dep.oid)]
                window = (record.timestamp_start, record.timestamp_end)
            else:
                assert dep.window is not None
                window = dep.window
            assert window[0] is not None and window[1] is not None and node.time is not None
            assert window[0] <= node.time <= window[1], (node.describe(), dep.describe())


def check_reduced(survey: dict[str, Any], reduced: awe.DBObject, raw: awe.ObjectOut,
                  chip_name: str) -> None:
    """The reduced frame against the truth: the sky at the level the simulator put there,
    flat across the chip (the master flat took the camera's flat field out), and the master
    flat itself the camera's true flat field."""
    truth = survey["truth"][SECOND.isoformat()]
    exposure = next(e for e in truth["exposures"]
                    if e["file"] == raw.attributes["raw_filename"])
    chip = truth["chips"][chip_name]
    f = truth["filters"][FILTER]
    sky_e = 10 ** (-0.4 * (f["sky_mag"] - f["zeropoint"])) * CAMERA.pixel_scale ** 2 \
        * float(exposure["exptime"])
    storage: StorageClient = survey["storage"]
    assert reduced.record is not None and reduced.record.filename is not None
    image = fits.getdata(io.BytesIO(storage.get(reduced.record.filename)))
    assert abs(float(np.median(image)) / (sky_e / chip["gain"]) - 1) < 0.02
    quadrants = [float(np.median(q)) for half in np.array_split(image, 2, axis=0)
                 for q in np.array_split(half, 2, axis=1)]
    assert (max(quadrants) - min(quadrants)) / np.mean(quadrants) < 0.01, quadrants
    flat = reduced.flat.record  # type: ignore[attr-defined]
    made = fits.getdata(io.BytesIO(storage.get(flat.filename)))
    with fits.open(survey["folder"] / "truth_flats.fits") as hdul:
        true = hdul[chip_name].data
    assert np.std(made / np.median(made) - true / np.median(true)) < 0.01


def test_a_science_only_night_is_reduced_with_the_first_nights_calibrations(
        survey: dict[str, Any]) -> None:
    catalog: awe.CatalogClient = survey["catalog"]
    chip = "ccd50"
    raw = science(catalog, SECOND, chip)
    when = observed(raw)
    plan = awe.ReducedScienceFrame.plan(SECOND, chip, FILTER, raw=raw.oid)
    within_windows(plan, catalog)
    made = {n.cls: n for n in plan.to_make}
    assert set(made) == {"ReadNoise", "BiasFrame", "HotPixelMap", "DomeFlatFrame",
                         "ColdPixelMap", "TwilightFlatFrame", "MasterFlatFrame",
                         "ReducedScienceFrame"}
    # every calibration from the first night, and its node says why
    assert all(n.night == FIRST for c, n in made.items() if c != "ReducedScienceFrame")
    assert made["BiasFrame"].reasons == [
        f"no BiasFrame covers {stamp(when)}; made from {FIRST}, 1 night away, 4 RawBiasFrame"]
    assert made["DomeFlatFrame"].reasons == [
        f"no DomeFlatFrame covers {stamp(when)}; made from {FIRST}, 1 night away, "
        "3 RawDomeFlatFrame"]
    reduced = awe.ReducedScienceFrame.get(SECOND, chip, FILTER, raw=raw.oid)
    check_reduced(survey, reduced, raw, chip)
    bias = reduced.bias.record  # type: ignore[attr-defined]
    noon = dt.datetime.combine(FIRST, dt.time(12), dt.UTC)
    assert (bias.timestamp_start, bias.timestamp_end) == (
        noon - dt.timedelta(days=3), noon + dt.timedelta(days=4))  # its default window
    raws = catalog.get_records(bias.refs["raw_bias_frames"])
    assert {observed(r).date() for r in raws.values()} == {FIRST}
    assert reduced.uptodate()
    assert awe.ReducedScienceFrame.plan(SECOND, chip, FILTER, raw=raw.oid).to_make == []
    # the first night's own frame uses the same calibrations: nothing but it to make
    first = science(catalog, FIRST, chip)
    plan = awe.ReducedScienceFrame.plan(FIRST, chip, FILTER, raw=first.oid)
    assert [n.cls for n in plan.to_make] == ["ReducedScienceFrame"], plan.describe()
    # many look-ups in one request: the bias for both frames, none a week later
    got = catalog.request("POST", "/calibrations/best", json={"requests": [
        {"cls": "BiasFrame", "chip": chip, "time": when.isoformat()},
        {"cls": "BiasFrame", "chip": chip, "time": observed(first).isoformat()},
        {"cls": "BiasFrame", "chip": chip, "time": (when + dt.timedelta(days=7)).isoformat()},
        {"cls": "MasterFlatFrame", "chip": chip, "filter": FILTER, "time": when.isoformat()},
        {"cls": "MasterFlatFrame", "chip": chip, "filter": "842", "time": when.isoformat()}]})
    oids = [o["oid"] if o else None for o in got["objects"]]
    assert oids == [bias.oid, bias.oid, None, reduced.flat.record.oid, None]  # type: ignore[attr-defined]

    # by data ID: the same target, through the model and the CLI
    by_id = awe.ReducedScienceFrame.plan(night=SECOND, chip=chip, filter=FILTER, raw=raw.oid)
    assert by_id.root == ("ReducedScienceFrame", DataId(chip=chip, filter=FILTER,
                                                        night=SECOND, raw=raw.oid))
    assert by_id.nodes[by_id.root].oid == reduced.record.oid and by_id.to_make == []  # type: ignore[union-attr]
    env = {**CLI_ENV, "AWE_CATALOG_URL": catalog.url, "AWE_STORAGE_URL": survey["storage"].url,
           "AWE_TOKEN": ADMIN_TOKEN, "COLUMNS": "250"}
    done = subprocess.run([sys.executable, "-m", "awecore.cli", "get", "HotPixelMap",
                           "--data-id", f"night={SECOND}", "--data-id", f"chip={chip}",
                           "--dry-run"], capture_output=True, text=True, env=env, timeout=120,
                          check=False)
    assert done.returncode == 0, done.stderr
    hot = reduced.hot.record  # type: ignore[attr-defined]
    assert f"use  HotPixelMap {chip} {FIRST}: {hot.oid}" in done.stdout, done.stdout
    assert "0 to make" in done.stdout
    done = subprocess.run([sys.executable, "-m", "awecore.cli", "get", "HotPixelMap",
                           "--data-id", "tile=T1", "--data-id", f"chip={chip}", "--dry-run"],
                          capture_output=True, text=True, env=env, timeout=120, check=False)
    assert done.returncode != 0 and "HotPixelMap has no dimension tile" in done.stderr + \
        done.stdout


def test_bad_best_calibration_requests_are_refused(survey: dict[str, Any]) -> None:
    catalog: awe.CatalogClient = survey["catalog"]
    when = dt.datetime.combine(SECOND, dt.time(23), dt.UTC).isoformat()
    with pytest.raises(awe.InvalidRequest, match="'RawBiasFrame' is not a calibration class"):
        catalog.request("POST", "/calibrations/best", json={"requests": [
            {"cls": "RawBiasFrame", "chip": "ccd50", "time": when}]})
    with pytest.raises(awe.InvalidRequest, match="request 1: ReadNoise does not depend on"):
        catalog.request("POST", "/calibrations/best", json={"requests": [
            {"cls": "ReadNoise", "chip": "ccd50", "time": when},
            {"cls": "ReadNoise", "chip": "ccd50", "filter": "841", "time": when}]})
    for body in ({"requests": []}, {"requests": [{"cls": "BiasFrame", "time": when}]},
                 {"requests": [{"cls": "BiasFrame", "chip": "ccd50", "time": "soon"}]}):
        with pytest.raises(awe.InvalidRequest):
            catalog.request("POST", "/calibrations/best", json=body)
    # an unknown chip has no calibration: null, not an error
    got = catalog.request("POST", "/calibrations/best", json={"requests": [
        {"cls": "BiasFrame", "chip": "ccd99", "time": when}]})
    assert got == {"objects": [None], "varies": []}


def test_windows_drive_the_choice_and_uptodate_says_why(survey: dict[str, Any]) -> None:
    catalog: awe.CatalogClient = survey["catalog"]
    chip = "ccd51"
    raw = science(catalog, SECOND, chip)
    when = observed(raw)
    reduced = awe.ReducedScienceFrame.get(SECOND, chip, FILTER, raw=raw.oid)
    bias = reduced.bias.record  # type: ignore[attr-defined]
    noon = dt.datetime.combine(FIRST, dt.time(12), dt.UTC)

    # shortened to its own night: it no longer covers the second night's frame, no other
    # night within 3 has biases, and a twin from its night would undo the change: refused,
    # naming the candidates with their windows
    catalog.curate(bias.oid, reason="the bias level jumped the next day",
                   timestamp_start=noon, timestamp_end=noon + dt.timedelta(days=1))
    with pytest.raises(awe.NotFound) as caught:
        awe.ReducedScienceFrame.plan(SECOND, chip, FILTER, raw=raw.oid)
    text = str(caught.value)
    assert f"no BiasFrame for {chip} covers {stamp(when)}" in text, text
    assert f"the BiasFrame {bias.oid} of {FIRST} no longer covers it (shortened by " in text
    assert f"nearest BiasFrame: {bias.oid} from {FIRST} (valid {stamp(noon)} .. " in text
    verdict = reduced.uptodate()
    assert not verdict
    assert re.match(rf"its bias {bias.oid} no longer covers {re.escape(stamp(when))} since it "
                    r"was shortened by \S+ at .* UTC \(the bias level jumped the next day\)$",
                    verdict.reasons[0]), verdict.reasons
    assert verdict.reasons[-1].startswith("it cannot be made anew: no BiasFrame for")

    # extended over both nights: it serves again, and the frame is up to date
    catalog.curate(bias.oid, reason="checked: stable for a week",
                   timestamp_start=noon - dt.timedelta(days=1),
                   timestamp_end=noon + dt.timedelta(days=5))
    plan = awe.ReducedScienceFrame.plan(SECOND, chip, FILTER, raw=raw.oid)
    assert plan.to_make == [] and plan.nodes[plan.root].oid == reduced.record.oid  # type: ignore[union-attr]
    within_windows(plan, catalog)
    assert reduced.uptodate()

    # invalidated: a new one is made from the nearest night with raw biases (the first),
    # and the frame is out of date, saying who set the bias aside and why
    catalog.curate(bias.oid, reason="bad column", is_valid=0)
    plan = awe.ReducedScienceFrame.plan(SECOND, chip, FILTER, raw=raw.oid)
    within_windows(plan, catalog)
    node = next(n for n in plan.to_make if n.cls == "BiasFrame")
    assert node.night == FIRST and node.reasons[0].startswith(
        f"no BiasFrame covers {stamp(when)}; made from {FIRST}, 1 night away")
    verdict = reduced.uptodate()
    assert not verdict and re.match(rf"its bias {bias.oid} was invalidated by \S+ at .* "
                                    r"UTC \(bad column\)", verdict.reasons[0]), verdict.reasons
    remade = awe.ReducedScienceFrame.get(SECOND, chip, FILTER, raw=raw.oid)
    new_bias = remade.bias.record  # type: ignore[attr-defined]
    assert remade != reduced and new_bias.oid != bias.oid and new_bias.is_valid == 1
    assert new_bias.timestamp_start <= when <= new_bias.timestamp_end
    check_reduced(survey, remade, raw, chip)
    assert remade.uptodate()
    # the hot-pixel map made from the old bias is stale now too, and says so
    hot = remade.hot  # type: ignore[attr-defined]
    assert hot.bias.record.oid == new_bias.oid or not hot.uptodate()
