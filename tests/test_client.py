"""The Python client and the CLI against a real catalog process over HTTP."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest
from conftest import ADMIN_TOKEN, CLI_ENV
from seed import NIGHT, seed

import awecore as awe
from awecore import BiasFrame, Filter, RawFrame, ReducedScienceFrame
from awecore.ids import new_oid

pytestmark = pytest.mark.integration


class Spy:
    """Counts the HTTP requests our client makes, by path."""

    def __init__(self, client: awe.CatalogClient, monkeypatch: pytest.MonkeyPatch) -> None:
        self.calls: list[str] = []
        original = client.request

        def request(method: str, path: str, **kwargs: Any) -> Any:
            self.calls.append(path)
            return original(method, path, **kwargs)

        monkeypatch.setattr(client, "request", request)


async def test_five_line_script(admin: httpx.AsyncClient, session: awe.CatalogClient,
                                monkeypatch: pytest.MonkeyPatch) -> None:
    s = await seed(admin)
    chip, filt = f"ccd53-{s.tag}", f"841-{s.tag}"
    spy = Spy(session, monkeypatch)

    q = (ReducedScienceFrame.chip.name == chip) & (ReducedScienceFrame.filter.name == filt)
    x = [k.imstat.stdev for k in q]
    y = [k.flat.imstat.stdev for k in q]

    assert sorted(x) == [10.0, 11.0, 12.0]
    assert y == [0.01, 0.01, 0.01]
    # two pages of results (one per iteration) and ONE batched reference look-up
    assert spy.calls == ["/query", "/query", "/objects/get"]


async def test_query_protocol(admin: httpx.AsyncClient, session: awe.CatalogClient) -> None:
    s = await seed(admin)
    q = ReducedScienceFrame.chip.name == f"ccd54-{s.tag}"
    assert len(q) == 6
    items = list(q)
    assert q[0] == items[0] and q[-1] == items[-1]
    assert q[1:3] == items[1:3]
    newest = q.max("creation_date")
    assert newest is not None and newest.creation_date == max(o.creation_date for o in items)
    table = q.to_table(["oid", "exptime", "imstat.stdev", "chip.name", "flat.imstat.stdev"])
    assert len(table) == 6 and set(table["chip.name"]) == {f"ccd54-{s.tag}"}
    assert table["exptime"].unit == "s"
    raw = RawFrame.chip.name == f"ccd54-{s.tag}"
    assert {type(o).__name__ for o in raw} == {"RawBiasFrame", "RawScienceFrame"}
    best = session.best(BiasFrame, f"ccd54-{s.tag}", NIGHT)
    assert best.record is not None and best.record.oid == s.bias[f"ccd54-{s.tag}/new"]
    assert {type(b).__name__ for b in best.raw_bias_frames} == {"RawBiasFrame"}
    assert len(best.raw_bias_frames) == 2


def test_paging_save_and_typed_errors(session: awe.CatalogClient) -> None:
    tag = "paging-" + new_oid()[-8:]
    oids = session.create_batch([Filter(name=tag) for _ in range(1234)])
    q = Filter.name == tag
    assert len(q) == 1234
    assert sorted(o.record.oid for o in q if o.record) == sorted(oids)  # 3 pages
    f = session.save(Filter(name=f"{tag}-one", central_wavelength=841.0))
    assert f.record is not None and f.central_wavelength == 841.0
    with pytest.raises(awe.NotFound):
        session.get("01a20000-0000-7000-8000-000000000000")
    with pytest.raises(awe.InvalidQuery, match="exptime is a float"):
        len(ReducedScienceFrame.exptime == "long")
    with pytest.raises(awe.InvalidObject, match="no visible object"):
        session.save(BiasFrame(raw_bias_frames=["01a20000-0000-7000-8000-000000000000"]))
    assert session.curate(oids[0], privileges=3).privileges == 3
    with pytest.raises(awe.Conflict, match="only ever rise"):
        session.curate(oids[0], privileges=1)
    bad = awe.CatalogClient(session.url, "wrong-token")
    with pytest.raises(awe.Unauthorized):
        bad.whoami()
    with pytest.raises(awe.ServiceUnavailable, match="cannot reach"):
        awe.CatalogClient("http://127.0.0.1:9", None).whoami()


def awe_cli(url: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {"AWE_CATALOG_URL": url, "AWE_TOKEN": ADMIN_TOKEN, **CLI_ENV,
           "COLUMNS": "200"}
    return subprocess.run([sys.executable, "-m", "awecore.cli", *args], capture_output=True,
                          text=True, env=env, timeout=60, check=False)


async def test_cli_query_and_admin(admin: httpx.AsyncClient, catalog_process: str) -> None:
    s = await seed(admin)
    expr = f"ReducedScienceFrame.chip.name == 'ccd53-{s.tag}'"
    r = awe_cli(catalog_process, "query", expr, "--count")
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "6"
    r = awe_cli(catalog_process, "query", expr, "--oids")
    assert set(r.stdout.split()) == set(s.reduced[:6])  # seed makes chip ccd53's first
    r = awe_cli(catalog_process, "query", expr, "--columns", "oid,imstat.stdev,chip.name")
    assert f"ccd53-{s.tag}" in r.stdout and "imstat.stdev" in r.stdout
    r = awe_cli(catalog_process, "query", "RawFrame.chip.nme == 'x'")
    assert r.returncode == 1 and "Chip has no attribute 'nme'" in r.stderr
    r = awe_cli(catalog_process, "query", "__import__('os').system('true')")
    assert r.returncode == 1 and "InvalidQuery" in r.stderr
    name = f"cli-{s.tag}"
    assert awe_cli(catalog_process, "project", "add", name).returncode == 0
    r = awe_cli(catalog_process, "user", "add", name, "--project", name)
    assert r.returncode == 0, r.stderr
    r = awe_cli(catalog_process, "token", "create", "--user", name)
    token = r.stdout.strip()
    assert token.startswith("awe_")
    me = awe.CatalogClient(catalog_process, token).whoami()
    assert me["name"] == name and me["projects"] == [name]


def test_awe_shell_has_the_model_and_a_session(catalog_process: str) -> None:
    script = "print('count', len(Chip.select().user_only()) >= 0, awe.current().url)\nexit\n"
    env = {"AWE_CATALOG_URL": catalog_process, "AWE_TOKEN": ADMIN_TOKEN, **CLI_ENV,
           "HOME": "/tmp"}
    r = subprocess.run([sys.executable, "-m", "awecore.cli", "shell"], input=script,
                       capture_output=True, text=True, env=env, timeout=60, check=False)
    assert r.returncode == 0, r.stderr
    assert f"connected to {catalog_process}" in r.stdout
    assert f"count True {catalog_process}" in r.stdout


def test_cli_simulate_night(tmp_path: Path) -> None:
    r = subprocess.run([sys.executable, "-m", "awecore.cli", "simulate", "night", "--out",
                        str(tmp_path), "--instrument", "tiny", "--chips", "3x1", "--size",
                        "64x48", "--seed", "4"], capture_output=True, text=True, timeout=120,
                       check=False)
    assert r.returncode == 0, r.stderr
    first = sorted(tmp_path.glob("AWECAM.*.fits"))[0]
    from astropy.io import fits

    with fits.open(first) as hdul:
        assert len(hdul) == 4 and hdul[1].data.shape == (48, 64)
    r = subprocess.run([sys.executable, "-m", "awecore.cli", "simulate", "night", "--out",
                        str(tmp_path), "--chips", "three"], capture_output=True, text=True,
                       timeout=60, check=False)
    assert r.returncode != 0 and "AxB" in r.stderr


def test_source_cone_from_python(session: awe.CatalogClient) -> None:
    (sl,) = session.create_batch([awe.SourceList(number_of_sources=3)])
    session.curate(sl, privileges=3)
    session.request("POST", f"/sources/{sl}", json={
        "ra": [33.0, 33.001, 34.0], "dec": [-12.0, -12.001, -12.0], "mag": [18.0, 19.5, 17.0]})
    table = awe.Source.cone(33.0, -12.0, 0.01)
    assert len(table) == 2 and list(table["seq"]) == [0, 1]
    assert len(awe.Source.cone(33.0, -12.0, 0.01, mag_max=19.0)) == 1
