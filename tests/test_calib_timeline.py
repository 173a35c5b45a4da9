"""The calibration timeline (Astro-WISE's CalTS) against the real catalog process: windows
listed per chip (filter, span, subclasses), moved and invalidated through the Python client
and the ``awe calib`` command as a user runs it, every change kept as history (who, when,
where, why, old and new), and that history shown only to whoever may see the object."""

from __future__ import annotations

import datetime as dt
import json
import subprocess
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
from conftest import ADMIN_TOKEN, CLI_ENV

import awecore as awe
from awecore.cli._calib import bar
from awecore.errors import InvalidQuery, NotFound
from awecore.records import CurationChange

pytestmark = pytest.mark.integration
DAY0 = dt.datetime(2003, 2, 14, tzinfo=dt.UTC)


def day(n: float) -> dt.datetime:
    return DAY0 + dt.timedelta(days=n)


def iso(n: float) -> str:
    return day(n).isoformat()


def when(value: Any) -> dt.datetime:
    return dt.datetime.fromisoformat(value)


def awe_cli(*args: str, token: str, catalog: str) -> subprocess.CompletedProcess[str]:
    """``awe ARGS`` as a user runs it: a clean environment with the catalog and a token."""
    env = {**CLI_ENV, "AWE_TOKEN": token, "AWE_CATALOG_URL": catalog, "COLUMNS": "250"}
    return subprocess.run([sys.executable, "-m", "awecore.cli", *args], capture_output=True,
                          text=True, env=env, timeout=120, check=False)


def ok(r: subprocess.CompletedProcess[str]) -> str:
    assert r.returncode == 0, f"exit {r.returncode}\n{r.stdout}\n{r.stderr}"
    return r.stdout


@dataclass
class Sky:
    """Two chips and two filters, and a calibration scientist (a user) with a token."""

    catalog: str
    tag: str
    user: str
    token: str
    chips: dict[str, str] = field(default_factory=dict)
    filters: dict[str, str] = field(default_factory=dict)

    def client(self) -> awe.CatalogClient:
        return awe.CatalogClient(self.catalog, self.token)

    def make(self, *objects: dict[str, Any]) -> list[str]:
        with httpx.Client(base_url=self.catalog, timeout=60,
                          headers={"Authorization": f"Bearer {self.token}"}) as http:
            r = http.post("/objects/batch", json={"objects": list(objects)})
            assert r.status_code == 201, r.text
            return list(r.json()["oids"])


def add_user(catalog: str, prefix: str) -> tuple[str, str]:
    name = f"{prefix}-{uuid.uuid4().hex[:6]}"
    with httpx.Client(base_url=catalog, timeout=60,
                      headers={"Authorization": f"Bearer {ADMIN_TOKEN}"}) as admin:
        r = admin.post("/users", json={"name": name})
        assert r.status_code == 201, r.text
        r = admin.post("/tokens", json={"user": name})
        assert r.status_code == 201, r.text
        return name, str(r.json()["token"])


@pytest.fixture
def sky(catalog_process: str) -> Iterator[Sky]:
    tag = uuid.uuid4().hex[:6]
    name, token = add_user(catalog_process, "calsci")
    s = Sky(catalog_process, tag, name, token)
    (inst,) = s.make({"type": "Instrument", "privileges": 3,
                      "attributes": {"name": f"WFI-{tag}"}})
    names = [f"ccd50-{tag}", f"ccd51-{tag}"]
    s.chips = dict(zip(names, s.make(*({"type": "Chip", "privileges": 3,
                                        "attributes": {"name": n},
                                        "refs": {"instrument": inst}} for n in names)),
                       strict=True))
    names = [f"841-{tag}", f"842-{tag}"]
    s.filters = dict(zip(names, s.make(*({"type": "Filter", "privileges": 3,
                                          "attributes": {"name": n}} for n in names)),
                         strict=True))
    yield s


def calibration(cls: str, chip: str, start: float, end: float, filt: str | None = None,
                privileges: int = 3, **extra: Any) -> dict[str, Any]:
    refs = {"chip": chip, **({"filter": filt} if filt else {})}
    return {"type": cls, "privileges": privileges, "timestamp_start": iso(start),
            "timestamp_end": iso(end), "refs": refs, **extra}


