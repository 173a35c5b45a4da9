"""The portal's object viewer in a real browser, as a person uses it.

A tiny camera night is ingested and one user (alice) has its SourceList made by the compute
service. In Chromium she signs in, sees the classes with their counts, runs a query and
pages through it, opens the SourceList and follows its references down to the raw frames,
sees the preview (pixels checked), downloads the FITS file (bytes checked), exports its
lineage, and reads why a product is stale once a calibration is set bad. Another user (bob)
never sees alice's private objects, and a bad oid or query is a readable 4xx page. Every
request the browser makes stays on the portal (``browser_page`` fails otherwise).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import io
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import pytest
from astropy.io import fits
from conftest import ADMIN_TOKEN
from playwright.async_api import Page
from portal_stack import (
    PortalStack,
    browser_page,
    portal_stack,
    preview_and_download,
    screenshot,
    signed_in,
)

import awecore as awe
from awecore.client import StorageClient
from awecore.ingest import Ingester, expand
from awecore.sim import PRESETS, NightPlan, simulate_night

pytestmark = pytest.mark.integration
__all__ = ["browser_page", "portal_stack"]  # fixtures, imported for pytest

NIGHT = dt.date(2011, 3, 3)
CAMERA = dataclasses.replace(PRESETS["tiny"], chips_x=1, chips_y=1, nx=160, ny=200)
#: this night's raw frames (other modules simulate the same camera on other nights)
LOW, HIGH = f"{NIGHT}T12:00:00", f"{NIGHT + dt.timedelta(days=1)}T12:00:00"
FILTER = "841"


@dataclasses.dataclass
class Night:
    alice: str
    alice_token: str
    bob: str
    bob_token: str
    chip: str
    sourcelist: dict[str, Any]
    raw: str  # the science frame the source list was made from
    private: str  # an object of alice's, privileges 1


def _catalog(stack: PortalStack, token: str) -> httpx.Client:
    return httpx.Client(base_url=stack.catalog, timeout=60,
                        headers={"Authorization": f"Bearer {token}"})


@pytest.fixture(scope="module")
def night(portal_stack: PortalStack, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Night]:
    folder: Path = tmp_path_factory.mktemp("portal-night")
    simulate_night(folder, CAMERA, seed=1103, date=NIGHT,
                   plan=NightPlan(n_bias=3, n_dome=2, n_twilight=2, science_fields=1,
                                  exposures_per_field=1, stars_per_chip=150))
    with awe.CatalogClient(portal_stack.catalog, ADMIN_TOKEN) as catalog:
        report = Ingester(catalog, StorageClient(portal_stack.storage, ADMIN_TOKEN).put).ingest(
            expand([folder]))
    assert not report.failed, report.failed
    alice, alice_token = portal_stack.make_user("alice")
    bob, bob_token = portal_stack.make_user("bob")
    with _catalog(portal_stack, alice_token) as catalog:
        spec = {"cls": "RawScienceFrame", "where": {"node": "and", "items": [
            {"node": "compare", "op": "eq", "path": ["type"], "value": "RawScienceFrame"},
            {"node": "compare", "op": "eq", "path": ["filter", "name"], "value": FILTER},
            {"node": "between", "path": ["date_obs"], "low": LOW, "high": HIGH}]},
            "order_by": [{"path": ["date_obs"]}]}
        got = catalog.post("/query", json={"query": spec, "limit": 10})
        assert got.status_code == 200, got.text
        raw = got.json()["objects"][0]  # the field's first exposure
        chip = catalog.post("/objects/get", json={"oids": [raw["refs"]["chip"]]}).json()[
            "objects"][0]["attributes"]["name"]
        private = catalog.post("/objects", json={
            "type": "SourceList", "privileges": 1,
            "attributes": {"number_of_sources": 4242}})
        assert private.status_code == 201, private.text
    target = {"cls": "SourceList", "date": NIGHT.isoformat(), "chip": chip, "filter": FILTER,
              "raw": raw["oid"]}
    made = httpx.post(f"{portal_stack.compute}/jobs", json=target, timeout=120,
                      headers={"Authorization": f"Bearer {alice_token}"})
    assert made.status_code == 201, made.text
    jobs = portal_stack.jobs_done([j["id"] for j in made.json()["jobs"]], alice_token)
    assert all(j["status"] == "done" for j in jobs), jobs
    with _catalog(portal_stack, alice_token) as catalog:
        sourcelist = catalog.get(f"/objects/{made.json()['target']}").json()
    assert sourcelist["type"] == "SourceList" and sourcelist["privileges"] == 1
    portal_stack.lineage_caught_up()
    yield Night(alice, alice_token, bob, bob_token, chip, sourcelist, raw["oid"],
                private.json()["oid"])


async def test_sign_in_is_checked_and_protected(portal_stack: PortalStack,
                                                browser_page: Page) -> None:
    page = browser_page
    base = portal_stack.portal
    # a page that needs a user, asked for before signing in, leads to the sign-in form, then
    # back to it (the world's objects are shown without signing in: test_portal_public.py)
    await page.goto(f"{base}/qc")
    assert "/signin" in page.url
    await page.fill("#token", "awe_not-a-token-of-anyone")
    await page.click("#signin")
    assert "was not accepted" in await page.inner_text("#signin-error")
    await screenshot(page, "portal-signin")
    # the session cookie is sealed, HttpOnly and SameSite: no script can read it
    cookies = {c["name"]: c for c in await page.context.cookies()}
    assert cookies["awe_portal"]["httpOnly"] and cookies["awe_portal"]["sameSite"] == "Lax"
    assert ADMIN_TOKEN not in cookies["awe_portal"]["value"]
    assert await page.evaluate("document.cookie") == ""
    # a form posted without this session's CSRF token is refused, with a page saying why
    forged = await page.request.post(f"{base}/signin", form={"token": ADMIN_TOKEN,
                                                             "csrf_token": "guess"})
    assert forged.status == 403 and "CSRF" in await forged.text()
    assert await signed_in(page, ADMIN_TOKEN) == "admin"
    assert page.url.endswith("/objects")  # where it was going
    await page.click("text=Sign out")
    await page.wait_for_selector("#token")
    await page.goto(f"{base}/qc")
    assert "/signin" in page.url


async def test_classes_query_and_paging(portal_stack: PortalStack, night: Night,
                                        browser_page: Page) -> None:
    page = browser_page
    assert await signed_in(page, night.alice_token) == night.alice
    await page.goto(f"{portal_stack.portal}/objects")
    # each class's figure is what the API counts for it, subclasses included (an abstract
    # class; a class with a subclass of its own: RawStandardFrame is a RawScienceFrame)
    for cls in ("RawFrame", "RawScienceFrame", "RawBiasFrame", "DBObject"):
        with _catalog(portal_stack, night.alice_token) as catalog:
            wanted = catalog.post("/query/count", json={"cls": cls}).json()["count"]
        cell = page.locator(f"tr[data-class='{cls}'] td.count")  # filled in as it loads
        assert int(await cell.inner_text()) == wanted, cls
    assert wanted > 10
    await screenshot(page, "portal-classes")
    # the query box takes what `awe query` takes; 5 a page, then the next page
    await page.click("tr[data-class='RawBiasFrame'] a")
    expression = (f"RawBiasFrame.date_obs.between('{LOW}', '{HIGH}') & "
                  f"(RawBiasFrame.chip.name == '{night.chip}')")
    await page.fill("#q", expression)
    await page.select_option("select[name=limit]", "25")
    await page.click("#run")
    assert "3 results" in await page.inner_text("#query-total")
    rows = page.locator("#results tbody tr")
    assert await rows.count() == 3
    assert (await page.locator("#results tbody tr td:nth-child(2)").all_inner_texts()) == \
        ["RawBiasFrame"] * 3
    await screenshot(page, "portal-query")
    await page.goto(f"{portal_stack.portal}/query?q={quote(expression)}&limit=2")
    first = await page.locator("#results td.oid a").all_inner_texts()
    await page.click("#next")
    second = await page.locator("#results td.oid a").all_inner_texts()
    assert len(first) == 2 and len(second) == 1 and not set(first) & set(second)
    await page.click("#prev")
    assert await page.locator("#results td.oid a").all_inner_texts() == first
    # a bad query is a readable page with a 400, never a 500
    response = await page.goto(f"{portal_stack.portal}/query?q=RawFrame.nonsense == 1")
    assert response is not None and response.status == 400
    assert "has no attribute 'nonsense'" in await page.inner_text("#query-error")


async def test_from_a_sourcelist_to_its_raw_frames(portal_stack: PortalStack, night: Night,
                                                   browser_page: Page) -> None:
    page = browser_page
    await signed_in(page, night.alice_token)
    sl = night.sourcelist
    await page.goto(f"{portal_stack.portal}/query?q=SourceList.number_of_sources == "
                    f"{sl['attributes']['number_of_sources']}")
    await page.click(f"#results a[href='/objects/{sl['oid']}']")
    assert await page.inner_text("#object-title") == f"SourceList {sl['oid']}"
    # attributes, software version, parameters, validity, flags, lineage
    attributes = await page.inner_text("#attributes")
    assert str(sl["attributes"]["number_of_sources"]) in attributes
    assert sl["software_version"] in await page.inner_text("#software")
    assert "good" in await page.inner_text("#is-valid")
    await page.wait_for_selector("#lineage-graph svg")  # the lineage part, as it loads
    assert "Up to date" in await page.inner_text("#staleness")
    await screenshot(page, "portal-object")
    # follow the references: the source list's frame, then that frame's raw frame
    await page.click("#refs-out a[data-ref='frame']")
    assert (await page.inner_text("#object-title")).startswith("ReducedScienceFrame ")
    reduced = page.url.rsplit("/", 1)[-1]
    assert "SourceList" in await page.inner_text("#refs-in")  # referenced by, both ways
    await page.wait_for_function("() => document.querySelector('#preview').complete")
    await page.wait_for_selector("#lineage-graph svg")
    await screenshot(page, "portal-reduced-frame")  # the README's picture (docs/portal.png)
    await page.click("#refs-out a[data-ref='raw']")
    assert await page.inner_text("#object-title") == f"RawScienceFrame {night.raw}"
    # the raw frame's preview: a PNG of its pixels, and the FITS file itself
    data = await preview_and_download(page, portal_stack.portal, night.raw,
                                      "portal-raw-frame")
    with _catalog(portal_stack, night.alice_token) as catalog:
        raw = catalog.get(f"/objects/{night.raw}").json()
    assert len(data) == raw["file_size"]
    assert hashlib.sha256(data).hexdigest() in raw["checksum"]
    with fits.open(io.BytesIO(data)) as hdus:
        assert any(h.data is not None and h.data.ndim == 2 for h in hdus)
    # the reduced frame's lineage as PROV-JSON and OpenLineage
    await page.goto(f"{portal_stack.portal}/objects/{reduced}")
    prov = await page.request.get(f"{portal_stack.portal}/objects/{reduced}/prov.json")
    assert prov.status == 200
    doc = json.loads(await prov.text())
    assert f"awe:{night.raw}" in json.dumps(doc)
    events = await page.request.get(f"{portal_stack.portal}/objects/{reduced}/openlineage.json")
    assert events.status == 200 and isinstance(json.loads(await events.text()), list)
    assert await page.locator("#prov").get_attribute("href") == f"/objects/{reduced}/prov.json"
    # the lineage part stands alone too (a browser without scripts follows the link)
    alone = await page.request.get(f"{portal_stack.portal}/objects/{reduced}/lineage")
    assert alone.status == 200 and 'id="lineage-graph"' in await alone.text()


async def test_why_stale(portal_stack: PortalStack, night: Night, browser_page: Page) -> None:
    page = browser_page
    await signed_in(page, night.alice_token)
    with _catalog(portal_stack, night.alice_token) as catalog:
        reduced = catalog.get(f"/objects/{night.sourcelist['refs']['frame']}").json()
        bias = reduced["refs"]["bias"]
        got = catalog.patch(f"/objects/{bias}", json={"is_valid": 0, "reason": "portal test"})
        assert got.status_code == 200, got.text
    portal_stack.lineage_caught_up()
    await page.goto(f"{portal_stack.portal}/objects/{reduced['oid']}")
    assert "Stale" in await page.inner_text("#staleness")
    reasons = await page.inner_text("#stale-reasons")
    assert "input bias (BiasFrame)" in reasons and bias in await page.locator(
        "#stale-reasons a").first.get_attribute("href")  # type: ignore[operator]
    await screenshot(page, "portal-why-stale")
    # the bias itself shows its verdict and who set it, and why
    await page.goto(f"{portal_stack.portal}/objects/{bias}")
    assert "bad" in await page.inner_text("#is-valid")
    assert "portal test" in await page.inner_text("#history")


async def test_other_users_private_objects_never_appear(portal_stack: PortalStack,
                                                        night: Night,
                                                        browser_page: Page) -> None:
    page = browser_page
    base = portal_stack.portal
    assert await signed_in(page, night.bob_token) == night.bob
    for oid in (night.private, night.sourcelist["oid"]):
        for path in (f"/objects/{oid}", f"/objects/{oid}/preview.png",
                     f"/objects/{oid}/download", f"/objects/{oid}/prov.json",
                     f"/objects/{oid}/lineage"):
            response = await page.goto(f"{base}{path}")
            assert response is not None and response.status == 404, path
            # the error page names the oid asked for, and nothing of the object
            assert await page.locator("#object-title").count() == 0
            assert "4242" not in await page.content()
    await page.goto(f"{base}/query?q=SourceList.number_of_sources == 4242")
    assert "0 results" in await page.inner_text("#query-total")
    await page.goto(f"{base}/query?q=SourceList.number_of_sources == "
                    f"{night.sourcelist['attributes']['number_of_sources']}")
    assert night.sourcelist["oid"] not in await page.content()
    # alice sees her own
    await page.click("text=Sign out")
    await signed_in(page, night.alice_token)
    await page.goto(f"{base}/query?q=SourceList.number_of_sources == 4242")
    assert night.private in await page.inner_text("#results")


async def test_bad_oid_is_a_readable_4xx(portal_stack: PortalStack,
                                         browser_page: Page) -> None:
    page = browser_page
    _, token = portal_stack.make_user("carol")
    await signed_in(page, token)
    for path, status in (("/objects/not-an-oid", 404),
                         ("/objects/018f0000-0000-7000-8000-000000000000", 404),
                         ("/query?limit=0&q=RawFrame", 400),
                         ("/query?q=RawFrame.order_by('date_obs')", 400),
                         ("/no/such/page", 404)):
        response = await page.goto(f"{portal_stack.portal}{path}")
        assert response is not None and response.status == status, (path, response)
        text = await page.inner_text("main")
        assert "Internal" not in text
        # an error page says the status; the query page keeps the query and says what is wrong
        assert str(status) in text or await page.locator("#query-error").count() == 1, text
    await screenshot(page, "portal-not-found")
