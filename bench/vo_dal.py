"""VO data-access benchmarks (issue 14): SIA v2 query latency at many images, and SODA
cutout latency on a 2k x 4k frame.

Untimed: a whole local stack (``awe up``) in a temporary state folder. For SIA, ``--images``
published image products (ReducedScienceFrame, privilege 5) with their raw frames, written
straight into the catalog's tables by COPY (the VO service reads only those tables), spread
at random over 2400 square degrees (RA 120-240, Dec -10..+10) with chip-sized footprints
(0.11 x 0.23 deg, OmegaCAM's). For SODA, one 2048 x 4096 float32 frame with a TAN WCS
(0.214"/pix), stored through storage and registered as a public product.

Timed, as p50 and p95 over ``--queries`` queries at random positions:

- SIA: ``GET /sia/query?POS=CIRCLE ra dec 0.1`` (HTTP, the ObsCore SQL with its
  bounding-circle prefilter, the exact footprint test, the VOTable), beside the same SQL by
  hand: the statement the service compiles, run with asyncpg on the same database.
- SODA: ``GET /soda?ID=...&CIRCLE=ra dec 0.02`` (a 1.2' radius: ~670 x 670 pixels; the
  file fetched from storage over HTTP, the cutout, the FITS written), beside astropy's
  ``Cutout2D`` in-process on the same file read from a local disk (open + cut + write), and
  beside the bare transfer of the whole file from storage (the floor the service pays).

    .venv/bin/python bench/vo_dal.py [--images 100000] [--queries 200] [--cutouts 40]
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import io
import json
import math
import secrets
import shutil
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import numpy as np
from _common import line, local_stack, percentile
from astropy.io import fits
from astropy.nddata import Cutout2D
from astropy.wcs import WCS

from awe_vo.services.footprints import FootprintIndex
from awe_vo.services.sia import Statement, parse_sia
from awe_vo.tables import OBSCORE, SourceSpec
from awe_vo.votable import VOParams
from awecore.client import StorageClient
from awecore.visibility import Viewer

NIGHT = dt.datetime(2019, 3, 1, 2, tzinfo=dt.UTC)
CHIP = (0.11, 0.23)  # deg, a chip of OmegaCAM
RA_RANGE, DEC_RANGE = (120.0, 240.0), (-10.0, 10.0)
COLUMNS = ("oid", "type", "site", "creation_date", "creator", "project", "privileges",
           "is_valid", "filename", "file_size", "attributes", "refs", "hlc", "curation_hlc",
           "curation_site")


def _corners(ra: float, dec: float) -> str:
    w, h = CHIP[0] / 2 / max(math.cos(math.radians(dec)), 0.05), CHIP[1] / 2
    return ";".join(f"{ra + dx:.6f} {dec + dy:.6f}"
                    for dx, dy in ((-w, -h), (w, -h), (w, h), (-w, h)))


async def load_images(db_url: str, site: str, n: int, seed: int = 1) -> None:
    """``n`` public reduced frames with raw frames (footprints), an instrument, a filter."""
    rng = np.random.default_rng(seed)
    conn = await asyncpg.connect(db_url)
    try:
        now = dt.datetime.now(dt.UTC)
        rows: list[tuple[Any, ...]] = []
        hlc = [10**15]

        def obj(type_: str, attributes: dict[str, Any], refs: dict[str, str],
                filename: str | None = None) -> uuid.UUID:
            oid = uuid.uuid4()
            hlc[0] += 1
            rows.append((oid, type_, site, now, "admin", "admin", 5, 1, filename,
                         16_000_000 if filename else None, json.dumps(attributes),
                         json.dumps(refs), hlc[0], hlc[0], site))
            return oid

        inst = obj("Instrument", {"name": "BENCHCAM", "telescope": "VST",
                                  "pixel_scale": 0.214}, {})
        filt = obj("Filter", {"name": "r_SDSS", "central_wavelength": 620.0}, {})
        ras = rng.uniform(*RA_RANGE, n)
        decs = rng.uniform(*DEC_RANGE, n)
        run = uuid.uuid4().hex[:8]
        for i in range(n):
            when = (NIGHT + dt.timedelta(minutes=7 * i)).isoformat()
            raw = obj("RawScienceFrame", {"date_obs": when, "exptime": 180.0,
                                          "footprint": _corners(ras[i], decs[i]),
                                          "object": f"F{i}"},
                      {"instrument": str(inst), "filter": str(filt)})
            obj("ReducedScienceFrame", {"date_obs": when, "exptime": 180.0, "nx": 2048,
                                        "ny": 4096, "object": f"F{i}"},
                {"raw": str(raw), "instrument": str(inst), "filter": str(filt)},
                f"bench/{run}/reduced-{i}.fits")
            if len(rows) >= 50_000:
                await conn.copy_records_to_table("objects", records=rows, columns=COLUMNS)
                rows.clear()
        if rows:
            await conn.copy_records_to_table("objects", records=rows, columns=COLUMNS)
        await conn.execute("ANALYZE objects")
    finally:
        await conn.close()


async def _hand_sql(db_url: str, positions: list[tuple[float, float]], radius: float,
                    base: str, use_index: bool = True) -> list[float]:
    """The statement the service runs for each query, run by hand with asyncpg (no HTTP,
    no VOTable, no exact footprint test): the ObsCore SQL narrowed to the candidates of a
    footprint index built here, untimed, as the service's is. ``use_index=False``: the
    ObsCore SQL alone, what a query would cost without the index."""
    conn = await asyncpg.connect(db_url)
    times = []
    try:
        index = FootprintIndex()
        await index.refresh(conn)
        for ra, dec in positions:
            q = parse_sia(VOParams([("POS", f"CIRCLE {ra} {dec} {radius}")]), 10_000, 10_000)
            st = Statement()
            found = sorted(index.near(ra, dec, radius)) if use_index else None
            relation = OBSCORE.sql(SourceSpec(Viewer.anonymous(), st.bind, base, oids=found))
            where = q.where(st)
            names = ", ".join("o." + f.name for f in OBSCORE.fields)
            sql = (f"SELECT {names} FROM ({relation}) AS o WHERE {where} "
                   "ORDER BY o.t_min, o.obs_id")
            t0 = time.perf_counter()
            async with conn.transaction(readonly=True):
                await conn.fetch(sql, *st.params)
            times.append(time.perf_counter() - t0)
    finally:
        await conn.close()
    return times


def bench_sia(env: dict[str, str], n_images: int, queries: int) -> None:
    t0 = time.perf_counter()
    print(f"loading {n_images:,} images ...", flush=True)
    asyncio.run(load_images(env["AWE_POSTGRES_URL"], env["AWE_SITE"], n_images))
    print(f"loaded {n_images:,} images (+ raw frames) in {time.perf_counter() - t0:.0f} s")
    rng = np.random.default_rng(2)
    positions = list(zip(rng.uniform(RA_RANGE[0] + 1, RA_RANGE[1] - 1, queries).tolist(),
                         rng.uniform(DEC_RANGE[0] + 1, DEC_RANGE[1] - 1, queries).tolist(),
                         strict=True))
    radius = 0.1
    ours, found = [], 0
    with httpx.Client(base_url=env["AWE_VO_URL"], timeout=120) as client:
        client.get("/sia/query", params={"POS": "CIRCLE 180 0 0.1"})  # warm up
        for ra, dec in positions:
            t = time.perf_counter()
            r = client.get("/sia/query", params={"POS": f"CIRCLE {ra} {dec} {radius}"})
            ours.append(time.perf_counter() - t)
            r.raise_for_status()
            found += r.text.count("<TR>")
    base = asyncio.run(_hand_sql(env["AWE_POSTGRES_URL"], positions, radius,
                                 env["AWE_VO_URL"]))
    naive = asyncio.run(_hand_sql(env["AWE_POSTGRES_URL"], positions[:3], radius,
                                  env["AWE_VO_URL"], use_index=False))
    print(f"SIA: {queries} queries, POS CIRCLE r={radius} deg, {found / queries:.1f} images "
          f"per answer on average, {n_images:,} images")
    for p in (50, 95):
        line(f"SIA query p{p} ({n_images:,} images)", percentile(ours, p) * 1e3,
             percentile(base, p) * 1e3, "ms", higher_is_better=False)
    line("SIA query p50 vs ObsCore SQL without index", percentile(ours, 50) * 1e3,
         percentile(naive, 50) * 1e3, "ms", higher_is_better=False)


def _frame(path: Path) -> tuple[float, float]:
    """A 2048 x 4096 float32 frame with a TAN WCS at 0.214"/pix; returns its centre."""
    ny, nx = 4096, 2048
    rng = np.random.default_rng(3)
    data = rng.normal(1000.0, 10.0, (ny, nx)).astype(np.float32)
    w = WCS(naxis=2)
    w.wcs.ctype = ["RA---TAN", "DEC--TAN"]
    w.wcs.crval = [150.0, 2.0]
    w.wcs.crpix = [nx / 2 + 0.5, ny / 2 + 0.5]
    w.wcs.cd = [[-0.214 / 3600, 0.0], [0.0, 0.214 / 3600]]
    header = w.to_header()
    header["DATE-OBS"] = NIGHT.isoformat()
    fits.PrimaryHDU(data, header).writeto(path, overwrite=True)
    return 150.0, 2.0


