"""The portal's browser tests: the services as processes, and a real browser that records
every request it makes.

A portal test module imports its fixtures from here::

    from portal_stack import PortalStack, browser_page, portal_stack, screenshot, signed_in

``portal_stack`` (one per test module) starts, on the session's PostgreSQL and broker and
beside the session's catalog and storage processes: lineage (following the catalog's
changelog over HTTP), compute with two worker processes, and the portal, each a uvicorn
process on a free port. ``browser_page`` is a fresh Chromium (Debian's ``/usr/bin/chromium``,
driven by Playwright, an empty profile per test) whose every request is recorded: a request
to any host but the portal's is refused on the spot, and fails the test at teardown.
``screenshot(page, name)`` writes ``.awe/screenshots/<name>.png`` under the repository.
"""

from __future__ import annotations

import asyncio
import dataclasses
import io
import os
import secrets
import shutil
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import numpy as np
import pytest
from conftest import ADMIN_TOKEN, start_service
from PIL import Image
from playwright.async_api import BrowserContext, Page, Request, Route, async_playwright

from awecore.stack import Broker, PostgresServer, ServiceProcess

__all__ = ["CHROMIUM", "CHROMIUM_ARGS", "SCREENSHOTS", "PortalStack", "browser_page",
           "portal_stack", "screenshot", "signed_in"]

REPO = Path(__file__).resolve().parent.parent
SCREENSHOTS = REPO / ".awe" / "screenshots"
CHROMIUM = "/usr/bin/chromium"
#: a browser that asks nothing of the network by itself (no updates, sync, QUIC probes)
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                 "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync"]
#: how long a state may take to arrive (the tests wait for states; this only bounds a hang)
WAIT_SECONDS = 300.0


@dataclass
class PortalStack:
    """The URLs of every service, the admin's token, and helpers the tests share."""

    catalog: str
    storage: str
    lineage: str
    compute: str
    portal: str
    admin_token: str = ADMIN_TOKEN
    processes: dict[str, ServiceProcess] = field(default_factory=dict)

    def admin(self) -> httpx.Client:
        return httpx.Client(base_url=self.catalog, timeout=60,
                            headers={"Authorization": f"Bearer {self.admin_token}"})

    def make_user(self, prefix: str, project: str | None = None) -> tuple[str, str]:
        """A new user (in ``project`` if given) and a token of theirs: (name, token)."""
        name = f"{prefix}-{secrets.token_hex(3)}"
        with self.admin() as admin:
            if project is not None:
                admin.post("/projects", json={"name": project})
            made = admin.post("/users", json={"name": name, "project": project})
            assert made.status_code == 201, made.text
            token = admin.post("/tokens", json={"user": name})
            assert token.status_code == 201, token.text
            return name, str(token.json()["token"])

    def lineage_caught_up(self) -> None:
        """Wait until lineage has applied every change the catalog has made so far."""
        with self.admin() as admin:
            target = admin.get("/changes", params={"limit": 1}).json()["last_sequence"]
        deadline = time.monotonic() + WAIT_SECONDS
        while httpx.get(f"{self.lineage}/readyz", timeout=30).json().get(
                "applied_sequence", -1) < target:
            assert time.monotonic() < deadline, f"lineage did not reach change {target}"
            time.sleep(0.2)

    def jobs_done(self, ids: Sequence[str], token: str | None = None) -> list[dict[str, Any]]:
        """Wait until every job has ended; the jobs as compute says (failed ones too)."""
        headers = {"Authorization": f"Bearer {token or self.admin_token}"}
        deadline = time.monotonic() + WAIT_SECONDS
        while True:
            jobs: list[dict[str, Any]] = httpx.post(
                f"{self.compute}/jobs/lookup", json={"ids": list(ids)}, headers=headers,
                timeout=60).json()
            if all(j["status"] in ("done", "failed", "cancelled") for j in jobs):
                return jobs
            assert time.monotonic() < deadline, f"jobs still running: {jobs}"
            time.sleep(0.3)


def _stop(processes: dict[str, ServiceProcess]) -> None:
    for proc in reversed(list(processes.values())):
        proc.stop()


