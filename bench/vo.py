"""TAP benchmark (issue 14): an ADQL cone query on the source table through the VO service,
beside the same search written by hand in SQL.

Untimed: a whole local stack (``awe up``, which starts the VO service) in a temporary state
folder; ``--sources`` sources (default 10^7) in source lists of 10^5 at privilege 5, spread
uniformly at 10^4 per square degree in a band of Dec -10..+10 (10^7: RA 120-170, 1000
square degrees; fewer sources, a narrower band: a cone holds as many sources whatever the
size), written by binary COPY straight into the catalog's source table with its indexes
dropped and rebuilt afterwards (loading through the API is the catalog benchmark's
business).

Timed, for cones of radius 0.1, 0.5 and 2 degrees at random centres, p50 and p95 of:

- ours: ``POST /tap/sync`` with ``SELECT ra, dec, mag FROM awe.sources WHERE
  CONTAINS(POINT('ICRS', ra, dec), CIRCLE('ICRS', ...)) = 1`` as an anonymous caller
  (parse, compile, privilege rule, run, VOTable written and sent);
- baseline: the same search by hand with asyncpg on the same database: the HEALPix ranges
  of the cone (``healpix BETWEEN lo AND hi OR ...``), the exact distance, the privilege rule
  (``privileges >= 5``), the same three columns;
- for reference, the SQL the compiler wrote, run by asyncpg (what HTTP, ADQL parsing and
  the VOTable add is the difference to ours), and the catalog's own cone statement
  (``GET /sources/cone``: the ranges as arrays joined to the table), whose plan the
  planner may make a sequential scan.

    .venv/bin/python bench/vo.py [--sources 10000000] [--queries 40]
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import tempfile
import time
import uuid
from pathlib import Path

import asyncpg
import httpx
import numpy as np
from _common import line, local_stack, percentile
from astropy import units as u
from astropy_healpix import HEALPix

from awe_vo.services.adql import compile_adql
from awecore.healpix import LEVEL, ranges_for_cone
from awecore.visibility import Viewer

#: sources per square degree (a deep survey's catalogue): the sky area grows with --sources,
#: so a cone holds the same number of sources whatever the table's size
DENSITY = 10_000
DEC_RANGE = (-10.0, 10.0)
RA_START = 120.0
PER_LIST = 100_000
RADII = (0.1, 0.5, 2.0)
CHUNK = 1_000_000


def adql(ra: float, dec: float, radius: float) -> str:
    return ("SELECT ra, dec, mag FROM awe.sources WHERE CONTAINS(POINT('ICRS', ra, dec), "
            f"CIRCLE('ICRS', {ra}, {dec}, {radius})) = 1")


def hand_sql(ranges: list[tuple[int, int]]) -> str:
    """The search as one would write it by hand: the cone's HEALPix ranges (index range
    scans), the exact distance, the privilege rule, the three columns."""
    where = " OR ".join(f"s.healpix BETWEEN {lo} AND {hi}" for lo, hi in ranges)
    return ("SELECT s.ra, s.dec, s.mag FROM sources s JOIN objects l ON l.oid = s.sourcelist "
            f"WHERE ({where}) AND degrees(2 * asin(sqrt(sin(radians(s.dec - $2) / 2) ^ 2 "
            "+ cos(radians(s.dec)) * cos(radians($2)) * sin(radians(s.ra - $1) / 2) ^ 2))) "
            "<= $3 AND l.privileges >= 5")


#: the catalog's own cone statement (GET /sources/cone): the ranges as arrays joined to the
#: table; shown for reference (its plan is the planner's choice: see the figures)
CATALOG_STYLE = """
WITH near AS MATERIALIZED (
  SELECT s.sourcelist, s.ra, s.dec, s.mag
  FROM unnest($1::bigint[], $2::bigint[]) AS r(lo, hi)
  JOIN sources s ON s.healpix BETWEEN r.lo AND r.hi
  WHERE degrees(2 * asin(sqrt(sin(radians(s.dec - $4) / 2) ^ 2
        + cos(radians(s.dec)) * cos(radians($4)) * sin(radians(s.ra - $3) / 2) ^ 2))) <= $5)
