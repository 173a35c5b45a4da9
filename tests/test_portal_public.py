"""The world's objects in the portal without signing in (issue 15: privilege 5 is the world).

An anonymous visitor browses what the API serves an anonymous caller, and nothing more: in a
real Chromium (every request recorded, none may leave the portal's host) they see the
classes with counts, query, open a level-5 frame, its preview (pixels checked) and download
its FITS file (bytes checked against the catalogue's checksum); a level-4 frame (every
signed-in user of every site) and a level-1 frame (its creator's) are "not found" by URL
and never in the counts or the query results. Pages that change things or belong to a user
(QC, make, timeline) send them to sign in; forms stay CSRF-protected. Signed in, a user
still sees their own objects. The portal asks the services with no token at all for an
anonymous visitor: the services' anonymous answers are the reference every figure is
checked against.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
import io
import json
import secrets
from collections.abc import Iterator
from dataclasses import dataclass
from urllib.parse import quote

import httpx
import numpy as np
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

pytestmark = pytest.mark.integration
__all__ = ["browser_page", "portal_stack"]  # fixtures, imported for pytest

#: this module's own night and seed (the frames' dates and pixels)
NIGHT = dt.datetime(2016, 1, 16, 23, tzinfo=dt.UTC)
SEED = 1616


@dataclass
class World:
    tag: str
    chip: str  # the chip's name (privilege 5)
    raw: str  # at 3: the public frame's input, which the world may not see
    frames: dict[int, str]  # by privilege: 5 and 4 by the admin, 1 by carol
    checksum: str  # the level-5 frame's file, as the catalogue records it
    carol: str
    carol_token: str


def _made(r: httpx.Response) -> str:
    assert r.status_code == 201, r.text
    return str(r.json()["oids"][0])


def _fits(rng: np.random.Generator) -> bytes:
    """A small frame with a gradient, stars and noise: a preview has something to show."""
    y, x = np.mgrid[0:120, 0:100]
    image = 1000.0 + 2.0 * x + rng.normal(0, 10, (120, 100))
    for sy, sx in rng.uniform(10, 90, (12, 2)):
        image += 3000.0 * np.exp(-((x - sx) ** 2 + (y - sy) ** 2) / 4.0)
    hdu = fits.PrimaryHDU(image.astype(np.float32))
    hdu.header["DATE-OBS"] = NIGHT.isoformat()
    out = io.BytesIO()
    hdu.writeto(out)
    return out.getvalue()


@pytest.fixture(scope="module")
def world(portal_stack: PortalStack) -> Iterator[World]:
    tag = secrets.token_hex(4)
    rng = np.random.default_rng(SEED)
    carol, carol_token = portal_stack.make_user("carol")
    auth = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
    frames: dict[int, str] = {}
    with httpx.Client(base_url=portal_stack.catalog, headers=auth, timeout=60) as cat, \
            httpx.Client(base_url=portal_stack.storage, headers=auth, timeout=60) as sto:
        chip = _made(cat.post("/objects/batch", json={"objects": [
            {"type": "Chip", "privileges": 5, "attributes": {"name": f"public-{tag}"}}]}))
        raw = _made(cat.post("/objects/batch", json={"objects": [
            {"type": "RawScienceFrame", "privileges": 3, "refs": {"chip": chip},
             "attributes": {"date_obs": NIGHT.isoformat()}}]}))
        checksum = ""
        for level in (5, 4, 1):
            data = _fits(rng)
            name = f"red/portal-public-{tag}/level{level}.fits"
            put = sto.put(f"/files/{name}", content=data)
            assert put.status_code == 201, put.text
            sha = hashlib.sha256(data).hexdigest()
            assert put.json()["sha256"] == sha
            body = {"type": "ReducedScienceFrame", "privileges": level, "filename": name,
                    "file_size": len(data), "checksum": sha,
                    "refs": {"chip": chip, "raw": raw}}
            if level == 1:  # carol's own, private to her
                with httpx.Client(base_url=portal_stack.catalog, timeout=60, headers={
                        "Authorization": f"Bearer {carol_token}"}) as mine:
                    frames[level] = _made(mine.post("/objects/batch",
                                                    json={"objects": [body]}))
            else:
                frames[level] = _made(cat.post("/objects/batch", json={"objects": [body]}))
            if level == 5:
                checksum = sha
    portal_stack.lineage_caught_up()
    yield World(tag, f"public-{tag}", raw, frames, checksum, carol, carol_token)


def _count(stack: PortalStack, cls: str, token: str | None = None) -> int:
    """How many objects of ``cls`` the catalog counts for a caller (None: anonymous, no
    Authorization header at all)."""
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    got = httpx.post(f"{stack.catalog}/query/count", json={"cls": cls}, headers=headers,
                     timeout=60)
    assert got.status_code == 200, got.text
    return int(got.json()["count"])


def _query(world: World) -> str:
    return f"ReducedScienceFrame.chip.name == '{world.chip}'"


async def test_anonymous_visitor_browses_the_world(portal_stack: PortalStack, world: World,
                                                   browser_page: Page) -> None:
    page = browser_page
    base = portal_stack.portal
    # the front page is the objects, for everyone; the header offers to sign in
    await page.goto(f"{base}/")
    assert page.url == f"{base}/objects"
    assert await page.locator("#user").count() == 0
    assert (await page.inner_text("#signin-link")).strip() == "Sign in"
    # the counts are what the API counts for an anonymous caller: neither the level-4 nor
    # carol's level-1 frame is in them
    for cls in ("ReducedScienceFrame", "Chip", "DBObject"):
        cell = page.locator(f"tr[data-class='{cls}'] td.count")  # filled in as it loads
        assert int(await cell.inner_text()) == _count(portal_stack, cls), cls
    assert _count(portal_stack, "ReducedScienceFrame", world.carol_token) >= \
        _count(portal_stack, "ReducedScienceFrame") + 2  # carol sees hers and the level 4
    await screenshot(page, "portal-public-classes")
    # the query: the level-5 frame alone
    await page.goto(f"{base}/query?q={quote(_query(world))}")
    assert (await page.inner_text("#query-total")).startswith("1 result,")
    results = await page.inner_text("#results")
    assert world.frames[5] in results
    assert world.frames[4] not in results and world.frames[1] not in results
    # the object, its chip (public) and not its raw frame (privilege 3)
    await page.click(f"#results a[href='/objects/{world.frames[5]}']")
    assert await page.inner_text("#object-title") == f"ReducedScienceFrame {world.frames[5]}"
    await page.wait_for_selector("#lineage-graph svg")  # the lineage part, as it loads
    assert world.raw not in await page.content()
    data = await preview_and_download(page, base, world.frames[5], "portal-public-object")
    assert hashlib.sha256(data).hexdigest() == world.checksum
    with fits.open(io.BytesIO(data)) as hdus:
        assert hdus[0].data.shape == (120, 100)
    # its lineage as PROV-JSON and OpenLineage; the hidden input is not named
    for path in ("prov.json", "openlineage.json", "lineage"):
        got = await page.request.get(f"{base}/objects/{world.frames[5]}/{path}")
        assert got.status == 200, path
        assert world.raw not in await got.text(), path
    # the level-4 and level-1 frames: not found, by every URL, naming nothing of them
    for level in (4, 1):
        oid = world.frames[level]
        for path in (f"/objects/{oid}", f"/objects/{oid}/preview.png",
                     f"/objects/{oid}/download", f"/objects/{oid}/prov.json",
                     f"/objects/{oid}/openlineage.json", f"/objects/{oid}/lineage"):
            response = await page.goto(f"{base}{path}")
            assert response is not None and response.status == 404, (level, path)
            assert await page.locator("#object-title").count() == 0
            assert f"level{level}.fits" not in await page.content()


async def test_anonymous_visitor_is_sent_to_sign_in_to_change_things(
        portal_stack: PortalStack, world: World, browser_page: Page) -> None:
    page = browser_page
    base = portal_stack.portal
    for path in ("/qc", "/make", f"/timeline?chip={world.chip}"):
        await page.goto(f"{base}{path}")
        assert "/signin?next=" in page.url, path
        await page.wait_for_selector("#token")
    # a form: refused without this session's CSRF token, and to sign in with it
    await page.goto(f"{base}/objects")
    forged = await page.request.post(f"{base}/qc/verdict", form={
        "oid": world.frames[5], "is_valid": "0", "comment": "anonymous", "csrf_token": "x"},
        max_redirects=0)
    assert forged.status == 403 and "CSRF" in await forged.text()
    csrf = json.loads(await page.get_attribute("body", "hx-headers") or "{}")["X-CSRF-Token"]
    for path, form in (("/qc/verdict", {"oid": world.frames[5], "is_valid": "0",
                                        "comment": "anonymous"}),
                       ("/timeline/window", {"oid": world.frames[5],
                                             "timestamp_start": NIGHT.isoformat(),
                                             "timestamp_end": NIGHT.isoformat(),
                                             "reason": "anonymous"}),
                       ("/signout", {})):
        sent = await page.request.post(f"{base}{path}", form={**form, "csrf_token": csrf},
                                       max_redirects=0)
        if path == "/signout":  # nothing to sign out of: back to the sign-in page
            assert sent.status == 303, path
            continue
        assert sent.status == 303 and sent.headers["location"].startswith("/signin?next="), \
            (path, sent.status)
    # nothing changed
    got = await asyncio.to_thread(httpx.get, f"{portal_stack.catalog}/objects/{world.frames[5]}",
                                  timeout=60)
    assert got.status_code == 200 and got.json()["is_valid"] != 0


async def test_signed_in_user_still_sees_their_own(portal_stack: PortalStack, world: World,
                                                   browser_page: Page) -> None:
    page = browser_page
    base = portal_stack.portal
    assert await signed_in(page, world.carol_token) == world.carol
    assert (await page.inner_text("#user-site")).startswith("@")
    assert await page.locator("#signin-link").count() == 0
    await page.goto(f"{base}/query?q={quote(_query(world))}")
    results = await page.inner_text("#results")
    for level in (5, 4, 1):
        assert world.frames[level] in results, level
    cell = page.locator("tr[data-class='ReducedScienceFrame'] td.count")
    await page.goto(f"{base}/objects")
    assert int(await cell.inner_text()) == _count(portal_stack, "ReducedScienceFrame",
                                                  world.carol_token)
    response = await page.goto(f"{base}/objects/{world.frames[1]}")
    assert response is not None and response.status == 200
    assert world.raw in await page.content()  # her site's raw frame, at 3
    await page.goto(f"{base}/qc")
    assert "/signin" not in page.url
