"""The VO service over a real catalog and storage, with a tiny reduced night in them.

A test module gets the fixtures with ``pytest_plugins = ["vo_stack"]``; they are named
``vo`` and ``vo_night``.

``vo_night`` (module scope): a simulated night of a two-chip camera, ingested, reduced to
SourceLists by the in-process planner (raw -> reduced -> astrometry -> photometry ->
sources), then its reduced frames and source lists (and their raw frames) set to privilege
5 (public: what anonymous VO clients see). ``vo`` (session scope): the vo service as a real
uvicorn process reading the catalog's database, forwarding to storage; its URL and the rest
in a ``VOStack``.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from conftest import ADMIN_TOKEN, PROCESSES, start_service

import awecore as awe
from awe_catalog.config import CatalogSettings
from awecore.client import StorageClient
from awecore.ingest import Ingester, expand
from awecore.sim import PRESETS, NightPlan, simulate_night

__all__ = ["NIGHT", "VONight", "VOStack", "vo_fixture", "vo_night_fixture"]

NIGHT = dt.date(2015, 5, 15)  # its own night (and seed, below): test_compute has 2007-07-07
CAMERA = dataclasses.replace(PRESETS["tiny"], name="AWECAM", chips_x=2, chips_y=1, nx=160,
                             ny=200)
CHIPS = ("ccd50", "ccd51")
PUBLIC = 5


@dataclass
class VOStack:
    url: str
    """the vo service: TAP at url + '/tap', SCS at '/scs', SIA at '/sia', ..."""
    catalog_url: str
    storage_url: str
    admin_token: str = ADMIN_TOKEN

    def admin(self) -> httpx.Client:
        """The catalog as the admin (to make users, objects, sources in a test)."""
        return httpx.Client(base_url=self.catalog_url, timeout=60,
                            headers={"Authorization": f"Bearer {self.admin_token}"})


@dataclass
class VONight:
    """What the night made: oids by chip, all at privilege 5."""

    reduced: dict[str, str] = field(default_factory=dict)
    sourcelists: dict[str, str] = field(default_factory=dict)
    raw: dict[str, str] = field(default_factory=dict)
    n_sources: dict[str, int] = field(default_factory=dict)
    truth: dict[str, Any] = field(default_factory=dict)


@pytest.fixture(scope="session", name="vo")
def vo_fixture(catalog_process: str, storage_process: str, catalog_settings: CatalogSettings,
       tmp_path_factory: pytest.TempPathFactory) -> Iterator[VOStack]:
    admin = httpx.Client(base_url=catalog_process,
                         headers={"Authorization": f"Bearer {ADMIN_TOKEN}"})
    admin.post("/users", json={"name": "vo-svc", "is_service": True})
    token = admin.post("/tokens", json={"user": "vo-svc"}).json()["token"]
    admin.close()
    env = {**os.environ, "AWE_SITE": catalog_settings.site,
           "AWE_VO_DATABASE_URL": catalog_settings.database_url.get_secret_value(),  # type: ignore[union-attr]
           "AWE_VO_CATALOG_URL": catalog_process, "AWE_VO_SERVICE_TOKEN": token,
           "AWE_VO_STORAGE_URL": storage_process, "AWE_VO_LOG_LEVEL": "INFO",
           "AWE_VO_AUTH_CACHE_SECONDS": "0"}
    proc, url = start_service("vo", "awe_vo.main:create_app", env,
                              tmp_path_factory.mktemp("vo"))
    PROCESSES["vo"] = proc
    try:
        yield VOStack(url, catalog_process, storage_process)
    finally:
        proc.stop()


@pytest.fixture(scope="module", name="vo_night")
def vo_night_fixture(vo: VOStack, tmp_path_factory: pytest.TempPathFactory) -> Iterator[VONight]:
    folder: Path = tmp_path_factory.mktemp("vo-night")
    truth = simulate_night(folder, CAMERA, seed=1507, date=NIGHT,
                           plan=NightPlan(n_bias=4, n_dome=3, n_twilight=3, science_fields=1,
                                          exposures_per_field=1, stars_per_chip=200))
    catalog = awe.CatalogClient(vo.catalog_url, ADMIN_TOKEN)
    storage = StorageClient(vo.storage_url, ADMIN_TOKEN)
    report = Ingester(catalog, storage.put).ingest(expand([folder]))
    assert not report.failed
    saved = {k: os.environ.get(k) for k in ("AWE_CATALOG_URL", "AWE_STORAGE_URL", "AWE_TOKEN")}
    os.environ.update({"AWE_CATALOG_URL": vo.catalog_url, "AWE_STORAGE_URL": vo.storage_url,
                       "AWE_TOKEN": ADMIN_TOKEN})
    awe.connect()
    night = VONight(truth=truth)
    try:
        for chip in CHIPS:
            q = ((awe.RawScienceFrame.chip.name == chip)
                 & (awe.RawScienceFrame.filter.name == "841")
                 & (awe.RawScienceFrame.date_obs.between(f"{NIGHT}T12:00:00",
                                                         f"{NIGHT}T23:59:59"))
                 & (awe.RawScienceFrame.type == "RawScienceFrame"))
            q._session = catalog
            (raw,) = list(q)
            assert raw.record is not None
            sl = awe.SourceList.get(NIGHT, chip, "841", raw=raw.record.oid)
            assert sl.record is not None and sl.frame is not None
            assert sl.frame.record is not None
            night.raw[chip] = raw.record.oid
            night.reduced[chip] = sl.frame.record.oid
            night.sourcelists[chip] = sl.record.oid
            night.n_sources[chip] = int(sl.number_of_sources)
            for oid in (raw.record.oid, sl.frame.record.oid, sl.record.oid):
                catalog.curate(oid, reason="published by the VO tests", privileges=PUBLIC)
        yield night
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
        catalog.close()
        storage.close()
