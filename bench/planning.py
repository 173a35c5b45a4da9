"""Planning benchmark: a 10^4-node DAG of targets planned backwards through the catalog.

A night of a 32-chip camera is registered in the catalog (raw frames as records only: the
planner reads no pixels), with a reference catalogue. The source list of every science
frame is then planned as one DAG (``Planner.plan_many``: per raw frame a reduced frame, its
astrometry and its source list; per chip the calibrations and the night's photometry from
the standard field). Beside it, from the same run:

- the same DAG ordered by the standard library's ``graphlib.TopologicalSorter`` (the graph
  work alone, no look-ups): how much of planning is talking to the catalog;
- a sample of the same targets planned one at a time, as a client without plans would.

    .venv/bin/python bench/planning.py [--exposures 102] [--chips 32] [--sample 100]
"""

from __future__ import annotations

import argparse
import datetime as dt
import graphlib
import time
from typing import Any

import httpx
from _common import TOKEN, catalog_service, line

from awecore.client import CatalogClient
from awecore.targets import Planner, Target

NIGHT = dt.date(2003, 2, 14)
BATCH = 5000


def register(client: httpx.Client, objects: list[dict[str, Any]]) -> list[str]:
    oids: list[str] = []
    for i in range(0, len(objects), BATCH):
        r = client.post("/objects/batch", json={"objects": objects[i:i + BATCH]})
        r.raise_for_status()
        oids.extend(r.json()["oids"])
    return oids


def night(client: httpx.Client, chips: int, exposures: int) -> list[Target]:
    """Raw frames of one night for every chip; returns the source-list targets."""
    (instrument,) = register(client, [{"type": "Instrument", "privileges": 3,
                                       "attributes": {"name": "BENCHCAM"}}])
    names = [f"ccd{i:02d}" for i in range(chips)]
    chip_oids = dict(zip(names, register(client, [
        {"type": "Chip", "privileges": 3, "attributes": {"name": n},
         "refs": {"instrument": instrument}} for n in names]), strict=True))
    (filt,) = register(client, [{"type": "Filter", "privileges": 3,
                                 "attributes": {"name": "r"}}])
    register(client, [{"type": "ReferenceCatalog", "privileges": 3, "filename":
                       "raw/refcat/BENCH/refcat.fits", "file_size": 1, "attributes": {
                           "name": "BENCH", "n_stars": 1, "filters": "r", "ra_min": 0.0,
                           "ra_max": 360.0, "dec_min": -90.0, "dec_max": 90.0}}])
    start = dt.datetime.combine(NIGHT, dt.time(17), dt.UTC)
    raws: list[dict[str, Any]] = []
    chip_of: list[str] = []
    kinds = ([("RawBiasFrame", False)] * 10 + [("RawDomeFlatFrame", True)] * 5
             + [("RawTwilightFlatFrame", True)] * 5 + [("RawStandardFrame", True)]
             + [("RawScienceFrame", True)] * exposures)
    for n, (cls, filtered) in enumerate(kinds):
        when = (start + dt.timedelta(minutes=2 * n)).isoformat()
        for name, chip in chip_oids.items():
            refs = {"instrument": instrument, "chip": chip, **({"filter": filt}
                                                              if filtered else {})}
            raws.append({"type": cls, "privileges": 3, "refs": refs,
                         "filename": f"raw/BENCHCAM/{NIGHT}/{n}/{name}.fits", "file_size": 1,
                         "attributes": {"date_obs": when, "exptime": 300.0, "ra": 150.0,
                                        "dec": -30.0}})
            chip_of.append(name)
    oids = register(client, raws)
    return [Target("SourceList", name, NIGHT, "r", oid)
            for r, name, oid in zip(raws, chip_of, oids, strict=True)
            if r["type"] == "RawScienceFrame"]


def run(catalog_url: str, chips: int, exposures: int, sample: int) -> None:
    with httpx.Client(base_url=catalog_url, timeout=600,
                      headers={"Authorization": f"Bearer {TOKEN}"}) as client:
        t = time.perf_counter()
        targets = night(client, chips, exposures)
        print(f"registered the night in {time.perf_counter() - t:.1f} s: {len(targets):,} "
              "science frames")
    with CatalogClient(catalog_url, TOKEN) as catalog:
        t = time.perf_counter()
        plan = Planner(catalog).plan_many(targets)
        ours = time.perf_counter() - t
        n = len(plan.nodes)
        assert len(plan.to_make) == n  # a new night: everything is to be made
        t = time.perf_counter()
        order = list(graphlib.TopologicalSorter(
            {k: node.input_keys() for k, node in plan.nodes.items()}).static_order())
        base = time.perf_counter() - t
        assert len(order) == n
        line(f"plan {n:,} nodes as one DAG (s)", ours, base, "s", False)
        line(f"planning rate, {n:,}-node DAG", n / ours, n / base, "nodes/s", True)
        t = time.perf_counter()
        for target in targets[:sample]:
            Planner(catalog).plan_many([target])
        one_by_one = (time.perf_counter() - t) / sample * 1000
        line(f"per target: one plan vs one at a time ({sample})",
             ours / len(targets) * 1000, one_by_one, "ms", False)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--chips", type=int, default=32)
    parser.add_argument("--exposures", type=int, default=102)
    parser.add_argument("--sample", type=int, default=100)
    args = parser.parse_args()
    print(f"planning benchmark: {args.chips} chips x {args.exposures} science exposures "
          "(embedded PostgreSQL, one uvicorn worker, 2 cores)")
    with catalog_service() as catalog:
        run(catalog.url, args.chips, args.exposures, args.sample)


if __name__ == "__main__":
    main()
