"""Ingest by content, through the real storage and catalog processes: a raw file is known
by its sha256 and its name; the same file again is a no-op, other content under its name,
the same content under another name and an exposure missing chips are refused, by
``awe ingest`` (per file, exit code 1) and by ``POST /ingest`` (409 / 400)."""

from __future__ import annotations

import datetime as dt
import hashlib
import io
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
from astropy.io import fits
from conftest import ADMIN_TOKEN, CLI_ENV

import awecore as awe
from awecore.client import StorageClient
from awecore.errors import Conflict
from awecore.ingest import Ingester, NameTaken, read_exposure
from awecore.query import Like, QuerySpec
from awecore.sim import PRESETS, NightPlan, simulate_night

pytestmark = pytest.mark.integration
#: two biases and a dome flat per filter: four files, no fields (so no reference catalogue)
PLAN = NightPlan(n_bias=2, n_dome=1, n_twilight=0, science_fields=0, standard=False)


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def cut_after(path: Path, extensions: int) -> bytes:
    """A copy cut at an extension boundary: still valid FITS, fewer chips."""
    with fits.open(path) as hdul:
        end = hdul.fileinfo(extensions + 1)["hdrLoc"]
    return path.read_bytes()[:end]


def frames(catalog: awe.CatalogClient, pattern: str) -> list[awe.ObjectOut]:
    spec = QuerySpec(cls="RawFrame", where=Like(path=("filename",), pattern=pattern))
    return [o.record for o in catalog.iter_query(spec) if o.record is not None]


def night(folder: Path, preset: str, seed: int, date: dt.date) -> dict[str, Any]:
    return simulate_night(folder, PRESETS[preset], seed=seed, date=date, plan=PLAN)


def awe_ingest(folder: Path, catalog_url: str,
               storage_url: str) -> subprocess.CompletedProcess[str]:
    env = {**CLI_ENV, "AWE_CATALOG_URL": catalog_url, "AWE_STORAGE_URL": storage_url,
           "AWE_TOKEN": ADMIN_TOKEN, "COLUMNS": "200"}
    return subprocess.run([sys.executable, "-m", "awecore.cli", "ingest", str(folder)],
                          capture_output=True, text=True, env=env, timeout=300, check=False)


def check_frames(catalog: awe.CatalogClient, storage: StorageClient, folder: Path,
                 truth: dict[str, Any], pattern: str, n: int) -> list[awe.ObjectOut]:
    """Sections, overscan level, trimmed size and checksums of the registered raw frames."""
    found = frames(catalog, pattern)
    assert len(found) == n
    for record in found:
        a = record.attributes
        original = folder / a["raw_filename"]
        assert a["raw_sha256"] == sha256(original.read_bytes())
        stored = storage.get(record.filename)
        assert record.checksum == sha256(stored) and record.file_size == len(stored)
        with fits.open(io.BytesIO(stored)) as hdul, fits.open(original) as raw:
            chip = truth["chips"][raw[a["extension"]].header.get("DETNAME")
                                  or raw[a["extension"]].header["EXTNAME"]]
            # raw data is sacred: the stored pixels are the camera's, untrimmed
            assert np.array_equal(hdul[0].data, raw[a["extension"]].data)
            assert hdul[0].header["DATASEC"] == a["data_section"]
            assert hdul[0].header["BIASSEC"] == a["overscan_section"]
        assert a["data_section"] == chip["data_section"]
        assert a["overscan_section"] == chip["overscan_section"]
        assert abs(a["overscan_level"] - chip["bias_level"]) < 0.5
        assert (a["nx"], a["ny"]) == (chip["nx"], chip["ny"])
    return found


