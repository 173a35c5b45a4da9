"""Planning benchmark: a 10^4-node DAG of targets planned backwards through the catalog.

Several nights of a 32-chip camera are registered in the catalog (raw frames as records only:
the planner reads no pixels), with a reference catalogue: biases and flats on the first
night only (as surveys take them every few nights), a standard field and science frames
every night. The source list of every science frame of every night is then planned as one
DAG (``Planner.plan_many``: per raw frame a reduced frame, its astrometry and its source
list; per chip the calibrations, made from the first night and valid for the others, and
each night's photometry from its standard field). The planner asks the catalogue in
batches: the best calibrations of the frames of every night, class and chip in one request
(``POST /calibrations/best``, one span each: the catalogue says whether one calibration is
the best throughout, else the moments are asked one by one), what the walk needs of the
targets' raw frames as a few fields each (``POST /query/values``: one request, not their
whole records), other records 1,000 oids a request, raw frames and existing products one
query per class.
Beside it, from the same run:

- the same DAG ordered by the standard library's ``graphlib.TopologicalSorter`` (the graph
  work alone, no look-ups): how much of planning is talking to the catalog;
- a sample of the same targets planned one at a time, as a client without plans would.

    .venv/bin/python bench/planning.py [--nights 3] [--exposures 34] [--chips 32]
                                       [--sample 100]
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


def night(client: httpx.Client, chips: int, exposures: int, nights: int = 1) -> list[Target]:
    """Raw frames of ``nights`` nights for every chip, calibrations on the first only;
    returns the source-list targets."""
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
    raws: list[dict[str, Any]] = []
    chip_of: list[tuple[str, dt.date]] = []
    for d in range(nights):
        date = NIGHT + dt.timedelta(days=d)
        start = dt.datetime.combine(date, dt.time(17), dt.UTC)
        calibrations = ([("RawBiasFrame", False)] * 10 + [("RawDomeFlatFrame", True)] * 5
                        + [("RawTwilightFlatFrame", True)] * 5) if d == 0 else []
        kinds = (calibrations + [("RawStandardFrame", True)]
                 + [("RawScienceFrame", True)] * exposures)
        for n, (cls, filtered) in enumerate(kinds):
            when = (start + dt.timedelta(minutes=2 * n)).isoformat()
            for name, chip in chip_oids.items():
                refs = {"instrument": instrument, "chip": chip, **({"filter": filt}
                                                                  if filtered else {})}
                raws.append({"type": cls, "privileges": 3, "refs": refs,
                             "filename": f"raw/BENCHCAM/{date}/{n}/{name}.fits",
                             "file_size": 1,
                             "attributes": {"date_obs": when, "exptime": 300.0, "ra": 150.0,
                                            "dec": -30.0}})
                chip_of.append((name, date))
    oids = register(client, raws)
    return [Target("SourceList", name, date, "r", oid)
            for r, (name, date), oid in zip(raws, chip_of, oids, strict=True)
            if r["type"] == "RawScienceFrame"]


def run(catalog_url: str, chips: int, exposures: int, sample: int, nights: int) -> None:
    with httpx.Client(base_url=catalog_url, timeout=600,
                      headers={"Authorization": f"Bearer {TOKEN}"}) as client:
        t = time.perf_counter()
        targets = night(client, chips, exposures, nights)
        print(f"registered {nights} night(s) in {time.perf_counter() - t:.1f} s: "
              f"{len(targets):,} science frames")
    with CatalogClient(catalog_url, TOKEN) as catalog:
        t = time.perf_counter()
        plan = Planner(catalog).plan_many(targets)
        ours = time.perf_counter() - t
        n = len(plan.nodes)
        assert len(plan.to_make) == n  # new nights: everything is to be made
        assert {node.night for node in plan.nodes.values() if node.cls == "BiasFrame"} == {
            NIGHT}  # the calibrations of every night are made from the first
        t = time.perf_counter()
        order = list(graphlib.TopologicalSorter(
            {k: node.input_keys() for k, node in plan.nodes.items()}).static_order())
        base = time.perf_counter() - t
        assert len(order) == n
        line(f"plan {n:,} nodes, {nights} nights, one DAG (s)", ours, base, "s", False)
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
    parser.add_argument("--nights", type=int, default=3)
    parser.add_argument("--exposures", type=int, default=34, help="science exposures a night")
    parser.add_argument("--sample", type=int, default=100)
    args = parser.parse_args()
    print(f"planning benchmark: {args.chips} chips x {args.nights} nights x {args.exposures} "
          "science exposures (embedded PostgreSQL, one uvicorn worker, 2 cores)")
    with catalog_service() as catalog:
        run(catalog.url, args.chips, args.exposures, args.sample, args.nights)


if __name__ == "__main__":
    main()
