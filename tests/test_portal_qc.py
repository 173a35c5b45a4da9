"""The portal's QC monitoring and calibration timeline in a real browser, as a calibration
scientist uses them.

A calibration scientist (carol) registers five nights of calibrations for one chip (read
noise, bias, zeropoint) and one exposure's products (raw frame, reduced frame made with the
second night's bias, its astrometry and source list). In Chromium she opens the QC page for
the chip, sees each quantity as a series over the nights (values, order, flags checked),
sets the outlier night's read noise bad with a comment and sees the catalogue change. On
the timeline she moves the second bias's window off the exposure and sees that the reduced
frame becomes stale, and what was made from it. Another user (dave) sees his own private
point but carol never does, and his verdict on carol's object is refused with a 403 page.
Every request the browser makes stays on the portal (``browser_page`` fails otherwise).
"""

from __future__ import annotations

import datetime as dt
import secrets
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from playwright.async_api import Page
from portal_stack import PortalStack, browser_page, portal_stack, screenshot, signed_in, wait_for

pytestmark = pytest.mark.integration
__all__ = ["browser_page", "portal_stack"]  # fixtures, imported for pytest

DAY0 = dt.datetime(2004, 5, 1, 12, tzinfo=dt.UTC)  # noon: a night runs noon to noon
READ_NOISE = [4.1, 4.2, 9.5, 4.0, 4.3]  # night 2 is an outlier, and flagged
BIAS = [300.0, 301.5, 302.0, 299.0, 300.5]
ZEROPOINT = [24.50, 24.52, 24.47, 24.55, 24.51]


def night(i: float) -> dt.datetime:
    return DAY0 + dt.timedelta(days=i)


@dataclass
class Sky:
    carol: str
    carol_token: str
    dave: str
    dave_token: str
    chip: str
    filter: str
    read_noise: list[str]
    bias: list[str]
    raw: str
    reduced: str
    sourcelist: str
    astrom: str
    private: str  # dave's read noise of the same chip, privileges 1


def _client(stack: PortalStack, token: str) -> httpx.Client:
    return httpx.Client(base_url=stack.catalog, timeout=60,
                        headers={"Authorization": f"Bearer {token}"})


def _make(http: httpx.Client, *objects: dict[str, Any]) -> list[str]:
    r = http.post("/objects/batch", json={"objects": list(objects)})
    assert r.status_code == 201, r.text
    return list(r.json()["oids"])


def _cal(cls: str, i: int, refs: dict[str, str], **attributes: Any) -> dict[str, Any]:
    return {"type": cls, "privileges": 3, "timestamp_start": night(i).isoformat(),
            "timestamp_end": night(i + 1).isoformat(), "refs": refs,
            "attributes": attributes, "quality_flags": 2 if i == 2 else 0}


@pytest.fixture(scope="module")
def sky(portal_stack: PortalStack) -> Iterator[Sky]:
    tag = secrets.token_hex(3)
    carol, carol_token = portal_stack.make_user("carol")
    dave, dave_token = portal_stack.make_user("dave")
    with _client(portal_stack, carol_token) as http:
        (inst,) = _make(http, {"type": "Instrument", "privileges": 3,
                               "attributes": {"name": f"QCCAM-{tag}"}})
        chip_name, filter_name = f"qc50-{tag}", f"r-{tag}"
        (chip,) = _make(http, {"type": "Chip", "privileges": 3, "refs": {"instrument": inst},
                               "attributes": {"name": chip_name}})
        (filt,) = _make(http, {"type": "Filter", "privileges": 3,
                               "attributes": {"name": filter_name}})
        read_noise = _make(http, *(_cal("ReadNoise", i, {"chip": chip}, read_noise=v)
                                   for i, v in enumerate(READ_NOISE)))
        bias = _make(http, *(_cal("BiasFrame", i, {"chip": chip, "instrument": inst},
                                  imstat={"median": v, "stdev": 3.0})
                             for i, v in enumerate(BIAS)))
        _make(http, *(_cal("PhotometricParameters", i, {"chip": chip, "filter": filt},
                           zeropoint=v) for i, v in enumerate(ZEROPOINT)))
        frame = {"chip": chip, "filter": filt, "instrument": inst}
        (raw,) = _make(http, {"type": "RawScienceFrame", "privileges": 3, "refs": frame,
                              "attributes": {"date_obs": night(1.625).isoformat()}})
        (reduced,) = _make(http, {"type": "ReducedScienceFrame", "privileges": 3,
                                  "refs": {**frame, "raw": raw, "bias": bias[1]}})
        astrom, sourcelist = _make(
            http,
            {"type": "AstrometricParameters", "privileges": 3, "attributes": {"rms": 0.071},
             "refs": {"chip": chip, "filter": filt, "reduced": reduced}},
            {"type": "SourceList", "privileges": 3,
             "attributes": {"number_of_sources": 123, "seeing": 0.93},
             "refs": {"chip": chip, "filter": filt, "frame": reduced}})
    with _client(portal_stack, dave_token) as http:
        (private,) = _make(http, {**_cal("ReadNoise", 0, {"chip": chip}, read_noise=55.5),
                                  "privileges": 1})
    portal_stack.lineage_caught_up()
    yield Sky(carol, carol_token, dave, dave_token, chip_name, filter_name, read_noise, bias,
              raw, reduced, sourcelist, astrom, private)