def test_awe_ingest_by_content_omegacam(catalog_process: str, storage_process: str,
                                        tmp_path: Path) -> None:
    date = dt.date(2011, 5, 1)
    truth = night(tmp_path / "first", "omegacam-small", 31, date)
    r = awe_ingest(tmp_path / "first", catalog_process, storage_process)
    assert r.returncode == 0, r.stdout + r.stderr
    catalog = awe.CatalogClient(catalog_process, ADMIN_TOKEN)
    storage = StorageClient(storage_process, ADMIN_TOKEN)
    found = check_frames(catalog, storage, tmp_path / "first", truth,
                         "raw/OMEGACAM/2011-05-01/*", 4 * 4)
    # chips keep their names in storage ('#' is part of a name)
    assert {f.filename.rsplit("/", 1)[1] for f in found} == {
        f"ESO_CCD_#{n}.fits" for n in range(65, 69)}
    chips = awe.Chip.instrument.name == "OMEGACAM"
    chips._session = catalog
    assert {c.name for c in chips} >= {f"ESO_CCD_#{n}" for n in range(65, 69)}

    # the same files again: already there, nothing new
    r = awe_ingest(tmp_path / "first", catalog_process, storage_process)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "4 file(s) already there" in r.stdout
    assert len(frames(catalog, "raw/OMEGACAM/2011-05-01/*")) == 16

    # the same night with other pixels: every file refused, both checksums named
    night(tmp_path / "other", "omegacam-small", 7, date)
    r = awe_ingest(tmp_path / "other", catalog_process, storage_process)
    assert r.returncode == 1
    out = " ".join(r.stdout.split())
    for path in sorted((tmp_path / "other").glob("OMEGACAM.*.fits")):
        old = sha256((tmp_path / "first" / path.name).read_bytes())
        assert (f"refused {path}: {path.name}: other content under an existing name" in out
                and old in out and sha256(path.read_bytes()) in out), out
    assert len(frames(catalog, "raw/OMEGACAM/2011-05-01/*")) == 16

    # a copy under a new name, a copy cut to 2 of 4 chips, and one new file: the new one
    # goes in, each of the others is refused with its reason
    mixed = tmp_path / "mixed"
    mixed.mkdir()
    first = sorted((tmp_path / "first").glob("OMEGACAM.*.fits"))
    shutil.copy(first[0], mixed / "copy-of-a-bias.fits")
    (mixed / "cut-short.fits").write_bytes(cut_after(first[1], 2))
    night(tmp_path / "new", "omegacam-small", 32, dt.date(2011, 5, 2))
    new = sorted((tmp_path / "new").glob("OMEGACAM.*.fits"))[0]
    shutil.copy(new, mixed / new.name)
    r = awe_ingest(mixed, catalog_process, storage_process)
    assert r.returncode == 1
    out = " ".join(r.stdout.split())
    assert (f"copy-of-a-bias.fits: a duplicate of {first[0].name}" in out
            and "the same bytes are not ingested twice" in out), out
    assert "cut-short.fits: incomplete exposure" in out
    assert "missing ESO_CCD_#67, ESO_CCD_#68" in out
    assert f"refused {mixed / new.name}" not in out
    assert len(frames(catalog, "raw/OMEGACAM/2011-05-02/*")) == 4
    assert frames(catalog, "raw/OMEGACAM/*/copy-of-a-bias/*") == []
    assert frames(catalog, "raw/OMEGACAM/*/cut-short/*") == []


