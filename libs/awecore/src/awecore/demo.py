"""``make demo``: the local stack, a simulated night ingested, the catalogue at work.

1. start PostgreSQL, the broker, the catalog (+ outbox relay) and storage;
2. simulate a night of a small 8-chip camera (biases, flats, science and a standard field);
3. ingest it: validate, classify, split per chip, store, register Raw*Frames;
4. preview the calibrations and reduced frames the compute service will make (issue 4),
   registered in the catalogue with their lineage back to the raw frames but without
   pixels yet, so the 5-line script has something to work on;
5. run the 5-line script, a best-calibration look-up, and show where to look next.
"""

from __future__ import annotations

import datetime as dt

import numpy as np
from rich.console import Console
from rich.progress import BarColumn, DownloadColumn, MofNCompleteColumn, Progress, TextColumn
from rich.table import Table

import awecore as awe
from awecore.client import StorageClient
from awecore.ingest import Ingester, expand
from awecore.model import (
    BiasFrame,
    DBObject,
    ImStat,
    MasterFlatFrame,
    RawBiasFrame,
    RawDomeFlatFrame,
    RawFrame,
    RawScienceFrame,
    ReducedScienceFrame,
)
from awecore.sim import PRESETS, NightPlan, simulate_night
from awecore.stack import Stack

console = Console()
NIGHT = dt.date(2003, 2, 14)


def _stat(mean: float, stdev: float) -> ImStat:
    return ImStat(mean=mean, median=mean, stdev=float(stdev), min=mean - 5 * stdev,
                  max=mean + 50 * stdev)


def simulate_and_ingest(stack: Stack, env: dict[str, str], catalog: awe.CatalogClient) -> None:
    folder = stack.dir / "nights" / NIGHT.isoformat()
    spec = PRESETS["small"]
    plan = NightPlan(science_fields=2, exposures_per_field=2)
    if not (folder / "truth.json").exists():
        with Progress(TextColumn("simulating the night"), BarColumn(), MofNCompleteColumn(),
                      console=console) as bar:
            task = bar.add_task("sim", total=None)
            simulate_night(folder, spec, seed=2003, date=NIGHT, plan=plan,
                           progress=lambda _: bar.advance(task))
    files = expand([folder])
    storage = StorageClient(env["AWE_STORAGE_URL"], env["AWE_TOKEN"])
    with Progress(TextColumn("ingesting"), BarColumn(), MofNCompleteColumn(), DownloadColumn(),
                  console=console) as bar:
        task = bar.add_task("files", total=len(files))
        report = Ingester(catalog, storage.put).ingest(
            files, lambda _p, _s: bar.advance(task))
    console.print(f"{len(files)} raw files from {folder}: {sum(report.frames.values())} chip "
                  f"frames registered, {report.skipped} already there, "
                  f"{len(report.failed)} refused")


def preview_processing(catalog: awe.CatalogClient, seed: int = 2003) -> int:
    """Master biases, flats and reduced frames as compute will make them, without pixels."""
    if len(ReducedScienceFrame.select()) > 0:
        return 0
    rng = np.random.default_rng(seed)
    start, end = (dt.datetime.combine(NIGHT, dt.time(), dt.UTC) + dt.timedelta(days=d)
                  for d in (-1, 2))
    made = 0
    for chip in sorted({f.chip.name for f in RawBiasFrame.select()}):
        raws = list(RawBiasFrame.chip.name == chip)
        noise = float(np.mean([r.imstat.stdev for r in raws]))
        bias = catalog.save(BiasFrame(chip=raws[0].chip, raw_bias_frames=raws,
                                      timestamp_start=start, timestamp_end=end,
                                      software_version="preview",
                                      imstat=_stat(raws[0].imstat.median, noise / 10)))
        made += 1
        science = list(RawScienceFrame.chip.name == chip)
        for filt in sorted({s.filter.name for s in science}):
            domes = list((RawDomeFlatFrame.chip.name == chip)
                         & (RawDomeFlatFrame.filter.name == filt))
            flat_rms = float(rng.uniform(0.004, 0.02))
            flat = catalog.save(MasterFlatFrame(
                chip=domes[0].chip, filter=domes[0].filter, timestamp_start=start,
                timestamp_end=end, software_version="preview", imstat=_stat(1.0, flat_rms)))
            frames = [s for s in science if s.filter.name == filt]
            catalog.create_batch([ReducedScienceFrame(
                raw=s, chip=s.chip, filter=s.filter, bias=bias, flat=flat, exptime=s.exptime,
                software_version="preview",
                imstat=_stat(s.imstat.mean - bias.imstat.mean,
                             s.imstat.stdev * (1 + 5 * flat_rms) * 0.8)) for s in frames])
            made += 1 + len(frames)
    return made