def bench_cutout(env: dict[str, str], work: Path, n: int) -> None:
    path = work / "frame-2kx4k.fits"
    ra, dec = _frame(path)
    name = f"bench/cutout-{secrets.token_hex(4)}.fits"
    storage = StorageClient(env["AWE_STORAGE_URL"], env["AWE_TOKEN"])
    info = storage.put(name, path)
    storage.close()
    admin = {"Authorization": f"Bearer {env['AWE_TOKEN']}"}
    r = httpx.post(env["AWE_CATALOG_URL"] + "/objects/batch", headers=admin, timeout=60, json={
        "objects": [{"type": "ReducedScienceFrame", "privileges": 5, "filename": name,
                     "file_size": info.size, "checksum": info.sha256,
                     "attributes": {"nx": 2048, "ny": 4096}}]})
    r.raise_for_status()
    oid = r.json()["oids"][0]
    radius = 0.02
    rng = np.random.default_rng(4)
    spots = [(ra + dx, dec + dy) for dx, dy in zip(rng.uniform(-0.04, 0.04, n),
                                                   rng.uniform(-0.1, 0.1, n), strict=True)]
    ours, floor, base = [], [], []
    with httpx.Client(timeout=120) as client:
        client.get(env["AWE_VO_URL"] + "/soda", params={"ID": oid, "CIRCLE": f"{ra} {dec} 0.01"})
        for x, y in spots:
            t = time.perf_counter()
            got = client.get(env["AWE_VO_URL"] + "/soda",
                             params={"ID": oid, "CIRCLE": f"{x} {y} {radius}"})
            ours.append(time.perf_counter() - t)
            got.raise_for_status()
            t = time.perf_counter()
            client.get(f"{env['AWE_STORAGE_URL']}/files/{name}", headers=admin).raise_for_status()
            floor.append(time.perf_counter() - t)
    shape = fits.getdata(io.BytesIO(got.content)).shape
    for x, y in spots:
        t = time.perf_counter()
        with fits.open(path) as hdul:
            wcs = WCS(hdul[0].header)
            px, py = wcs.world_to_pixel_values(x, y)
            size = 2 * radius / (0.214 / 3600)
            cut = Cutout2D(hdul[0].data, (float(px), float(py)), (size, size), wcs=wcs,
                           mode="trim", copy=True)
            out = io.BytesIO()
            fits.PrimaryHDU(cut.data, cut.wcs.to_header()).writeto(out)
        base.append(time.perf_counter() - t)
    print(f"SODA: {n} cutouts, CIRCLE r={radius} deg of a 2048 x 4096 float32 frame "
          f"({path.stat().st_size / 2**20:.0f} MiB), cutouts of {shape[1]} x {shape[0]} pix")
    for p in (50, 95):
        line(f"cutout p{p} vs astropy Cutout2D in-process", percentile(ours, p) * 1e3,
             percentile(base, p) * 1e3, "ms", higher_is_better=False)
    line("cutout p50 vs fetching the whole file", percentile(ours, 50) * 1e3,
         percentile(floor, 50) * 1e3, "ms", higher_is_better=False)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--images", type=int, default=100_000)
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--cutouts", type=int, default=40)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="awe-bench-vo-dal-"))
    work.chmod(0o711)
    try:
        with local_stack(work / "state") as env:
            bench_cutout(env, work, args.cutouts)
            bench_sia(env, args.images, args.queries)
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