async def _points(page: Page, metric: str) -> list[dict[str, Any]]:
    """The points of one chart as the browser has them: oid, class, value, position, tip."""
    got: list[dict[str, Any]] = await page.eval_on_selector_all(
        f"#qc-{metric} a.qc-point",
        """els => els.map(a => ({oid: a.dataset.oid, cls: a.getAttribute('class'),
              value: parseFloat(a.dataset.value), href: a.getAttribute('href'),
              x: parseFloat(a.querySelector('circle:last-of-type').getAttribute('cx')),
              y: parseFloat(a.querySelector('circle:last-of-type').getAttribute('cy')),
              tip: a.querySelector('title').textContent}))""")
    return got


async def test_qc_series_and_a_verdict_with_a_comment(
        portal_stack: PortalStack, browser_page: Page, sky: Sky) -> None:
    page, base = browser_page, portal_stack.portal
    assert await signed_in(page, sky.carol_token) == sky.carol
    await page.goto(f"{base}/qc")
    await page.select_option("#qc-chip", sky.chip)
    await page.click("#qc-form button[type=submit]")
    await page.wait_for_selector("#qc-read_noise a.qc-point")

    rn = await _points(page, "read_noise")
    assert [p["oid"] for p in rn] == sky.read_noise  # by night; dave's private one is not here
    assert [p["value"] for p in rn] == READ_NOISE
    assert [p["x"] for p in rn] == sorted(p["x"] for p in rn)
    assert min(rn, key=lambda p: p["y"])["value"] == 9.5  # the highest value is on top
    assert ["flagged" in p["cls"] for p in rn] == [False, False, True, False, False]
    assert all(p["href"] == f"/objects/{p['oid']}" for p in rn)
    assert "2004-05-02 00:00" in rn[0]["tip"]  # the middle of its window: its night
    assert sky.private not in await page.content()

    bias = await _points(page, "bias_level")
    assert [p["value"] for p in bias] == BIAS
    zp = await _points(page, "zeropoint")
    assert [p["value"] for p in zp] == ZEROPOINT
    assert sky.filter in zp[0]["tip"]  # per-filter quantities name their filter
    (count,) = await _points(page, "source_count")
    assert (count["oid"], count["value"]) == (sky.sourcelist, 123)
    assert "2004-05-03 03:00" in count["tip"]  # placed at its raw frame's exposure
    (seeing,) = await _points(page, "seeing")
    assert (seeing["oid"], seeing["value"]) == (sky.sourcelist, 0.93)
    (rms,) = await _points(page, "astrometric_rms")
    assert rms["oid"] == sky.astrom and rms["value"] == pytest.approx(0.071)
    assert "no data" in (await page.text_content("#qc-hot_pixels") or "")
    await screenshot(page, "qc")

    # the outlier night: open its verdict form from the table and set it bad, saying why
    outlier = sky.read_noise[2]
    await page.click("#chart-read_noise details summary")
    await page.click(f"#chart-read_noise tr[data-oid='{outlier}'] a.judge")
    await page.wait_for_selector("#verdict-form")
    assert (await page.inner_text("#verdict-current")).startswith("1")
    comment = "read noise jumped: controller fault that night"
    await page.select_option("#verdict-valid", "0")
    await page.fill("#verdict-comment", comment)
    await page.click("#verdict-submit")
    await page.wait_for_selector("#verdict-done")
    assert (await page.inner_text("#verdict-now")).startswith("0")
    assert comment in await page.inner_text("#verdict-history")
    after = {p["oid"]: p for p in await _points(page, "read_noise")}
    assert "valid-0" in after[outlier]["cls"]
    assert all("valid-1" in after[o]["cls"] for o in sky.read_noise if o != outlier)
    await screenshot(page, "qc-verdict")

    with _client(portal_stack, sky.carol_token) as http:
        assert http.get(f"/objects/{outlier}").json()["is_valid"] == 0
        history = http.get(f"/objects/{outlier}/history").json()
        assert history[-1]["reason"] == comment and history[-1]["by"] == sky.carol
        assert history[-1]["changes"]["is_valid"] == {"old": 1, "new": 0}