def test_timeline_by_chip_filter_time_and_subclasses(sky: Sky) -> None:
    (n1, c1), (other_chip, c2) = sky.chips.items()
    (_, f1), (n2, f2) = sky.filters.items()
    b1, b2, b3, other = sky.make(
        calibration("BiasFrame", c1, 0, 2), calibration("BiasFrame", c1, 1, 4),
        calibration("BiasFrame", c1, 6, 7, quality_flags=4),  # a gap from day 4 to 6
        calibration("BiasFrame", c2, 0, 9))  # another chip
    fl1, fl2 = sky.make(calibration("DomeFlatFrame", c1, 1, 3, f1),
                        calibration("DomeFlatFrame", c1, 1, 3, f2))
    with sky.client() as client:
        biases = client.timeline("BiasFrame", n1)
        assert [e.oid for e in biases] == [b1, b2, b3]  # by window start; not c2's
        assert [(e.timestamp_start, e.timestamp_end) for e in biases] == [
            (day(0), day(2)), (day(1), day(4)), (day(6), day(7))]
        assert biases[2].quality_flags == 4 and biases[2].chip == n1
        assert {e.creator for e in biases} == {sky.user} and biases[0].last_curation is None
        # the chip by oid as by name; the span selects the windows that overlap it
        assert [e.oid for e in client.timeline("BiasFrame", c1, start=day(3))] == [b2, b3]
        assert [e.oid for e in client.timeline("BiasFrame", n1, start=day(4.5),
                                               end=day(5.5))] == []  # the gap
        assert [e.oid for e in client.timeline("BiasFrame", n1, end=day(0.5))] == [b1]
        assert [e.oid for e in client.timeline("BiasFrame", other_chip)] == [other]
        # a base class takes in its subclasses; a filter keeps those with that filter
        every = client.timeline("CalFile", n1)
        assert {e.oid for e in every} == {b1, b2, b3, fl1, fl2}
        starts = [e.timestamp_start for e in every]
        assert starts == sorted(starts)  # type: ignore[type-var]
        assert {e.type for e in every} == {"BiasFrame", "DomeFlatFrame"}
        flats = client.timeline("CalFile", n1, filter=n2)
        assert [(e.oid, e.filter) for e in flats] == [(fl2, n2)]
        assert [e.oid for e in client.timeline("DomeFlatFrame", n1, filter=f1)] == [fl1]
        # pages, like every listing
        page = client.timeline_page("CalFile", n1, limit=2)
        assert len(page.entries) == 2 and page.next_offset == 2
        rest = client.timeline_page("CalFile", n1, offset=4, limit=2)
        assert len(rest.entries) == 1 and rest.next_offset is None
        assert [e.oid for e in page.entries] == [e.oid for e in every[:2]]
        # bad input is a clear 4xx
        with pytest.raises(InvalidQuery, match="not a calibration class"):
            client.timeline("RawBiasFrame", n1)
        with pytest.raises(InvalidQuery, match="does not depend on a filter"):
            client.timeline("ReadNoise", n1, filter=n2)
        with pytest.raises(InvalidQuery, match=r"ends .* before it starts"):
            client.timeline("BiasFrame", n1, start=day(3), end=day(1))
        r = client._http.get("/calibrations/BiasFrame/timeline",
                             params={"chip": n1, "start": "yesterday"})
        assert r.status_code == 400 and "query.start" in r.json()["detail"], r.text