def test_post_ingest_by_content_widecam(catalog_process: str, storage_process: str,
                                        tmp_path: Path) -> None:
    date = dt.date(2011, 6, 1)
    truth = night(tmp_path / "first", "widecam", 41, date)
    files = sorted((tmp_path / "first").glob("WFC.*.fits"))
    http = httpx.Client(base_url=storage_process,
                        headers={"Authorization": f"Bearer {ADMIN_TOKEN}"}, timeout=120)
    for path in files:
        r = http.post("/ingest", params={"filename": path.name}, content=path.read_bytes())
        assert r.status_code == 201, r.text
        assert sum(r.json()["frames"].values()) == 4
    catalog = awe.CatalogClient(catalog_process, ADMIN_TOKEN)
    storage = StorageClient(storage_process, ADMIN_TOKEN)
    found = check_frames(catalog, storage, tmp_path / "first", truth,
                         "raw/WFC%2FINT%202/2011-06-01/*", 4 * 4)
    # names with spaces, '/' and '%' are stored under name_part names
    assert {f.filename.rsplit("/", 1)[1] for f in found} == {
        "CCD%201%2FA.fits", "CCD%202%2FB.fits", "CCD%203%2FC.fits", "CCD%204%2FD.fits"}
    frame = awe.RawFrame.filename.like("raw/WFC%2FINT%202/2011-06-01/*")
    frame._session = catalog
    seen = list(frame)
    assert {f.chip.name for f in seen} == {"CCD 1/A", "CCD 2/B", "CCD 3/C", "CCD 4/D"}
    assert {f.instrument.name for f in seen} == {"WFC/INT 2"}
    flats = [f for f in seen if f.record is not None and f.record.type == "RawDomeFlatFrame"]
    assert {f.filter.name for f in flats} == {"r 50%", "Harris V"}

    # again: 201 with nothing new
    r = http.post("/ingest", params={"filename": files[0].name}, content=files[0].read_bytes())
    assert r.status_code == 201 and r.json()["frames"] == {} and r.json()["already_there"] == 4

    # other content under an existing name: 409, naming both checksums
    night(tmp_path / "other", "widecam", 7, date)
    other = tmp_path / "other" / files[0].name
    r = http.post("/ingest", params={"filename": other.name}, content=other.read_bytes())
    assert r.status_code == 409 and r.json()["error"] == "raw_name_taken", r.text
    assert "other content under an existing name" in r.json()["detail"]
    assert sha256(files[0].read_bytes()) in r.json()["detail"]
    assert sha256(other.read_bytes()) in r.json()["detail"]

    # the same bytes under a new name: 409, naming the file it duplicates
    r = http.post("/ingest", params={"filename": "again.fits"}, content=files[1].read_bytes())
    assert r.status_code == 409 and r.json()["error"] == "duplicate_raw_file", r.text
    assert f"a duplicate of {files[1].name}" in r.json()["detail"]

    # 2 of 4 chips (valid FITS): 400, the missing chips named (the catalogue knows them)
    r = http.post("/ingest", params={"filename": "cut.fits"}, content=cut_after(files[2], 2))
    assert r.status_code == 400 and r.json()["error"] == "incomplete_exposure", r.text
    assert "missing CCD 3/C, CCD 4/D" in r.json()["detail"]
    r = http.post("/ingest", params={"filename": "../x.fits"}, content=files[2].read_bytes())
    assert r.status_code == 400
    assert len(frames(catalog, "raw/WFC%2FINT%202/2011-06-01/*")) == 16


def test_a_taken_storage_name_counts_only_with_the_same_bytes(
        catalog_process: str, storage_process: str, tmp_path: Path) -> None:
    """An interrupted ingest left a chip in storage: that file counts as stored only if it
    holds the very bytes; other bytes there refuse the file, naming the stored checksum."""
    night(tmp_path, "omegacam-small", 33, dt.date(2011, 7, 1))
    paths = sorted(tmp_path.glob("OMEGACAM.*.fits"))
    catalog = awe.CatalogClient(catalog_process, ADMIN_TOKEN)
    storage = StorageClient(storage_process, ADMIN_TOKEN)
    first, second = (read_exposure(p, p.name) for p in paths[:2])
    storage.put(first.parts[0].name, first.parts[0].data)  # as an interrupted ingest left it
    junk = os.urandom(1000)
    storage.put(second.parts[1].name, junk)
    ingester = Ingester(catalog, storage.put)
    report = ingester.ingest(paths[:2])
    assert report.frames == {"RawBiasFrame": 4}
    assert list(report.failed) == [str(paths[1])]
    assert sha256(junk) in report.failed[str(paths[1])]
    assert second.parts[1].sha256 in report.failed[str(paths[1])]

    # a store that says Conflict for any taken name, as storage once did: the checksum decides
    def strict(name: str, data: bytes) -> object:
        try:
            storage.head(name)
        except awe.NotFound:
            return storage.put(name, data)
        raise Conflict(f"{name} exists already; files are written once")

    def checksum(name: str) -> str | None:
        return storage.head(name).get("x-checksum-sha256")

    third = read_exposure(paths[2], paths[2].name)
    storage.put(third.parts[0].name, third.parts[0].data)
    # without a way to read the stored checksum, a taken name is refused, never assumed
    with pytest.raises(NameTaken, match="stored sha256 unknown"):
        Ingester(catalog, strict).ingest_exposure(third)
    report = Ingester(catalog, strict, checksum=checksum).ingest_exposure(third)
    assert report.frames == {"RawDomeFlatFrame": 4}
    fourth = read_exposure(paths[3], paths[3].name)
    storage.put(fourth.parts[0].name, junk)
    with pytest.raises(NameTaken, match=sha256(junk)):
        Ingester(catalog, strict, checksum=checksum).ingest_exposure(fourth)
    assert frames(catalog, f"raw/OMEGACAM/2011-07-01/{paths[3].stem}/*") == []