async def test_another_user_sees_his_own_point_and_may_not_judge_hers(
        portal_stack: PortalStack, browser_page: Page, sky: Sky) -> None:
    page, base = browser_page, portal_stack.portal
    assert await signed_in(page, sky.dave_token) == sky.dave
    target = sky.read_noise[3]
    await page.goto(f"{base}/qc?chip={sky.chip}&judge={target}")
    oids = [p["oid"] for p in await _points(page, "read_noise")]
    assert sky.private in oids and set(sky.read_noise) <= set(oids)
    await page.select_option("#verdict-valid", "0")
    await page.fill("#verdict-comment", "not mine to judge")
    async with page.expect_response(lambda r: r.url.endswith("/qc/verdict")) as answer:
        await page.click("#verdict-submit")
    assert (await answer.value).status == 403
    assert "403" in await page.inner_text("h1")
    with _client(portal_stack, sky.carol_token) as http:
        assert http.get(f"/objects/{target}").json()["is_valid"] == 1

    # bad input is a readable 4xx page, not a 500
    for path, status in ((f"/qc?chip={sky.chip}&start=yesterday", 400),
                         (f"/qc?chip={sky.chip}&judge=not-an-oid", 400),
                         (f"/qc?chip={sky.chip}&judge=00000000-0000-7000-8000-000000000000", 404),
                         (f"/timeline?cls=NoSuchClass&chip={sky.chip}", 400),
                         (f"/timeline?chip={sky.chip}&edit={sky.raw}", 400),  # no window
                         ("/timeline/stale?oid=x", 400)):
        response = await page.goto(f"{base}{path}")
        assert response is not None and response.status == status, path
        assert str(status) in await page.inner_text("h1"), path


async def test_timeline_move_a_window_and_see_what_becomes_stale(
        portal_stack: PortalStack, browser_page: Page, sky: Sky) -> None:
    page, base = browser_page, portal_stack.portal
    assert await signed_in(page, sky.carol_token) == sky.carol
    await page.goto(f"{base}/timeline")
    await page.select_option("#tl-cls", "BiasFrame")
    await page.fill("#tl-chip", sky.chip)
    await page.click("#timeline-form button[type=submit]")
    await page.wait_for_selector("#timeline-chart a.window")
    windows = await page.eval_on_selector_all(
        "#timeline-chart a.window", """els => els.map(a => ({oid: a.dataset.oid,
            start: a.dataset.start, x: parseFloat(a.querySelector('rect').getAttribute('x'))}))""")
    assert [w["oid"] for w in windows] == sky.bias
    assert [w["x"] for w in windows] == sorted(w["x"] for w in windows)
    await screenshot(page, "timeline")

    # the second night's bias: its window covers the exposure; nothing is stale yet
    moved = sky.bias[1]
    await page.click(f"#timeline-chart a.window[data-oid='{moved}']")
    await page.wait_for_selector("#window-form")
    await page.wait_for_selector("#stale[data-stale]")
    assert await page.get_attribute("#stale", "data-stale") == "0"
    assert await page.input_value("#window-start") == "2004-05-02T12:00"

    # move it a day later: it no longer covers the exposure (2004-05-03 03:00)
    await page.fill("#window-start", "2004-05-03T12:00")
    await page.fill("#window-end", "2004-05-04T12:00")
    await page.fill("#window-reason", "shutter log: bias taken the next night")
    await page.click("#window-submit")
    await page.wait_for_selector("#window-moved")

    async def stale_shown() -> bool:
        return await page.get_attribute("#stale", "data-stale") == "1"

    await wait_for(stale_shown, "the stale products to be shown")
    row = await page.inner_text(f"#stale tr[data-oid='{sky.reduced}']")
    assert "ReducedScienceFrame" in row and "no longer covers 2004-05-03 03:00" in row
    panel = await page.inner_text("#stale")
    assert "1 AstrometricParameters" in panel and "1 SourceList" in panel
    bar = await page.get_attribute(f"#timeline-chart a.window[data-oid='{moved}']",
                                   "data-start")
    assert bar == "2004-05-03T12:00:00+00:00"
    await screenshot(page, "timeline-stale")

    with _client(portal_stack, sky.carol_token) as http:
        record = http.get(f"/objects/{moved}").json()
        assert dt.datetime.fromisoformat(record["timestamp_start"]) == night(2)
        assert dt.datetime.fromisoformat(record["timestamp_end"]) == night(3)
        assert http.get(f"/objects/{moved}/history").json()[-1]["reason"] == \
            "shutter log: bias taken the next night"
    async with httpx.AsyncClient(base_url=portal_stack.lineage, timeout=60, headers={
            "Authorization": f"Bearer {sky.carol_token}"}) as lineage:
        staleness = (await lineage.get(f"/lineage/{sky.reduced}/staleness")).json()
    assert staleness["stale"] is True


