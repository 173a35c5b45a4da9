"""Astro-WISE's 5-line script as its slides write it, against a real catalog over HTTP:
a reference compared with a name, a query in a truth test, and `awe shell` with pylab."""

from __future__ import annotations

import asyncio
import functools
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest
from conftest import ADMIN_TOKEN, CLI_ENV
from seed import seed

import awecore as awe
from awecore import ReducedScienceFrame as RSF

pytestmark = pytest.mark.integration


def oids(q: awe.Query[Any]) -> set[str]:
    return {o.record.oid for o in q if o.record is not None}


async def test_a_reference_compared_with_a_name(admin: httpx.AsyncClient,
                                                session: awe.CatalogClient) -> None:
    s = await seed(admin)
    chip, f841, f842 = f"ccd53-{s.tag}", f"841-{s.tag}", f"842-{s.tag}"
    in_841, in_842 = set(s.reduced[0:3]), set(s.reduced[3:6])  # the seed's order
    slides = (RSF.chip.name == chip) & (RSF.filter == f841)
    assert oids(slides) == oids((RSF.chip.name == chip) & (RSF.filter.name == f841)) == in_841
    assert oids((RSF.chip == chip) & (RSF.filter != f841)) == in_842
    assert oids((RSF.chip == chip) & RSF.filter.in_([f841, s.filters[f842]])) == in_841 | in_842
    assert oids((RSF.chip == chip) & RSF.filter.like(f"84?-{s.tag}")) == in_841 | in_842
    # a string that is an oid still compares oids
    assert oids((RSF.chip == s.chips[chip]) & (RSF.filter == s.filters[f841])) == in_841
    assert len((RSF.chip == chip) & (RSF.filter == "no-such-filter")) == 0
    # `and` would have dropped the chip: it is refused, and len() still counts
    with pytest.raises(TypeError, match=r"combine conditions with & \(and\)"):
        _ = (RSF.chip.name == chip) and (RSF.filter == f841)
    assert len(slides) == 3
    # the wire format is unchanged: a JSON client naming a filter by name learns how
    r = await admin.post("/query/count", json={"cls": "ReducedScienceFrame", "where": {
        "node": "compare", "op": "eq", "path": ["filter"], "value": f841}})
    assert r.status_code == 400, r.text
    assert "(to match by name: ReducedScienceFrame.filter.name)" in r.json()["detail"]


async def test_the_cli_takes_the_slides_query(admin: httpx.AsyncClient,
                                              catalog_process: str) -> None:
    s = await seed(admin)
    env = {"AWE_CATALOG_URL": catalog_process, "AWE_TOKEN": ADMIN_TOKEN, **CLI_ENV}
    run = functools.partial(subprocess.run, capture_output=True, text=True, env=env,
                            timeout=60, check=False)
    query = (f"(ReducedScienceFrame.chip.name == 'ccd53-{s.tag}') & "
             f"(ReducedScienceFrame.filter == '841-{s.tag}')")
    r = await asyncio.to_thread(run, [sys.executable, "-m", "awecore.cli", "query", query,
                                      "--count"])
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "3"
    r = await asyncio.to_thread(run, [sys.executable, "-m", "awecore.cli", "query",
                                      query.replace(" & ", " and "), "--count"])
    assert r.returncode == 1 and "use & (and), | (or) and ~ (not)" in r.stderr


async def test_awe_shell_runs_the_five_line_script_with_its_plot(
        admin: httpx.AsyncClient, catalog_process: str, tmp_path: Path) -> None:
    s = await seed(admin)
    png = tmp_path / "sky_vs_flat.png"
    script = "\n".join([
        # as the slides write it: refused, saying what to write
        f"q = (ReducedScienceFrame.chip.name == 'ccd53-{s.tag}') and "
        f"(ReducedScienceFrame.filter == '841-{s.tag}')",
        f"q = (ReducedScienceFrame.chip.name == 'ccd53-{s.tag}') & "
        f"(ReducedScienceFrame.filter == '841-{s.tag}')",
        "x = [k.imstat.stdev for k in q]",
        "y = [k.flat.imstat.stdev for k in q]",
        "pylab.scatter(x, y)",
        f"pylab.savefig({str(png)!r})",
        "print('points', sorted(x), y)",
        "import pylab as imported; print('pylab imports', imported.scatter is pylab.scatter)",
        "exit", ""])
    env = {"AWE_CATALOG_URL": catalog_process, "AWE_TOKEN": ADMIN_TOKEN, **CLI_ENV,
           "HOME": str(tmp_path), "MPLCONFIGDIR": str(tmp_path / "mpl"), "MPLBACKEND": "Agg"}
    run = functools.partial(subprocess.run, input=script, capture_output=True, text=True,
                            env=env, timeout=120, check=False)
    r = await asyncio.to_thread(run, [sys.executable, "-m", "awecore.cli", "shell"])
    assert r.returncode == 0, r.stderr
    out = re.sub(r"\x1b\[[0-9;]*m", "", r.stdout)  # IPython colours its tracebacks
    assert "TypeError: a query has no truth value: combine conditions with & (and)" in out, out
    assert "points [10.0, 11.0, 12.0] [0.01, 0.01, 0.01]" in out, out
    assert "pylab imports True" in out
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