SELECT n.ra, n.dec, n.mag FROM near n JOIN objects l ON l.oid = n.sourcelist
WHERE l.privileges >= 5
"""


def ra_range(n: int) -> tuple[float, float]:
    """The RA band that holds ``n`` sources at DENSITY (at least 5 degrees: a 2-degree cone
    needs room), about uniform in area (the band is near the equator)."""
    width = n / DENSITY / (DEC_RANGE[1] - DEC_RANGE[0])
    return RA_START, RA_START + max(5.0, width)


async def load(db_url: str, catalog_url: str, token: str, n: int) -> None:
    """``n`` sources in lists of PER_LIST, by COPY, with the table's indexes rebuilt."""
    lists = max(1, -(-n // PER_LIST))
    async with httpx.AsyncClient(base_url=catalog_url, timeout=120,
                                 headers={"Authorization": f"Bearer {token}"}) as client:
        r = await client.post("/objects/batch", json={"objects": [
            {"type": "SourceList", "privileges": 5} for _ in range(lists)]})
        r.raise_for_status()
        oids = [uuid.UUID(o) for o in r.json()["oids"]]
    index = HEALPix(nside=2**LEVEL, order="nested")
    rng = np.random.default_rng(14)
    conn = await asyncpg.connect(db_url)
    try:
        await conn.execute("DROP INDEX IF EXISTS sources_healpix")
        await conn.execute("DROP INDEX IF EXISTS sources_mag")
        start = time.perf_counter()
        done = 0
        while done < n:
            size = min(CHUNK, n - done)
            # uniform on the sphere within the band: sin(dec) uniform
            ra = rng.uniform(*ra_range(n), size)
            s0, s1 = np.sin(np.radians(DEC_RANGE))
            dec = np.degrees(np.arcsin(rng.uniform(s0, s1, size)))
            pix = np.asarray(index.lonlat_to_healpix(ra * u.deg, dec * u.deg), dtype=np.int64)
            mag = rng.uniform(16, 24, size).astype(np.float32)
            seq = np.arange(done, done + size)
            owner = [oids[k] for k in (seq // PER_LIST).tolist()]
            await conn.copy_records_to_table(  # binary COPY
                "sources", records=zip(owner, (seq % PER_LIST).tolist(), ra.tolist(),
                                       dec.tolist(), pix.tolist(), mag.tolist(), strict=True),
                columns=["sourcelist", "seq", "ra", "dec", "healpix", "mag"])
            done += size
            print(f"\r  loaded {done:,}/{n:,} sources", end="", flush=True)
        print(f"  ({time.perf_counter() - start:.0f} s)")
        start = time.perf_counter()
        await conn.execute("CREATE INDEX sources_healpix ON sources (healpix)")
        await conn.execute("CREATE INDEX sources_mag ON sources (mag)")
        await conn.execute("ANALYZE sources")
        await conn.execute("ANALYZE objects")
        print(f"  indexes rebuilt ({time.perf_counter() - start:.0f} s)")
    finally:
        await conn.close()


def centres(n: int, k: int, radius: float, seed: int) -> list[tuple[float, float]]:
    rng = np.random.default_rng(seed)
    margin = radius + 0.1
    ra0, ra1 = ra_range(n)
    return [(float(rng.uniform(ra0 + margin, ra1 - margin)),
             float(rng.uniform(DEC_RANGE[0] + margin, DEC_RANGE[1] - margin)))
            for _ in range(k)]


async def timed_sql(db_url: str, points: list[tuple[float, float]], radius: float
                    ) -> dict[str, list[float]]:
    """Per query: the hand-written SQL, the compiler's SQL and the catalog's statement."""
    conn = await asyncpg.connect(db_url, server_settings={"plan_cache_mode":
                                                          "force_custom_plan"})
    times: dict[str, list[float]] = {"hand": [], "compiled": [], "catalog": [], "rows": []}
    try:
        for ra, dec in points:
            ranges = list(zip(*ranges_for_cone(ra, dec, radius), strict=True))
            start = time.perf_counter()
            rows = await conn.fetch(hand_sql(ranges), ra, dec, radius)
            times["hand"].append(time.perf_counter() - start)
            times["rows"].append(len(rows))
            c = compile_adql(adql(ra, dec, radius), Viewer.anonymous(), "http://x", 1_000_000)
            start = time.perf_counter()
            again = await conn.fetch(c.sql, *c.params)
            times["compiled"].append(time.perf_counter() - start)
            start = time.perf_counter()
            third = await conn.fetch(CATALOG_STYLE, [a for a, _ in ranges],
                                     [b for _, b in ranges], ra, dec, radius)
            times["catalog"].append(time.perf_counter() - start)
            assert len(again) == len(rows) == len(third), (len(again), len(rows), len(third))
    finally:
        await conn.close()
    return times


def timed_tap(vo_url: str, points: list[tuple[float, float]], radius: float) -> list[float]:
    out = []
    with httpx.Client(base_url=vo_url, timeout=600) as client:
        for ra, dec in points:
            start = time.perf_counter()
            r = client.post("/tap/sync", data={"LANG": "ADQL", "MAXREC": "1000000",
                                               "QUERY": adql(ra, dec, radius)})
            _ = r.content
            out.append(time.perf_counter() - start)
            r.raise_for_status()
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sources", type=int, default=10_000_000)
    parser.add_argument("--queries", type=int, default=40,
                        help="cones per radius (a quarter as many at 2 degrees)")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="awe-bench-vo-"))
    work.chmod(0o711)  # PostgreSQL runs as nobody under root: it must get through
    try:
        with local_stack(work / "state") as env:
            ra0, ra1 = ra_range(args.sources)
            print(f"loading {args.sources:,} sources over "
                  f"{(ra1 - ra0) * (DEC_RANGE[1] - DEC_RANGE[0]):,.0f} deg^2")
            asyncio.run(load(env["AWE_POSTGRES_URL"], env["AWE_CATALOG_URL"], env["AWE_TOKEN"],
                             args.sources))
            print(f"TAP cone search on {args.sources:,} sources (p50 and p95, anonymous; "
                  "baseline: the same search in SQL by hand)")
            for i, radius in enumerate(RADII):
                k = max(5, args.queries // 4) if radius >= 2 else args.queries
                points = centres(args.sources, k, radius, seed=i)
                # every cone once untimed (its pages in PostgreSQL's cache), so that each
                # way is timed warm, whichever comes first
                asyncio.run(timed_sql(env["AWE_POSTGRES_URL"], points, radius))
                ours = timed_tap(env["AWE_VO_URL"], points, radius)
                sql = asyncio.run(timed_sql(env["AWE_POSTGRES_URL"], points, radius))
                rows = int(np.median(sql["rows"]))
                for p in (50, 95):
                    line(f"cone r={radius:g} deg ({rows:,} rows) p{p}",
                         percentile(ours, p) * 1000, percentile(sql["hand"], p) * 1000, "ms",
                         higher_is_better=False)
                for what, label in (("compiled", "the compiled SQL alone"),
                                    ("catalog", "the catalog's cone statement")):
                    print(f"{'':<44} {label}: p50 {percentile(sql[what], 50) * 1000:,.2f} ms,"
                          f" p95 {percentile(sql[what], 95) * 1000:,.2f} ms")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