def test_the_qc_pages_values_call_follows_the_privilege_rules(
        portal_stack: PortalStack, sky: Sky) -> None:
    """``POST /query/values`` (the QC page's narrow rows): the objects ``POST /query``
    gives, in its order and pages, and a reference to an object the caller may not see
    named HIDDEN_OID as in a record. Dave shares a bias of a chip of his own made with his
    private read noise; carol sees the bias, not what it refers to."""
    hidden = "00000000-0000-0000-0000-000000000000"
    with _client(portal_stack, sky.dave_token) as http:
        (chip,) = _make(http, {"type": "Chip", "privileges": 3,
                               "attributes": {"name": f"{sky.chip}-dave"}})
        (noise,) = _make(http, {**_cal("ReadNoise", 0, {"chip": chip}, read_noise=5.0),
                                "privileges": 1})
        (bias,) = _make(http, _cal("BiasFrame", 0, {"chip": chip, "read_noise": noise},
                                   imstat={"median": 299.5}))
    spec = {"cls": "BiasFrame", "where": {"node": "compare", "op": "eq",
                                          "path": ["chip", "name"], "value": f"{sky.chip}-dave"}}
    fields = ["oid", "is_valid", "attributes.imstat.median", "refs.read_noise",
              "refs.chip", "attributes.absent"]
    for token, ref in ((sky.carol_token, hidden), (sky.dave_token, noise)):
        with _client(portal_stack, token) as http:
            got = http.post("/query/values", json={"query": spec, "fields": fields})
            assert got.status_code == 200, got.text
            assert got.json()["rows"] == [[bias, 1, 299.5, ref, chip, None]]
            record = http.post("/query", json={"query": spec}).json()["objects"][0]
            assert record["refs"]["read_noise"] == ref  # as the record says it
    # her own chip's read noise, in the query's order and pages, without dave's private one
    noise_spec = {"cls": "ReadNoise", "where": {"node": "compare", "op": "eq",
                                                "path": ["chip", "name"], "value": sky.chip},
                  "order_by": [{"path": ["timestamp_start"], "descending": True}]}
    with _client(portal_stack, sky.carol_token) as http:
        first = http.post("/query/values", json={"query": noise_spec, "fields": ["oid"],
                                                 "limit": 3}).json()
        rest = http.post("/query/values", json={"query": noise_spec, "fields": ["oid"],
                                                "offset": 3}).json()
        assert [r[0] for r in first["rows"] + rest["rows"]] == sky.read_noise[::-1]
        assert (first["next_offset"], rest["next_offset"]) == (3, None)
        both = http.post("/query/values/batch", json={"queries": [
            {"query": noise_spec, "fields": ["attributes.read_noise"]},
            {"query": spec, "fields": ["refs.read_noise"]}]}).json()["pages"]
        assert [r[0] for r in both[0]["rows"]] == READ_NOISE[::-1]
        assert both[1]["rows"] == [[hidden]]
        for bad in ({"query": spec, "fields": ["attributes"]},
                    {"query": spec, "fields": ["refs.a.b"]},
                    {"query": spec, "fields": ["attributes.x;drop"]},
                    {"query": {"cls": "NoSuchClass"}, "fields": ["oid"]}):
            refused = http.post("/query/values", json=bad)
            assert refused.status_code == 400, (bad, refused.text)
        refused = http.post("/query/values/batch", json={"queries": [
            {"query": spec, "fields": ["oid"]}, {"query": spec, "fields": ["nope"]}]})
        assert refused.status_code == 400 and "query 1" in refused.json()["detail"]