def test_window_changes_through_client_and_cli_are_history(sky: Sky) -> None:
    (n1, c1), _ = sky.chips.items()
    b1, b2 = sky.make(calibration("BiasFrame", c1, 0, 2), calibration("BiasFrame", c1, 3, 5))
    with sky.client() as client:
        # shorten through the client, with a reason
        got = client.curate(b1, timestamp_end=day(1), reason="bad column from day 1")
        assert got.timestamp_end == day(1)
        (first,) = client.history(b1)
        assert isinstance(first, CurationChange)
        assert (first.oid, first.by, first.site, first.reason) == (
            b1, sky.user, "test", "bad column from day 1")
        assert list(first.changes) == ["timestamp_end"]
        assert when(first.changes["timestamp_end"].old) == day(2)
        assert when(first.changes["timestamp_end"].new) == day(1)
        assert abs(first.at - dt.datetime.now(dt.UTC)) < dt.timedelta(minutes=5)

    # extend through the CLI, the oid typed short; then set it aside
    out = ok(awe_cli("calib", "window", b1[:20], "--start", "2003-02-13T12:00:00",
                     "--end", iso(2.5), "--reason", "covers the next night",
                     "--format", "json", token=sky.token, catalog=sky.catalog))
    (row,) = json.loads(out)
    assert (when(row["timestamp_start"]), when(row["timestamp_end"])) == (day(-0.5), day(2.5))
    ok(awe_cli("calib", "invalidate", b1, "--reason", "hot pixels in the amplifier",
               token=sky.token, catalog=sky.catalog))
    history = json.loads(ok(awe_cli("calib", "history", b1[:13], "--format", "json",
                                    token=sky.token, catalog=sky.catalog)))
    assert [h["reason"] for h in history] == [
        "bad column from day 1", "covers the next night", "hot pixels in the amplifier"]
    assert {h["by"] for h in history} == {sky.user} and {h["site"] for h in history} == {"test"}
    ats = [when(h["at"]) for h in history]
    assert ats == sorted(ats) and len(set(ats)) == 3  # oldest first
    window = history[1]["changes"]
    assert set(window) == {"timestamp_start", "timestamp_end"}
    assert (when(window["timestamp_start"]["old"]), when(window["timestamp_start"]["new"])) \
        == (day(0), day(-0.5))
    assert (when(window["timestamp_end"]["old"]), when(window["timestamp_end"]["new"])) \
        == (day(1), day(2.5))
    assert history[2]["changes"] == {"is_valid": {"old": 1, "new": 0}}
    table = ok(awe_cli("calib", "history", b1, token=sky.token, catalog=sky.catalog))
    assert "is_valid: 1 -> 0" in table and "hot pixels in the amplifier" in table

    with sky.client() as client:
        # the timeline shows the verdict and who set it last, and why
        entries = {e.oid: e for e in client.timeline("BiasFrame", n1)}
        assert entries[b1].is_valid == 0
        last = entries[b1].last_curation
        assert last is not None and (last.by, last.reason) == (sky.user,
                                                               "hot pixels in the amplifier")
        assert entries[b2].last_curation is None
        assert client.get(b1).record.is_valid == 0  # type: ignore[union-attr]

    # the listing: JSON with who set the windows, CSV, and a table that draws them
    listed = json.loads(ok(awe_cli("calib", "list", "BiasFrame", "--chip", n1, "--format",
                                   "json", token=sky.token, catalog=sky.catalog)))
    assert [r["oid"] for r in listed] == [b1, b2]
    assert (listed[0]["is_valid"], listed[0]["curated_by"], listed[0]["reason"]) == (
        0, sky.user, "hot pixels in the amplifier")
    assert listed[1]["curated_by"] is None and listed[1]["creator"] == sky.user
    csv_out = ok(awe_cli("calib", "list", "BiasFrame", "--chip", n1, "--from", "2003-02-16",
                         "--format", "csv", token=sky.token, catalog=sky.catalog))
    lines = csv_out.strip().splitlines()
    assert lines[0].startswith("oid,type,chip,filter,timestamp_start")
    assert [ln.split(",")[0] for ln in lines[1:]] == [b1, b2]  # b1 reaches into the 16th
    shown = ok(awe_cli("calib", "list", "BiasFrame", "--chip", n1, "--from", "2003-02-14",
                       "--to", "2003-02-18", token=sky.token, catalog=sky.catalog))
    span = (day(0), day(5) - dt.timedelta(microseconds=1))
    assert bar(day(-0.5), day(2.5), span) in shown  # b1's bar, starting before the span
    assert bar(day(3), day(5), span) in shown
    assert "◂" in bar(day(-0.5), day(2.5), span) and "bad" in shown

    # what is refused: exit 1 with the reason; a wrong command line: exit 2
    bad = awe_cli("calib", "window", b2, "--end", iso(1), token=sky.token, catalog=sky.catalog)
    assert bad.returncode == 1 and "end before it starts" in bad.stderr, bad.stderr
    missing = awe_cli("calib", "history", str(uuid.uuid4()), token=sky.token,
                      catalog=sky.catalog)
    assert missing.returncode == 1 and "NotFound" in missing.stderr, missing.stderr
    assert awe_cli("calib", "invalidate", b2, token=sky.token,
                   catalog=sky.catalog).returncode == 2  # no reason given
    assert awe_cli("calib", "window", b2, token=sky.token, catalog=sky.catalog).returncode == 2
    assert awe_cli("calib", "list", "BiasFrame", "--chip", n1, "--from", "2003-02-18",
                   "--to", "2003-02-14", token=sky.token, catalog=sky.catalog).returncode == 2
    with sky.client() as client:
        assert client.get(b2).record.is_valid == 1  # type: ignore[union-attr]
        assert client.history(b2) == []


def test_history_only_for_whoever_may_see_the_object(sky: Sky) -> None:
    (n1, c1), _ = sky.chips.items()
    (mine,) = sky.make(calibration("BiasFrame", c1, 0, 1, privileges=1))
    with sky.client() as client:
        client.curate(mine, timestamp_end=day(3), reason="mine to extend")
        assert [h.reason for h in client.history(mine)] == ["mine to extend"]
    _, other_token = add_user(sky.catalog, "other")
    with awe.CatalogClient(sky.catalog, other_token) as other:
        with pytest.raises(NotFound):
            other.history(mine)
        assert mine not in {e.oid for e in other.timeline("BiasFrame", n1)}
        r = other._http.get(f"/objects/{mine}/history")
        assert r.status_code == 404 and r.headers["content-type"].startswith(
            "application/problem+json")
        with pytest.raises(NotFound):  # as for the object itself
            other.get(mine)
    assert awe_cli("calib", "history", mine, token=other_token,
                   catalog=sky.catalog).returncode == 1
    with awe.CatalogClient(sky.catalog, ADMIN_TOKEN) as admin:  # an admin sees everything
        (entry,) = admin.history(mine)
        assert entry.by == sky.user
        assert admin._http.get("/objects/not-an-oid/history").status_code == 404
    # nobody but its creator (or an admin) changes it; a refused change leaves no history
    with awe.CatalogClient(sky.catalog, other_token) as other:
        (shared,) = sky.make(calibration("BiasFrame", c1, 0, 1))
        with pytest.raises(awe.Forbidden):
            other.curate(shared, is_valid=0, reason="not mine")
        assert other.history(shared) == []
