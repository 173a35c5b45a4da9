"""A simulated survey into the real storage and catalog processes with ``awe ingest``: a night
at a time, then the survey's folder whole (its reference catalogue, then its nights in order).
Two OmegaCAM-shaped nights, calibrations on the first only: each night's raw frames are
registered under their night with the pixels and checksums of the written files, and the
survey's one reference catalogue is in the catalogue once, covering both nights' frames."""

from __future__ import annotations

import datetime as dt
import hashlib
import io
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from astropy.io import fits
from conftest import ADMIN_TOKEN, CLI_ENV

import awecore as awe
from awecore.client import StorageClient
from awecore.query import Compare, Like, QuerySpec
from awecore.sim import PRESETS, NightPlan, SurveyPlan, simulate_survey, survey_refcat_name

pytestmark = pytest.mark.integration
CAMERA = PRESETS["omegacam-small"]
SEED = 1420
#: per calibration night: 2 biases, a dome and a twilight flat and the standard per filter;
#: on every night one science field, one exposure per filter
PLAN = SurveyPlan(nights=2, start=dt.date(2014, 10, 20), calib_nights=(1,), fields=1,
                  night=NightPlan(n_bias=2, n_dome=1, n_twilight=1, science_fields=1,
                                  exposures_per_field=1, stars_per_chip=20))
CHIPS = CAMERA.n_chips


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def awe_ingest(path: Path, catalog_url: str, storage_url: str) -> str:
    env = {**CLI_ENV, "AWE_CATALOG_URL": catalog_url, "AWE_STORAGE_URL": storage_url,
           "AWE_TOKEN": ADMIN_TOKEN, "COLUMNS": "200"}
    r = subprocess.run([sys.executable, "-m", "awecore.cli", "ingest", str(path)],
                       capture_output=True, text=True, env=env, timeout=300, check=False)
    assert r.returncode == 0, f"exit {r.returncode}\n{r.stdout}\n{r.stderr}"
    return " ".join(r.stdout.split())


def query(catalog: awe.CatalogClient, spec: QuerySpec) -> list[awe.ObjectOut]:
    return [o.record for o in catalog.iter_query(spec) if o.record is not None]


def raw_frames(catalog: awe.CatalogClient, date: str) -> list[awe.ObjectOut]:
    return query(catalog, QuerySpec(cls="RawFrame", where=Like(
        path=("filename",), pattern=f"raw/OMEGACAM/{date}/*")))


def check_night(catalog: awe.CatalogClient, storage: StorageClient, folder: Path,
                truth: dict[str, Any], expected: dict[str, int]) -> list[awe.ObjectOut]:
    """The night's frames by class, in the night, with the written files' bytes and pixels
    and the night's bias level (it drifts from night to night)."""
    found = raw_frames(catalog, truth["date"])
    counts: dict[str, int] = {}
    for record in found:
        counts[record.type] = counts.get(record.type, 0) + 1
    assert counts == expected
    written = {e["file"]: e for e in truth["exposures"]}
    assert {r.attributes["raw_filename"] for r in found} == set(written)
    for record in found:
        a = record.attributes
        original = folder / a["raw_filename"]
        assert a["raw_sha256"] == sha256(original.read_bytes())
        assert dt.datetime.fromisoformat(a["date_obs"]) == dt.datetime.fromisoformat(
            written[a["raw_filename"]]["date_obs"])
        chip = truth["chips"][fits.getheader(original, a["extension"])["EXTNAME"]]
        assert abs(a["overscan_level"] - chip["bias_level"]) < 0.3
    # a few files: the stored chip holds the camera's pixels and the catalogue's checksum
    for record in found[:: max(1, len(found) // 4)]:
        assert record.filename is not None
        stored = storage.get(record.filename)
        assert record.checksum == sha256(stored) and record.file_size == len(stored)
        with fits.open(io.BytesIO(stored)) as hdul, \
                fits.open(folder / record.attributes["raw_filename"]) as raw:
            assert np.array_equal(hdul[0].data, raw[record.attributes["extension"]].data)
    return found


def test_ingest_a_survey_night_by_night_and_whole(catalog_process: str, storage_process: str,
                                                 tmp_path: Path) -> None:
    survey = simulate_survey(tmp_path, PLAN, CAMERA, seed=SEED)
    first, second = (n["date"] for n in survey["nights"])
    truths = {n["date"]: json.loads((tmp_path / n["folder"] / "truth.json").read_text())
              for n in survey["nights"]}
    catalog = awe.CatalogClient(catalog_process, ADMIN_TOKEN)
    storage = StorageClient(storage_process, ADMIN_TOKEN)
    name = survey_refcat_name(CAMERA, SEED)
    refcats = QuerySpec(cls="ReferenceCatalog", where=Compare(op="eq", path=("name",),
                                                              value=name))
    try:
        # one night's folder: its frames, no reference catalogue (it lies beside the nights)
        out = awe_ingest(tmp_path / first, catalog_process, storage_process)
        assert "ingested 10 files" in out, out
        calibration_night = {"RawBiasFrame": 2 * CHIPS, "RawDomeFlatFrame": 2 * CHIPS,
                             "RawTwilightFlatFrame": 2 * CHIPS, "RawStandardFrame": 2 * CHIPS,
                             "RawScienceFrame": 2 * CHIPS}
        check_night(catalog, storage, tmp_path / first, truths[first], calibration_night)
        assert raw_frames(catalog, second) == [] and query(catalog, refcats) == []

        # the survey's folder: the reference catalogue, then the nights; the first is there
        out = awe_ingest(tmp_path, catalog_process, storage_process)
        assert f"survey {tmp_path}: 2 night(s), reference catalogue {name}" in out, out
        assert "ingested 13 files" in out and "10 file(s) already there" in out, out
        check_night(catalog, storage, tmp_path / first, truths[first], calibration_night)
        science = check_night(catalog, storage, tmp_path / second, truths[second],
                              {"RawScienceFrame": 2 * CHIPS})
        (refcat,) = query(catalog, refcats)
        written = (tmp_path / "refcat.fits").read_bytes()
        assert refcat.filename == f"raw/refcat/{name}/refcat.fits"
        assert refcat.checksum == sha256(written) and storage.get(refcat.filename) == written
        with fits.open(tmp_path / "refcat.fits") as hdul:
            assert refcat.attributes["n_stars"] == len(hdul["STARS"].data)
        # the one catalogue covers both nights' science and standard frames
        a = refcat.attributes
        frames = science + [r for r in raw_frames(catalog, first)
                            if r.type in ("RawScienceFrame", "RawStandardFrame")]
        for frame in frames:
            ra, dec = frame.attributes["ra"], frame.attributes["dec"]
            assert a["ra_min"] <= ra <= a["ra_max"] and a["dec_min"] <= dec <= a["dec_max"]

        # again: nothing new, still one catalogue
        out = awe_ingest(tmp_path, catalog_process, storage_process)
        assert "13 file(s) already there" in out, out
        assert len(query(catalog, refcats)) == 1
        assert len(raw_frames(catalog, first)) + len(raw_frames(catalog, second)) == 12 * CHIPS
    finally:
        catalog.close()
        storage.close()