@pytest.fixture(scope="module")
def portal_stack(postgres: PostgresServer, broker: Broker, catalog_process: str,
                 storage_process: str,
                 tmp_path_factory: pytest.TempPathFactory) -> Iterator[PortalStack]:
    """Lineage, compute (two workers) and the portal as processes, for one test module."""
    logs = tmp_path_factory.mktemp("portal-stack")
    suffix = secrets.token_hex(3)
    base = {**os.environ, "AWE_SITE": "test", "AWE_LOG_LEVEL": "WARNING"}
    processes: dict[str, ServiceProcess] = {}
    cache = Path(tempfile.mkdtemp(prefix="awe-portal-cache-"))
    try:
        lineage_env = {
            **base,
            "AWE_LINEAGE_DATABASE_URL": postgres.create_database(f"awe_lineage_portal_{suffix}"),
            "AWE_LINEAGE_CATALOG_URL": catalog_process,
            "AWE_LINEAGE_SERVICE_TOKEN": ADMIN_TOKEN,
            # the changelog over HTTP, often: no relay to share with other modules' tests
            "AWE_LINEAGE_CATCH_UP_SECONDS": "0.3"}
        processes["lineage"], lineage = start_service("lineage", "awe_lineage.main:create_app",
                                                      lineage_env, logs)
        compute_env = {
            **base,
            # a site of its own: its own jobs topic and worker group (other modules' workers
            # must not take these jobs' nudges)
            "AWE_SITE": f"test-portal-{suffix}",
            "AWE_COMPUTE_DATABASE_URL": postgres.create_database(f"awe_compute_portal_{suffix}"),
            "AWE_COMPUTE_CATALOG_URL": catalog_process,
            "AWE_COMPUTE_STORAGE_URL": storage_process,
            "AWE_COMPUTE_SERVICE_TOKEN": ADMIN_TOKEN,
            "AWE_COMPUTE_KAFKA_BOOTSTRAP_SERVERS": broker.bootstrap_servers,
            "AWE_COMPUTE_LEASE_SECONDS": "3", "AWE_COMPUTE_SESSION_TIMEOUT_MS": "3000"}
        processes["compute"], compute = start_service("compute", "awe_compute.main:create_app",
                                                      compute_env, logs)
        for i in (1, 2):
            worker = ServiceProcess(f"worker{i}", [sys.executable, "-m", "awe_compute.worker"],
                                    compute_env, logs / f"worker{i}.log")
            worker.start()
            processes[f"worker{i}"] = worker
        portal_env = {
            **base,
            "AWE_PORTAL_CATALOG_URL": catalog_process,
            "AWE_PORTAL_STORAGE_URL": storage_process,
            "AWE_PORTAL_LINEAGE_URL": lineage,
            "AWE_PORTAL_COMPUTE_URL": compute,
            "AWE_PORTAL_SECRET_KEY": secrets.token_urlsafe(32),
            "AWE_PORTAL_CACHE_DIR": str(cache)}
        processes["portal"], portal = start_service("portal", "awe_portal.main:create_app",
                                                    portal_env, logs)
        yield PortalStack(catalog_process, storage_process, lineage, compute, portal,
                          processes=processes)
    finally:
        _stop(processes)
        shutil.rmtree(cache, ignore_errors=True)


@dataclass
class Recorded:
    """Every request the browser made, and those that went (or tried to go) elsewhere."""

    own: str
    urls: list[str] = dataclasses.field(default_factory=list)
    foreign: list[str] = dataclasses.field(default_factory=list)

    def local(self, url: str) -> bool:
        parts = urlsplit(url)
        if parts.scheme in ("data", "blob", "about"):
            return True  # no request leaves the browser for these
        return f"{parts.scheme}://{parts.netloc}" == self.own


@pytest.fixture
async def browser_page(portal_stack: PortalStack,
                       tmp_path: Path) -> AsyncIterator[Page]:
    """A fresh Chromium page (empty profile) whose every request is recorded; a request to
    any host but the portal's is refused and fails the test at teardown."""
    if not os.path.exists(CHROMIUM):  # noqa: ASYNC240 (once per test, before the browser)
        pytest.fail(f"{CHROMIUM} is missing: `make browser` installs Debian's chromium")
    own = portal_stack.portal.rstrip("/")
    recorded = Recorded(own)
    profile = tmp_path / "chromium-profile"
    profile.mkdir()
    async with async_playwright() as pw:
        context: BrowserContext = await pw.chromium.launch_persistent_context(
            str(profile), executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True,
            viewport={"width": 1360, "height": 900}, accept_downloads=True)

        def seen(request: Request) -> None:
            recorded.urls.append(request.url)
            if not recorded.local(request.url):
                recorded.foreign.append(request.url)

        async def guard(route: Route) -> None:
            if recorded.local(route.request.url):
                await route.continue_()
            else:
                await route.abort("blockedbyclient")

        context.on("request", seen)
        await context.route("**/*", guard)
        context.set_default_timeout(60_000)
        page = context.pages[0] if context.pages else await context.new_page()
        page.portal = own  # type: ignore[attr-defined]
        try:
            yield page
        finally:
            await context.close()
    assert recorded.urls, "the browser made no request at all"
    assert not recorded.foreign, f"requests left the site: {recorded.foreign}"


async def signed_in(page: Page, token: str) -> str:
    """Sign in through the form as the token's owner; their name as the portal shows it."""
    base: str = page.portal  # type: ignore[attr-defined]
    await page.goto(f"{base}/signin")
    await page.fill("#token", token)
    await page.click("#signin")
    await page.wait_for_selector("#user")
    return (await page.inner_text("#user")).strip()


async def screenshot(page: Page, name: str) -> Path:
    """The page as it looks now, in .awe/screenshots/<name>.png (git-ignored)."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    await page.screenshot(path=str(path), full_page=True)
    assert path.stat().st_size > 1000, f"screenshot {path} is empty"
    return path


async def wait_for(predicate: Any, what: str, seconds: float = WAIT_SECONDS) -> None:
    """Poll an async predicate until it holds (states, not time)."""
    deadline = time.monotonic() + seconds
    while not await predicate():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.2)


async def preview_and_download(page: Page, base: str, oid: str, shot: str) -> bytes:
    """On an object's page: its preview is a rendered, stretched PNG (not the stand-in, not
    blank), a screenshot is taken, and the FITS download's bytes are returned."""
    image = page.locator("#preview")
    await image.scroll_into_view_if_needed()
    await page.wait_for_function("() => document.querySelector('#preview').complete")
    assert await image.evaluate("img => img.naturalWidth") > 100  # rendered, not the stand-in
    png = await page.request.get(f"{base}/objects/{oid}/preview.png")
    assert png.status == 200 and png.headers["content-type"] == "image/png"
    pixels = np.asarray(Image.open(io.BytesIO(await png.body())).convert("L"), dtype=float)
    assert pixels.std() > 5  # a stretched image, not a blank one
    await screenshot(page, shot)
    async with page.expect_download() as info:
        await page.click("#download")
    download = await info.value
    return await asyncio.to_thread(Path(await download.path()).read_bytes)
