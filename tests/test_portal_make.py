"""The target maker in a real browser, as a person uses it.

A user chooses ReducedScienceFrame and the data ID of a simulated night (the night, the
chip, the filter, then the raw frame the page lists), reads the dry-run plan (everything
beneath is made, and why), and makes it. One input's file has been taken out of storage's
folder, so the first job fails, reproducibly, and what waits for it fails with it; the user
opens the failed job's log, which names the file; the file is put back and the user retries
from the log page; the run page follows the jobs until they are all done. The product's
pixels are then checked against the simulator's truth (the sky level through bias, flat and
gain), and another user cannot see the maker's jobs. Every wait is for a state the page
shows (``data-state`` of the run), never for a time.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import io
import re
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from astropy.io import fits
from astropy.stats import sigma_clipped_stats
from conftest import ADMIN_TOKEN, PROCESSES
from playwright.async_api import Page
from portal_stack import PortalStack, browser_page, portal_stack, screenshot, signed_in

import awecore as awe
from awecore.client import StorageClient
from awecore.ingest import Ingester, expand
from awecore.sim import PRESETS, NightPlan, simulate_night

pytestmark = pytest.mark.integration
__all__ = ["browser_page", "portal_stack"]

NIGHT = dt.date(2013, 3, 13)  # this module's own night in the session's catalogue
CAMERA = dataclasses.replace(PRESETS["tiny"], name="AWECAM", chips_x=2, chips_y=1, nx=64,
                             ny=96)
CHIP = "ccd50"
FILTER = "841"  # the night has a science exposure in each of the camera's two filters
#: what a reduced frame is made from, when nothing of that night exists yet
MADE = ["ReadNoise", "BiasFrame", "HotPixelMap", "DomeFlatFrame", "TwilightFlatFrame",
        "MasterFlatFrame", "ColdPixelMap", "ReducedScienceFrame"]
#: how long the page may take to reach a state (a bound on a hang, not a wait)
STATE_MS = 300_000


@pytest.fixture(scope="module")
def night(portal_stack: PortalStack, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """A tiny night, simulated and ingested (as the admin, shared with all sites); returns
    the truth, with the raw science frame of CHIP and a raw bias frame of it."""
    folder: Path = tmp_path_factory.mktemp("make-night")
    truth = simulate_night(folder, CAMERA, seed=9, date=NIGHT,
                           plan=NightPlan(n_bias=3, n_dome=2, n_twilight=2, science_fields=1,
                                          exposures_per_field=1, standard=False))
    with awe.CatalogClient(portal_stack.catalog, ADMIN_TOKEN) as catalog:
        report = Ingester(catalog, StorageClient(portal_stack.storage, ADMIN_TOKEN).put).ingest(
            expand([folder]))
        assert not report.failed, report.failed
        start = f"{NIGHT}T12:00:00"
        end = f"{NIGHT + dt.timedelta(days=1)}T12:00:00"
        raws = (awe.RawScienceFrame.chip.name == CHIP) & (
            awe.RawScienceFrame.filter.name == FILTER) & awe.RawScienceFrame.date_obs.between(
            start, end)
        raws._session = catalog
        (raw,) = [r.record for r in raws if r.record and r.record.type == "RawScienceFrame"]
        biases = (awe.RawBiasFrame.chip.name == CHIP) & awe.RawBiasFrame.date_obs.between(
            start, end)
        biases._session = catalog
        bias = next(iter(biases)).record
        assert raw is not None and bias is not None
        truth["raw"], truth["raw_bias"] = raw, bias
        truth["filter"] = FILTER
        truth["folder"] = folder
    return truth


def storage_file(name: str) -> Path:
    """Where storage keeps a file: its folder (the session's storage process) and the name."""
    return Path(PROCESSES["storage"].env["AWE_STORAGE_ROOT"]) / name


async def rows(page: Page, selector: str, *attrs: str) -> list[tuple[str | None, ...]]:
    out = []
    for row in await page.query_selector_all(selector):
        out.append(tuple([await row.get_attribute(a) for a in attrs]))
    return out


def expected_sky(truth: dict[str, Any]) -> float:
    """The sky of the science exposure in a reduced frame's units: electrons from the
    filter's sky brightness and zeropoint, through the chip's gain, on a flat normalised to
    median 1 (the true flat's median stays in, as the sky was multiplied by it)."""
    (exposure,) = [e for e in truth["exposures"] if e["type"] == "science"
                   and e["filter"] == truth["filter"]]
    filt = truth["filters"][truth["filter"]]
    sky_e = 10 ** (-0.4 * (filt["sky_mag"] - filt["zeropoint"])) * truth["pixel_scale"] ** 2 \
        * exposure["exptime"]
    with fits.open(truth["folder"] / "truth_flats.fits") as flats:
        flat = np.asarray(flats[CHIP].data)
    return float(sky_e / truth["chips"][CHIP]["gain"] * np.median(flat))


async def test_make_a_reduced_frame_watch_a_failure_retry_and_finish(
        portal_stack: PortalStack, browser_page: Page, night: dict[str, Any]) -> None:
    page, base = browser_page, portal_stack.portal
    name, token = portal_stack.make_user("maker")
    assert await signed_in(page, token) == name

    # choose the class: the form grows the class's dimensions (htmx swaps it in)
    await page.goto(f"{base}/make")
    await page.select_option("#make-cls", "ReducedScienceFrame")
    await page.wait_for_selector("#make-night")
    await page.fill("#make-night", NIGHT.isoformat())
    await page.fill("#make-chip", CHIP)
    await page.fill("#make-filter", night["filter"])
    await page.click("#plan-button")
    # a reduced frame is made from one raw frame: the page lists the night's, to pick one
    await page.wait_for_selector("#plan-need")
    raw = night["raw"].oid
    choices = [await r.get_attribute("value")
               for r in await page.query_selector_all("#make-raw input[type=radio]")]
    assert choices == [raw]
    await page.check(f"#make-raw input[value='{raw}']")
    await page.click("#plan-button")

    # the dry-run plan: every product beneath is made, each says why; nothing ran yet
    await page.wait_for_selector("#plan")
    plan = await rows(page, "#plan tr.plan-row", "data-action", "data-cls")
    assert plan == [("make", cls) for cls in MADE]
    assert "no valid MasterFlatFrame exists" in await page.inner_text(
        "#plan tr[data-cls=MasterFlatFrame]")
    assert raw in await page.inner_text("#plan tr[data-cls=ReducedScienceFrame]")
    assert await page.inner_text("#plan-summary") == "0 to use, 8 to make."
    await screenshot(page, "make-plan")

    # an input's file leaves storage's folder: its first job must fail, reproducibly
    bias_file = storage_file(night["raw_bias"].filename)
    aside = bias_file.with_name(bias_file.name + ".aside")
    shutil.move(bias_file, aside)
    try:
        await page.click("#make-button")
        await page.wait_for_selector("#run[data-state=failed]", timeout=STATE_MS)
        jobs = await rows(page, "#run tr.job", "data-cls", "data-status")
        assert [c for c, _ in jobs] == MADE
        assert dict(jobs) == {cls: "failed" for cls in MADE}  # the rest failed with it
        run_url = page.url
        await screenshot(page, "make-failed")
        # the failed job's log names the missing file
        await page.click("#run tr[data-cls=ReadNoise] a.log-link")
        await page.wait_for_selector("#job-log")
        assert night["raw_bias"].filename in await page.inner_text("#job-log")
        assert "Traceback" in await page.inner_text("#job-log")
        assert await page.get_attribute("#job-status", "data-status") == "failed"
        await screenshot(page, "make-log")
    finally:
        shutil.move(aside, bias_file)

    # the file is back: retry from the log page; the run page follows the jobs to the end
    await page.click("#retry-button")
    await page.wait_for_selector("#run[data-state=done]", timeout=STATE_MS)
    assert page.url == run_url
    jobs = await rows(page, "#run tr.job", "data-cls", "data-status")
    assert dict(jobs) == {cls: "done" for cls in MADE}
    await screenshot(page, "make-done")

    # the product: a reduced frame of that raw frame, its sky where the truth puts it
    link = page.locator("#run tr[data-cls=ReducedScienceFrame] a[href^='/objects/']")
    product = (await link.get_attribute("href") or "").removeprefix("/objects/")
    with awe.CatalogClient(portal_stack.catalog, token) as catalog:
        reduced = catalog.get(product).record
    assert reduced is not None and reduced.type == "ReducedScienceFrame"
    assert reduced.refs["raw"] == raw
    pixels = fits.getdata(io.BytesIO(StorageClient(portal_stack.storage, token).get(
        str(reduced.filename), sha256=reduced.checksum)))
    assert pixels.shape == (CAMERA.ny, CAMERA.nx) and np.isfinite(pixels).all()
    _, sky, _ = sigma_clipped_stats(pixels, sigma=3)
    assert sky == pytest.approx(expected_sky(night), rel=0.03)
    await link.click()
    await page.wait_for_url(re.compile(f"/objects/{product}$"))

    # the same target again: nothing left to make, the page says which object it is
    await page.goto(f"{base}/make?cls=ReducedScienceFrame&night={NIGHT}&chip={CHIP}"
                    f"&filter={night['filter']}&raw={raw}&plan=1")
    assert await page.inner_text("#plan-summary") == "8 to use, 0 to make."
    assert product in await page.inner_text("#up-to-date")

    # the jobs are the maker's: another user is told they do not exist
    job = run_url.split("jobs=")[1].split("%2C")[0]
    _, other = portal_stack.make_user("onlooker")
    await signed_in(page, other)
    response = await page.goto(f"{base}/make/jobs/{job}/log")
    assert response is not None and response.status == 404


async def test_bad_input_is_a_readable_4xx_page(portal_stack: PortalStack,
                                                browser_page: Page,
                                                night: dict[str, Any]) -> None:
    page, base = browser_page, portal_stack.portal
    _, token = portal_stack.make_user("careless")
    await signed_in(page, token)
    cases = {
        "/make?cls=NoSuchClass": 400,  # not a class a pipeline makes
        f"/make?cls=BiasFrame&night=2009-13-45&chip={CHIP}&plan=1": 400,  # no such day
        "/make/run?jobs=not-a-job": 400,
        "/make/jobs/01234567-89ab-cdef-0123-456789abcdef/log": 404,
    }
    for path, status in cases.items():
        response = await page.goto(base + path)
        assert response is not None and response.status == status, (path, response)
        text = await page.inner_text("main")
        assert text.strip() and "Traceback" not in text
    # a night without raw data: the plan's refusal is shown on the page, with its 404
    response = await page.goto(f"{base}/make?cls=BiasFrame&night=1999-01-01&chip={CHIP}&plan=1")
    assert response is not None and response.status == 404
    assert "RawBiasFrame" in await page.inner_text("#plan-error")
