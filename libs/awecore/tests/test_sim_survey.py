"""The survey simulator: several nights of one camera on one sky, calibrations on some nights.

What a test of calibrations across nights relies on: the same seed gives the same files; the
nights that have calibrations are the ones asked for, and every night has science; each night's
truth says what its files hold (as their headers say it, read by the ingest's translators);
the camera is the same on every night (a calibration of night 1 applies to night 3, within
the bias drift the truth records); and one reference catalogue covers every night's fields."""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from astropy.io import fits
from typer.testing import CliRunner

from awecore.cli import app
from awecore.cli._data import _expand
from awecore.ingest import read_exposure, translator_for
from awecore.sim import (
    PRESETS,
    NightPlan,
    SurveyPlan,
    refcat_name,
    simulate_survey,
    survey_refcat_name,
)

NIGHT = NightPlan(n_bias=3, n_dome=2, n_twilight=1, science_fields=2, exposures_per_field=1,
                  stars_per_chip=15)
PLAN = SurveyPlan(nights=4, start=dt.date(2011, 3, 30), calib_every=2, fields=3, night=NIGHT,
                  bias_drift=0.5)
#: OmegaCAM's conventions (ESO keywords, overscan) on four small chips
CAMERA = dataclasses.replace(PRESETS["omegacam-small"], nx=64, ny=96)
#: the widecam's conventions (OBSTYPE, prescan) on two small chips
WIDECAM = dataclasses.replace(PRESETS["widecam"], chips_x=2, chips_y=1, nx=48, ny=64)
KIND_OF_CLASS = {"RawBiasFrame": "bias", "RawDomeFlatFrame": "dome",
                 "RawTwilightFlatFrame": "twilight", "RawScienceFrame": "science",
                 "RawStandardFrame": "standard"}


@pytest.fixture(scope="module")
def survey(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Any]]:
    out = tmp_path_factory.mktemp("survey")
    return out, simulate_survey(out, PLAN, CAMERA, seed=42)