def main() -> None:
    console.rule("[bold]AWE demo")
    with console.status("starting the local stack (PostgreSQL, broker, catalog, relay, "
                        "storage)..."):
        stack = Stack()
        env = stack.up()
    console.print(f"stack up: catalog {env['AWE_CATALOG_URL']}, storage "
                  f"{env['AWE_STORAGE_URL']} (settings in {stack.env_file})")
    catalog = awe.connect(env["AWE_CATALOG_URL"], env["AWE_TOKEN"])

    console.rule("A night of raw data")
    simulate_and_ingest(stack, env, catalog)
    counts = Table("class", "chip frames")
    for name in awe.registry.subclass_names(RawFrame):
        cls = awe.registry.get(name)
        if not cls.abstract:
            counts.add_row(name, str(len(cls.type == name)))
    console.print(counts)

    made = preview_processing(catalog)
    if made:
        console.print(f"[dim]preview: {made} calibrations and reduced frames registered with "
                      "their lineage (no pixels: the compute service will make them)[/]")

    console.rule("The 5-line script")
    console.print("q = (ReducedScienceFrame.chip.name == 'ccd53') & "
                  "(ReducedScienceFrame.filter.name == '841')\n"
                  "x = [k.imstat.stdev for k in q]\ny = [k.flat.imstat.stdev for k in q]",
                  markup=False, highlight=False)
    q = (ReducedScienceFrame.chip.name == "ccd53") & (ReducedScienceFrame.filter.name == "841")
    x = [k.imstat.stdev for k in q]
    y = [k.flat.imstat.stdev for k in q]
    table = Table("frame", "raw file", "sky rms x (ADU)", "flat rms y")
    for k, a, b in zip(q, x, y, strict=True):
        table.add_row(k.record.oid[:13] + "…" if k.record else "", k.raw.raw_filename,
                      f"{a:.2f}", f"{b:.4f}")
    console.print(table)

    console.rule("Best calibration and lineage")
    when = dt.datetime.combine(NIGHT, dt.time(21), dt.UTC)
    bias = catalog.best(BiasFrame, "ccd53", when)
    assert isinstance(bias, BiasFrame)
    oid = bias.record.oid if bias.record else "?"
    console.print(f"best BiasFrame for ccd53 at {when:%Y-%m-%d %H:%M}: {oid}, made from "
                  f"{len(bias.raw_bias_frames)} raw biases:")
    for raw in bias.raw_bias_frames[:3]:
        console.print(f"  {raw.record.filename if raw.record else '?'}")
    console.print(f"changelog: {catalog.changes(limit=1).last_sequence} changes; the outbox "
                  f"relay publishes them to awe.{env['AWE_SITE']}.catalog.changes; "
                  f"{len(DBObject.select())} objects in all")

    console.rule("Where to look next")
    console.print(
        f"- API docs:      {env['AWE_CATALOG_URL']}/docs and {env['AWE_STORAGE_URL']}/docs\n"
        "- a prompt:      .venv/bin/awe shell\n"
        "- a query:       .venv/bin/awe query \"RawFrame.chip.name == 'ccd53'\" --count\n"
        "- more data:     .venv/bin/awe simulate night --out /tmp/n --seed 7 && "
        ".venv/bin/awe ingest /tmp/n\n"
        "- the stack:     .venv/bin/awe status   (logs under .awe/logs)\n"
        "- stop it:       make down")


if __name__ == "__main__":
    main()
