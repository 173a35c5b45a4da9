"""docs/tutorial.md as a reader runs it: its python blocks, in order, in one namespace,
against the real catalog, storage and lineage services.

The night is the tutorial's (the tiny camera, 2012-12-12, seed 1212), shrunk as in
tests/test_targets.py so that making it takes seconds; the date is this test's alone, as the
catalogue and its chip names are shared with the other tests. Targets are made in this
process (AWE_STORAGE_URL set, no AWE_COMPUTE_URL). The lineage service follows the catalog
over its HTTP changelog; before each block the test waits until it has caught up, as a
reader at a prompt would never notice it lag.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import os
import re
import shutil
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from conftest import ADMIN_TOKEN, start_service

import awecore as awe
from awecore.client import StorageClient
from awecore.ingest import Ingester, expand
from awecore.sim import PRESETS, NightPlan, simulate_night
from awecore.stack import PostgresServer

pytestmark = pytest.mark.integration
TUTORIAL = Path(__file__).resolve().parents[1] / "docs" / "tutorial.md"
NIGHT = dt.date(2012, 12, 12)
CAMERA = dataclasses.replace(PRESETS["tiny"], name="AWECAM", chips_x=2, chips_y=1, nx=160,
                             ny=200)
PLAN = NightPlan(n_bias=4, n_dome=3, n_twilight=3, science_fields=1, exposures_per_field=2,
                 stars_per_chip=200)


def blocks(language: str) -> list[tuple[int, str]]:
    """(line, code) of each fenced block of ``language`` in the tutorial, in order."""
    found, lines = [], TUTORIAL.read_text().splitlines()
    i = 0
    while i < len(lines):
        if lines[i].strip() == f"```{language}":
            start, i = i + 1, i + 1
            while lines[i].strip() != "```":
                i += 1
            found.append((start + 1, "\n".join(lines[start:i])))
        i += 1
    return found


@pytest.fixture(scope="module")
def night(catalog_process: str, storage_process: str) -> Iterator[None]:
    folder = Path(tempfile.mkdtemp(prefix="awe-tutorial-"))
    try:
        simulate_night(folder, CAMERA, seed=1212, date=NIGHT, plan=PLAN)
        with awe.CatalogClient(catalog_process, ADMIN_TOKEN) as catalog, \
                StorageClient(storage_process, ADMIN_TOKEN) as storage:
            report = Ingester(catalog, storage.put).ingest(expand([folder]))
        assert not report.failed, report.failed
        yield
    finally:
        shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture(scope="module")
def lineage_url(postgres: PostgresServer, catalog_process: str,
                tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    admin = httpx.Client(base_url=catalog_process,
                         headers={"Authorization": f"Bearer {ADMIN_TOKEN}"})
    admin.post("/users", json={"name": "tutorial-lineage-svc", "is_service": True})
    token = admin.post("/tokens", json={"user": "tutorial-lineage-svc"}).json()["token"]
    admin.close()
    env = {**os.environ, "AWE_SITE": "test",
           "AWE_LINEAGE_DATABASE_URL": postgres.create_database("awe_lineage_tutorial"),
           "AWE_LINEAGE_CATALOG_URL": catalog_process, "AWE_LINEAGE_SERVICE_TOKEN": token,
           "AWE_LINEAGE_CATCH_UP_SECONDS": "0.2", "AWE_LINEAGE_LOG_LEVEL": "WARNING"}
    proc, url = start_service("lineage-tutorial", "awe_lineage.main:create_app", env,
                              tmp_path_factory.mktemp("lineage-tutorial"))
    try:
        yield url
    finally:
        proc.stop()


def wait_for_lineage(catalog_url: str, lineage_url: str, seconds: float = 60) -> None:
    """Until the lineage graph holds every change the catalog has made so far."""
    headers = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
    target = httpx.get(f"{catalog_url}/changes", params={"limit": 1},
                       headers=headers).json()["last_sequence"]
    deadline = time.monotonic() + seconds
    while (applied := httpx.get(f"{lineage_url}/health").json()["applied_sequence"]) < target:
        assert time.monotonic() < deadline, f"lineage at {applied}, catalog at {target}"
        time.sleep(0.1)


def test_the_tutorial_walks_the_seed_examples_in_order() -> None:
    code = "\n".join(text for _, text in blocks("python"))
    steps = ["(ReducedScienceFrame.filter == '841')", "x = [k.imstat.stdev for k in q]",
             "y = [k.flat.imstat.stdev for k in q]", "pylab.scatter(x, y)",
             "HotPixelMap.get(date=", "HotPixelMap.exists(", ".uptodate()",
             "HotPixelMap.make(", ".upstream()", ".savefig("]
    where = [code.find(step) for step in steps]
    assert -1 not in where, [s for s, w in zip(steps, where, strict=True) if w < 0]
    assert where == sorted(where), "the seed's examples are out of order"
    assert "](docs/tutorial.md)" in (TUTORIAL.parents[1] / "README.md").read_text()


def test_the_tutorial_runs(night: None, catalog_process: str, storage_process: str,
                           lineage_url: str, monkeypatch: pytest.MonkeyPatch,
                           capsys: pytest.CaptureFixture[str]) -> None:
    import matplotlib

    matplotlib.use("Agg", force=True)  # no display: figures are written, not shown
    monkeypatch.setenv("AWE_CATALOG_URL", catalog_process)
    monkeypatch.setenv("AWE_STORAGE_URL", storage_process)
    monkeypatch.setenv("AWE_LINEAGE_URL", lineage_url)
    monkeypatch.setenv("AWE_TOKEN", ADMIN_TOKEN)
    monkeypatch.delenv("AWE_COMPUTE_URL", raising=False)
    ns: dict[str, Any] = {"__name__": "__tutorial__"}
    for line, code in blocks("python"):
        wait_for_lineage(catalog_process, lineage_url)
        exec(compile(code, f"{TUTORIAL}:{line}", "exec"), ns)
    out = capsys.readouterr().out
    # 0. the night: a source list of each science exposure in 841 on each chip
    assert len(ns["source_lists"]) == CAMERA.n_chips * PLAN.exposures_per_field
    assert f"{len(ns['source_lists'])} source lists" in out
    # 1. the 5-line script, as the slides write it but for `and`, which says what to write
    assert ns["x"] and len(ns["x"]) == len(ns["y"]) == len(ns["q"]) >= PLAN.exposures_per_field
    assert all(v > 0 for v in ns["x"] + ns["y"])
    assert "a query has no truth value: combine conditions with & (and)" in out
    # 2. targets: get gave the map the source lists were made with; make made a newer one
    hot, new_hot = ns["hot"], ns["new_hot"]
    assert hot.chip.name == "ccd50" and hot.hot_pixels > 0 and new_hot != hot
    assert f"{hot.record.oid} is up to date" in out
    assert f"{hot.record.oid} is out of date: the best HotPixelMap now is " \
           f"{new_hot.record.oid}" in out
    # 3. lineage: down to the raw files; stale because of the newer map; as it was then
    types = {n.type for n in ns["graph"].nodes}
    assert {"SourceList", "ReducedScienceFrame", "HotPixelMap", "RawScienceFrame",
            "RawBiasFrame"} <= types
    assert ns["stale"].stale is True and not ns["sl"].uptodate()
    assert {n.oid for n in ns["then"].nodes} == {n.oid for n in ns["graph"].nodes}
    assert re.search(rf"SourceList {ns['sl'].record.oid} did not exist at "
                     r"2012-12-12T12:00:00\+00:00: it was made at ", out)
    # 4. the plot, written to a file
    plot = Path(ns["plot"])
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and plot.stat().st_size > 10_000
    assert len(ns["sources"]) == ns["sl"].number_of_sources > 0