def digest(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def truths(folder: Path, survey: dict[str, Any]) -> list[dict[str, Any]]:
    return [json.loads((folder / n["folder"] / "truth.json").read_text())
            for n in survey["nights"]]


def test_same_seed_same_survey_byte_for_byte(survey: tuple[Path, dict[str, Any]],
                                             tmp_path: Path) -> None:
    folder, _ = survey
    simulate_survey(tmp_path / "again", PLAN, CAMERA, seed=42)
    assert digest(tmp_path / "again") == digest(folder)
    simulate_survey(tmp_path / "other", PLAN, CAMERA, seed=43)
    other = digest(tmp_path / "other")
    assert other.keys() == digest(folder).keys()
    assert all(other[k] != v for k, v in digest(folder).items() if k.endswith(".fits"))


def test_a_night_does_not_change_when_nights_are_added(survey: tuple[Path, dict[str, Any]],
                                                       tmp_path: Path) -> None:
    folder, _ = survey
    simulate_survey(tmp_path, dataclasses.replace(PLAN, nights=2), CAMERA, seed=42)
    short = digest(tmp_path)
    assert {k: v for k, v in digest(folder).items()
            if k.startswith("2011-03-3") and k.endswith(".fits")} == {
        k: v for k, v in short.items() if k.startswith("2011-03-3") and k.endswith(".fits")}
    assert len([k for k in short if k.startswith("2011-03-31/")]) > 1
    for night in ("2011-03-30", "2011-03-31"):  # the truth too, but for the survey's length
        long, brief = (json.loads((f / night / "truth.json").read_text())
                       for f in (folder, tmp_path))
        assert (long["survey"].pop("nights"), brief["survey"].pop("nights")) == (4, 2)
        assert long == brief


def test_calibrations_on_the_nights_asked_for_science_on_every_night(
        survey: tuple[Path, dict[str, Any]]) -> None:
    folder, s = survey
    assert [n["date"] for n in s["nights"]] == ["2011-03-30", "2011-03-31", "2011-04-01",
                                                "2011-04-02"]
    assert s["calibration_nights"] == ["2011-03-30", "2011-04-01"]
    for night, truth in zip(s["nights"], truths(folder, s), strict=True):
        kinds = [e["type"] for e in truth["exposures"]]
        assert kinds.count("science") == 2 * len(CAMERA.filters), night  # two fields a night
        if night["date"] in s["calibration_nights"]:
            assert night["calibrations"] == truth["survey"]["calibrations"] == [
                "bias", "dome", "twilight", "standard"]
            assert kinds.count("bias") == 3 and kinds.count("dome") == 2 * 2
            assert kinds.count("twilight") == 2 and kinds.count("standard") == 2
        else:
            assert night["calibrations"] == truth["survey"]["calibrations"] == []
            assert set(kinds) == {"science"}
        # the folder holds exactly the night's files
        assert sorted(p.name for p in (folder / night["folder"]).glob("*.fits")) == sorted(
            e["file"] for e in truth["exposures"])
    assert SurveyPlan(nights=7, calib_every=3).calibration_nights() == (1, 4, 7)
    assert SurveyPlan(nights=5, calib_nights=(4, 2, 4)).calibration_nights() == (2, 4)
    assert SurveyPlan(nights=2, calib_nights=()).calibration_nights() == ()


def test_explicit_calibration_nights_and_bad_plans(tmp_path: Path) -> None:
    night = dataclasses.replace(NIGHT, n_bias=1, n_dome=0, n_twilight=0, standard=False)
    s = simulate_survey(tmp_path, SurveyPlan(nights=3, calib_nights=(2,), fields=1,
                                             night=night), WIDECAM, seed=5)
    assert [n["calibrations"] for n in s["nights"]] == [[], ["bias"], []]
    assert "standard" not in {f["kind"] for f in s["fields"].values()}
    first = truths(tmp_path, s)[0]
    assert {e["type"] for e in first["exposures"]} == {"science"}
    for bad, says in ((dict(nights=0), "1 to 1000 nights"),
                      (dict(nights=3, calib_nights=(0, 4)), "[0, 4] are not in the survey"),
                      (dict(calib_every=0), "calibrations every 0 nights"),
                      (dict(fields=0), "1 to 10 science fields"),
                      (dict(night=NightPlan(science_fields=0)), "science fields every night"),
                      (dict(bias_drift=-1.0), "bias drift cannot be negative")):
        with pytest.raises(ValueError, match=says.replace("[", r"\[")):
            SurveyPlan(**bad)


@pytest.mark.parametrize("camera", [CAMERA, WIDECAM], ids=["omegacam", "widecam"])
def test_truth_per_night_agrees_with_the_headers(camera: Any, tmp_path: Path) -> None:
    plan = dataclasses.replace(PLAN, nights=2, night=dataclasses.replace(NIGHT, n_bias=1))
    s = simulate_survey(tmp_path, plan, camera, seed=7)
    for night, truth in zip(s["nights"], truths(tmp_path, s), strict=True):
        assert truth["date"] == night["date"] and truth["survey"]["night"] == night["night"]
        for e in truth["exposures"]:
            with fits.open(tmp_path / night["folder"] / e["file"]) as hdul:
                h = hdul[0].header
                assert h["DATE-OBS"].startswith(night["date"])
                assert dt.datetime.fromisoformat(h["DATE-OBS"] + "+00:00") == \
                    dt.datetime.fromisoformat(e["date_obs"])
                assert h["EXPTIME"] == e["exptime"] and h["INSTRUME"] == camera.name
                t = translator_for(h)
                assert KIND_OF_CLASS[t.raw_class()] == e["type"], e["file"]
                assert t.filter() == e["filter"]
                if e["field"] not in (None, "twilight"):
                    assert h["OBJECT"] == e["field"] and e["field"] in truth["fields"]
                    assert e["field"] in night["fields"]
                if camera.style == "widecam":
                    assert h["OBSTYPE"] == {"bias": "zero", "dome": "dome flat",
                                            "twilight": "sky flat", "science": "object",
                                            "standard": "standard"}[e["type"]]
                assert len(hdul) == camera.n_chips + 1
        # ingest reads each night's files as that night's (its date in the stored names)
        first = tmp_path / night["folder"] / truth["exposures"][0]["file"]
        parts = read_exposure(first, first.name).parts
        assert {p.name.split("/")[2] for p in parts} == {night["date"]}


def test_the_camera_is_the_same_every_night(survey: tuple[Path, dict[str, Any]]) -> None:
    folder, s = survey
    nights = truths(folder, s)
    stable = ("bias_slope", "read_noise", "gain", "hot_pixels", "cold_pixels",
              "camera_bias_level", "data_section", "overscan_section")
    levels: dict[str, list[float]] = {}
    for truth in nights:
        assert list(truth["chips"]) == s["chips"]
        for name, chip in truth["chips"].items():
            assert {k: chip[k] for k in stable} == {
                k: nights[0]["chips"][name][k] for k in stable}, name
            assert chip["bias_level"] == pytest.approx(chip["camera_bias_level"]
                                                       + chip["bias_drift"])
            assert abs(chip["bias_drift"]) < 5 * PLAN.bias_drift
            levels.setdefault(name, []).append(chip["bias_level"])
    assert all(len(set(v)) == len(nights) for v in levels.values())  # it does drift
    # the pixels: night 3's bias is night 1's within the drift; a hot pixel is hot on night 2
    bias = {t["date"]: next(e["file"] for e in t["exposures"] if e["type"] == "bias")
            for t in nights if t["survey"]["calibrations"]}
    first, third = nights[0], nights[2]
    with fits.open(folder / first["date"] / bias[first["date"]]) as a, \
            fits.open(folder / third["date"] / bias[third["date"]]) as b:
        for i, name in enumerate(s["chips"], start=1):
            assert a[i].header["HIERARCH ESO DET OUT1 CONAD"] == b[i].header[
                "HIERARCH ESO DET OUT1 CONAD"] == first["chips"][name]["gain"]
            drift = third["chips"][name]["bias_level"] - first["chips"][name]["bias_level"]
            diff = float(np.median(b[i].data.astype(float)) - np.median(a[i].data.astype(float)))
            assert abs(diff - drift) < 0.5, (name, diff, drift)
    science = next(e["file"] for e in nights[1]["exposures"] if e["type"] == "science")
    with fits.open(folder / nights[1]["date"] / science) as hdul:
        chip = nights[1]["chips"][s["chips"][0]]
        hot = np.array(chip["hot_pixels"])
        data = hdul[1].data.astype(float)
        assert (data[hot[:, 0], hot[:, 1]] > np.median(data) + 2000).all()
    # one file of true flats for the camera, and every night's truth points to it
    assert all(t["survey"]["truth_flats"] == "../truth_flats.fits" for t in nights)
    with fits.open(folder / "truth_flats.fits") as flats:
        assert [h.name for h in flats[1:]] == s["chips"]
        assert flats[1].data.shape == (CAMERA.ny, CAMERA.nx)


def test_one_reference_catalogue_for_every_night(survey: tuple[Path, dict[str, Any]]) -> None:
    folder, s = survey
    assert [p.relative_to(folder).as_posix() for p in folder.rglob("refcat*")] == [
        "refcat.fits"]
    name = survey_refcat_name(CAMERA, 42)
    assert s["refcat"] == {"name": name, "file": "refcat.fits"}
    assert name == "AWE-SIM-REF-OMEGACAM-SURVEY-42" and name != refcat_name(CAMERA, 42)
    nights = truths(folder, s)
    with fits.open(folder / "refcat.fits") as hdul:
        assert hdul[0].header["REFCAT"] == name
        ra, dec = hdul["STARS"].data["RA"], hdul["STARS"].data["DEC"]
        stars = sum(len(f["stars"]) for f in {
            n: f for t in nights for n, f in t["fields"].items()}.values())
        assert len(ra) == stars  # every field's stars, once
        for truth in nights:
            assert truth["survey"]["refcat"] == name
            for f in truth["fields"].values():
                assert ra.min() < f["ra"] < ra.max() and dec.min() < f["dec"] < dec.max()
    # the same field on several nights, with the same stars
    seen: dict[str, list[dict[str, Any]]] = {}
    for truth in nights:
        for n, f in truth["fields"].items():
            seen.setdefault(n, []).append(f)
    again = [v for v in seen.values() if len(v) > 1]
    assert again and all(v[0] == w for v in again for w in v)
    # another seed's survey lies elsewhere on the sky, and away from simulate_night's fields
    # (RA 102.9 to 152): the catalogues' boxes do not overlap
    other = simulate_survey(folder.parent / "seed43", dataclasses.replace(PLAN, nights=1),
                            CAMERA, seed=43)
    assert min(abs(a["ra"] - b["ra"]) for a in other["fields"].values()
               for b in s["fields"].values()) > 5
    assert min(f["ra"] for f in s["fields"].values()) > 160


def test_cli_writes_a_survey_and_ingest_takes_it_in_order(tmp_path: Path) -> None:
    out = tmp_path / "s"
    r = CliRunner().invoke(app, ["simulate", "survey", "--out", str(out), "--nights", "3",
                                 "--seed", "9", "--instrument", "tiny", "--size", "32x48",
                                 "--calib-nights", "1,3", "--fields", "2"])
    assert r.exit_code == 0, r.output
    s = json.loads((out / "survey.json").read_text())
    assert s["calibration_nights"] == ["2003-02-14", "2003-02-16"]
    assert s["refcat"]["name"] == "AWE-SIM-REF-SURVEY-9"
    files = _expand([out])
    assert files[0] == out / "refcat.fits"
    nights = [f.parent.name for f in files[1:]]
    assert nights == sorted(nights) and set(nights) == {"2003-02-14", "2003-02-15",
                                                        "2003-02-16"}
    assert not any(f.name.startswith("truth") for f in files)
    assert _expand([out / "2003-02-15"]) == sorted((out / "2003-02-15").glob("*.fits"))
    r = CliRunner().invoke(app, ["simulate", "survey", "--out", str(out), "--nights", "2",
                                 "--calib-nights", "3"])
    assert r.exit_code == 2 and "not in the survey" in r.output
