"""``make demo``: the local stack, a small simulated night in the catalogue, the 5-line script.

Until storage and compute exist this demo registers the night's frames and calibrations
directly (with statistics drawn from a seeded model of the camera) and then works the way
a scientist would: queries through references, best calibrations, curation, the changelog.
"""

from __future__ import annotations

import datetime as dt

import numpy as np
from rich.console import Console
from rich.table import Table

import awecore as awe
from awecore.model import (
    BiasFrame,
    Chip,
    DBObject,
    Filter,
    ImStat,
    Instrument,
    MasterFlatFrame,
    RawBiasFrame,
    RawScienceFrame,
    ReducedScienceFrame,
)
from awecore.stack import Stack

console = Console()
NIGHT = dt.datetime(2003, 2, 14, 20, tzinfo=dt.UTC)
CHIPS = [f"ccd5{i}" for i in range(8)]
FILTERS = ["841", "842"]


def _stat(rng: np.random.Generator, mean: float, stdev: float) -> ImStat:
    return ImStat(mean=mean, median=mean, stdev=float(stdev),
                      min=float(mean - 5 * stdev), max=float(mean + 50 * stdev))


def ingest_night(client: awe.CatalogClient, seed: int = 2003) -> None:
    """Register a night: per chip biases, a master bias, and per filter a flat and frames."""
    rng = np.random.default_rng(seed)
    inst = client.save(Instrument(name="DEMOCAM", telescope="VST", pixel_scale=0.21))
    filters = {f: client.save(Filter(name=f, central_wavelength=float(f))) for f in FILTERS}
    window = {"timestamp_start": NIGHT - dt.timedelta(days=1),
              "timestamp_end": NIGHT + dt.timedelta(days=1)}
    for name in CHIPS:
        chip = client.save(Chip(name=name, instrument=inst, nx=2048, ny=4100))
        noise = rng.uniform(4.0, 6.0)
        raws = client.create_batch([
            RawBiasFrame(chip=chip, instrument=inst, exptime=0.0, object="BIAS",
                         date_obs=NIGHT - dt.timedelta(hours=3, minutes=i),
                         filename=f"raw/{NIGHT:%Y%m%d}/{name}/bias{i:02d}.fits",
                         imstat=_stat(rng, 400 + rng.normal(), noise)) for i in range(10)])
        bias = client.save(BiasFrame(chip=chip, raw_bias_frames=raws, software_version="0.1.0",
                                     imstat=_stat(rng, 400.0, noise / np.sqrt(10)), **window))
        for fname, filt in filters.items():
            flat_rms = rng.uniform(0.005, 0.02)
            flat = client.save(MasterFlatFrame(chip=chip, filter=filt, software_version="0.1.0",
                                               imstat=_stat(rng, 1.0, flat_rms), **window))
            raws = client.create_batch([
                RawScienceFrame(chip=chip, filter=filt, instrument=inst, exptime=300.0,
                                object=f"KIDS_{i}", date_obs=NIGHT + dt.timedelta(minutes=10 * i),
                                filename=f"raw/{NIGHT:%Y%m%d}/{name}/sci{fname}_{i}.fits",
                                imstat=_stat(rng, 1000.0, 30.0)) for i in range(5)])
            sky = 30.0 * (1 + 20 * flat_rms)  # a worse flat leaves more structure in the sky
            client.create_batch([
                ReducedScienceFrame(chip=chip, filter=filt, raw=raw, bias=bias, flat=flat,
                                    exptime=300.0, software_version="0.1.0",
                                    imstat=_stat(rng, 1000.0, sky + rng.normal(0, 0.5)))
                for raw in client.get_many(raws)])


def main() -> None:
    console.rule("[bold]AWE demo")
    with console.status("starting the local stack (PostgreSQL, broker, catalog, relay)..."):
        stack = Stack()
        env = stack.up()
    console.print(f"stack up; catalog at {env['AWE_CATALOG_URL']} (settings in {stack.env_file})")
    client = awe.connect(env["AWE_CATALOG_URL"], env["AWE_TOKEN"])

    if len(Instrument.name == "DEMOCAM") == 0:
        with console.status("registering a simulated night..."):
            ingest_night(client)
        console.print(f"registered {len(DBObject.select())} objects for the night of "
                      f"{NIGHT:%Y-%m-%d}")
    else:
        console.print("the demo night is already in the catalogue (run `make down` and remove "
                      ".awe to start afresh)")

    console.rule("The 5-line script")
    console.print("q = (ReducedScienceFrame.chip.name == 'ccd53') & "
                  "(ReducedScienceFrame.filter.name == '841')\n"
                  "x = [k.imstat.stdev for k in q]\ny = [k.flat.imstat.stdev for k in q]",
                  markup=False, highlight=False)
    q = (ReducedScienceFrame.chip.name == "ccd53") & (ReducedScienceFrame.filter.name == "841")
    x = [k.imstat.stdev for k in q]
    y = [k.flat.imstat.stdev for k in q]
    table = Table("frame", "sky rms (x)", "flat rms (y)")
    for i, (a, b) in enumerate(zip(x, y, strict=True)):
        table.add_row(str(i), f"{a:.2f}", f"{b:.4f}")
    console.print(table)

    console.rule("Per chip: sky noise against flat-field quality")
    summary = Table("chip", "filter", "frames", "mean sky rms", "flat rms", "best bias")
    for chip in CHIPS:
        bias = client.best(BiasFrame, chip, NIGHT)
        for f in FILTERS:
            frames = list((ReducedScienceFrame.chip.name == chip)
                          & (ReducedScienceFrame.filter.name == f))
            summary.add_row(chip, f, str(len(frames)),
                            f"{np.mean([k.imstat.stdev for k in frames]):.2f}",
                            f"{frames[0].flat.imstat.stdev:.4f}",
                            bias.record.oid[:18] + "..." if bias.record else "-")
    console.print(summary)

    console.rule("Catalogue")
    counts = Table("class", "objects")
    for cls in (RawBiasFrame, RawScienceFrame, BiasFrame, MasterFlatFrame, ReducedScienceFrame):
        counts.add_row(cls.__name__, str(len(cls.select())))
    console.print(counts)
    console.print(f"changelog: {client.changes(limit=1).last_sequence} changes; the outbox relay "
                  f"publishes them to the Kafka topic awe.{env['AWE_SITE']}.catalog.changes")
    console.rule("Where to look next")
    console.print(
        f"- API docs:      {env['AWE_CATALOG_URL']}/docs\n"
        "- a prompt:      .venv/bin/awe shell\n"
        "- a query:       .venv/bin/awe query \"RawFrame.chip.name == 'ccd53'\" --count\n"
        "- the stack:     .venv/bin/awe status   (logs under .awe/logs)\n"
        "- stop it:       make down")


if __name__ == "__main__":
    main()
