"""Ingest of a simulated night through real services: storage process, catalog process."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
from conftest import ADMIN_TOKEN

import awecore as awe
from awecore.client import StorageClient
from awecore.ingest import Ingester, expand
from awecore.sim import PRESETS, NightPlan, simulate_night

pytestmark = pytest.mark.integration
PLAN = NightPlan(n_bias=4, n_dome=2, n_twilight=2, science_fields=2, exposures_per_field=1,
                 stars_per_chip=20)


def count(catalog: awe.CatalogClient, cls: str, night: str) -> int:
    from awecore.query import Like, QuerySpec

    spec = QuerySpec(cls=cls, where=Like(path=("filename",), pattern=f"raw/AWECAM/{night}/*"))
    return catalog.count(spec)


def test_ingest_a_night_then_again(catalog_process: str, storage_process: str,
                                   tmp_path: Path) -> None:
    simulate_night(tmp_path / "night", PRESETS["tiny"], seed=21,
                   date=__import__("datetime").date(2004, 3, 1), plan=PLAN)
    bad = tmp_path / "night" / "AWECAM.broken.fits"
    bad.write_bytes(b"SIMPLE  =                    T" + b" " * 50)
    catalog = awe.CatalogClient(catalog_process, ADMIN_TOKEN)
    storage = StorageClient(storage_process, ADMIN_TOKEN)
    files = expand([tmp_path / "night"])
    # the exposures, the reference catalogue and the broken file
    assert len(files) == 4 + 4 + 4 + 4 + 2 + 1 + 1
    report = Ingester(catalog, storage.put).ingest(files)
    chips = 2
    assert report.frames == {"RawBiasFrame": 4 * chips, "RawDomeFlatFrame": 4 * chips,
                             "RawTwilightFlatFrame": 4 * chips, "RawScienceFrame": 4 * chips,
                             "RawStandardFrame": 2 * chips, "ReferenceCatalog": 1}
    assert list(report.failed) == [str(bad)] and "AWECAM.broken.fits" in report.failed[str(bad)]
    assert count(catalog, "RawBiasFrame", "2004-03-01") == 8
    assert count(catalog, "RawFrame", "2004-03-01") == 36
    # references: every frame knows its chip, and science frames their filter
    sci = awe.RawScienceFrame.chip.name == "ccd51"
    sci._session = catalog
    frames = [f for f in sci if f.record and f.record.filename.startswith("raw/AWECAM/2004")]
    assert len(frames) == 6 and {f.filter.name for f in frames} == {"841", "842"}
    stored = storage.get(frames[0].record.filename)  # type: ignore[union-attr]
    assert len(stored) == frames[0].record.file_size  # type: ignore[union-attr]
    # again: nothing new
    again = Ingester(catalog, storage.put).ingest(files)
    assert again.frames == {} and again.skipped == 37
    assert count(catalog, "RawFrame", "2004-03-01") == 36


def test_http_ingest_endpoint(catalog_process: str, storage_process: str,
                              tmp_path: Path) -> None:
    simulate_night(tmp_path, PRESETS["tiny"], seed=5, date=__import__("datetime").date(2005, 1, 2),
                   plan=NightPlan(n_bias=1, n_dome=0, n_twilight=0, science_fields=0,
                                  standard=False))
    (raw,) = sorted(tmp_path.glob("AWECAM.*.fits"))
    http = httpx.Client(base_url=storage_process,
                        headers={"Authorization": f"Bearer {ADMIN_TOKEN}"}, timeout=60)
    r = http.post("/ingest", params={"filename": raw.name}, content=raw.read_bytes())
    assert r.status_code == 201, r.text
    assert r.json()["frames"] == {"RawBiasFrame": 2} and len(r.json()["oids"]) == 2
    r = http.post("/ingest", params={"filename": raw.name}, content=raw.read_bytes())
    assert r.json()["frames"] == {} and r.json()["already_there"] == 2
    r = http.post("/ingest", params={"filename": "x.fits"}, content=b"not fits at all")
    assert r.status_code == 400 and "not a readable FITS" in r.json()["detail"]
