"""``make demo``: the local stack, a simulated night ingested, the catalogue at work.

1. start PostgreSQL, the broker, the catalog (+ outbox relay) and storage;
2. simulate a night of a small 8-chip camera (biases, flats, science and a standard field);
3. ingest it: validate, classify, split per chip, store, register Raw*Frames;
4. ask the compute service for the source list of every science exposure, as one plan: it
   walks backwards, queues a job for everything beneath them that is missing (read noise,
   bias, hot and cold pixels, flats, reduced frames, astrometry against the reference
   catalogue, the zeropoint from the standard field), and its workers make them in parallel;
5. print what the night became (per class: objects, QC flags, figures beside the truth),
   run the 5-line script, show a source list's lineage back to the raw files, a
   best-calibration look-up, a Source query;
6. verify every file against the catalogue (``awe verify``: present, size, sha256, the
   AWEOID in its header) and say where to look next. A mismatch fails the demo.
"""

from __future__ import annotations

import datetime as dt
import io
import json
import time
from pathlib import Path
from typing import Any

import httpx
import numpy as np
from astropy.io import fits
from rich.console import Console
from rich.progress import (
    BarColumn,
    DownloadColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
)
from rich.table import Table

import awecore as awe
from awecore.cli._calib import bar as window_bar
from awecore.cli._data import _expand as survey_files
from awecore.cli._lineage import render_tree
from awecore.client import ComputeClient, LineageClient, StorageClient
from awecore.ingest import Ingester
from awecore.jobs import PlanIn, TargetIn, TargetRef
from awecore.model import (
    AstrometricParameters,
    BiasFrame,
    CoaddedRegriddedFrame,
    CoaddSourceList,
    ColdPixelMap,
    DBObject,
    DomeFlatFrame,
    HotPixelMap,
    MasterFlatFrame,
    PhotometricParameters,
    RawFrame,
    RawScienceFrame,
    RawStandardFrame,
    ReadNoise,
    ReducedScienceFrame,
    ReferenceCatalog,
    SourceList,
    TwilightFlatFrame,
)
from awecore.pipelines import coadd_noise
from awecore.sim import PRESETS, SURVEY_FILE, NightPlan, SurveyPlan, simulate_survey
from awecore.sources import Source
from awecore.stack import Stack
from awecore.targets import depth
from awecore.tiles import tiles_at
from awecore.verify import verify_catalogue

console = Console()
NIGHT = dt.date(2003, 2, 14)
#: the second night observes science fields only: it is reduced with the first one's
#: calibrations, whose validity windows cover it
SECOND = NIGHT + dt.timedelta(days=1)


def survey_folder(stack: Stack) -> Path:
    return stack.dir / "survey"


def simulate_and_ingest(stack: Stack, env: dict[str, str], catalog: awe.CatalogClient) -> None:
    folder = survey_folder(stack)
    spec = PRESETS["small"]
    plan = SurveyPlan(nights=2, start=NIGHT, calib_nights=(1,), fields=2,
                      night=NightPlan(science_fields=2, exposures_per_field=2,
                                      stars_per_chip=120))
    if not (folder / SURVEY_FILE).exists():
        with Progress(TextColumn("simulating two nights"), BarColumn(), MofNCompleteColumn(),
                      console=console) as bar:
            task = bar.add_task("sim", total=plan.n_exposures(spec))
            simulate_survey(folder, plan, spec, seed=2003,
                            progress=lambda _: bar.advance(task))
    files = survey_files([folder])
    storage = StorageClient(env["AWE_STORAGE_URL"], env["AWE_TOKEN"])
    with Progress(TextColumn("ingesting"), BarColumn(), MofNCompleteColumn(), DownloadColumn(),
                  console=console) as bar:
        task = bar.add_task("files", total=len(files))
        report = Ingester(catalog, storage.put).ingest(
            files, lambda _p, _s: bar.advance(task))
    console.print(f"{len(files)} raw files from {folder}: {sum(report.frames.values())} chip "
                  f"frames registered, {report.skipped} already there, "
                  f"{len(report.failed)} refused")


def of_night(cls: type[Any], night: dt.date) -> Any:
    """The raw frames of ``cls`` observed in ``night`` (nights run from noon to noon UTC)."""
    start = dt.datetime.combine(night, dt.time(12), dt.UTC)
    return cls.date_obs.between(start, start + dt.timedelta(days=1)) & (cls.type == cls.__name__)


def process(env: dict[str, str], night: dt.date) -> int:
    """Ask for the source list of every raw science frame of the night, as one plan. The
    compute service walks each target backwards (every calibration, reduced frame,
    astrometric and photometric solution beneath it that is missing, once, shared; for a
    calibration, the best one whose validity window covers the exposure, whatever night it
    was made from) and its workers make the jobs in parallel."""
    compute = ComputeClient(env["AWE_COMPUTE_URL"], env["AWE_TOKEN"])
    targets = []
    for raw in (*of_night(RawScienceFrame, night), *of_night(RawStandardFrame, night)):
        assert raw.record is not None
        targets.append(TargetRef(cls="SourceList", date=night, chip=raw.chip.name,
                                 filter=raw.filter.name, raw=raw.record.oid))
    with console.status(f"planning {len(targets)} targets as one DAG..."):
        submitted = compute.submit_plan(PlanIn(targets=targets))
    ids = [j.id for j in submitted.jobs]
    if ids:
        with Progress(TextColumn("workers making {task.description}"), BarColumn(),
                      MofNCompleteColumn(), TimeElapsedColumn(), console=console) as bar:
            task = bar.add_task("calibrations, reduced frames, astrometry, photometry, "
                                "source lists", total=len(ids))
            compute.wait(ids, lambda done, _n: bar.update(task, completed=done))
    compute.close()
    return len(ids)


def summary(truth: dict[str, Any]) -> Table:
    """What the night became: per class, how many, how many QC flagged (by their own QC, and
    by their inputs'), and the figures a calibration scientist looks at first, beside the
    simulator's truth."""
    table = Table("class", "objects", "QC flagged", "inherited flags", "figures")
    for cls in (ReadNoise, BiasFrame, HotPixelMap, DomeFlatFrame, ColdPixelMap,
                TwilightFlatFrame, MasterFlatFrame, ReducedScienceFrame, AstrometricParameters,
                PhotometricParameters, SourceList):
        objects = list(cls.select())
        flagged = sum(1 for o in objects if o.record and o.record.quality_flags)
        inherited = sum(1 for o in objects
                        if o.record and o.record.attributes.get("inherited_flags"))
        table.add_row(cls.__name__, str(len(objects)), str(flagged), str(inherited),
                      _figures(cls, objects, truth))
    return table


def _figures(cls: type[DBObject], objects: list[Any], truth: dict[str, Any]) -> str:
    if not objects:
        return ""
    if cls is ReadNoise:
        ratio = [o.read_noise / truth["chips"][o.chip.name]["read_noise"] for o in objects]
        return f"read noise / truth: {min(ratio):.3f} .. {max(ratio):.3f}"
    if cls is HotPixelMap:
        return f"{sum(o.hot_pixels for o in objects)} hot pixels"
    if cls is ColdPixelMap:
        return f"{sum(o.cold_pixels for o in objects)} cold pixels"
    if cls is AstrometricParameters:
        rms = sorted(o.rms for o in objects)
        off = sorted(o.pointing_offset for o in objects)
        return (f"fit rms median {rms[len(rms) // 2]:.3f}\" (max {rms[-1]:.3f}\"); "
                f"headers were off by {off[0]:.1f}..{off[-1]:.1f}\"")
    if cls is PhotometricParameters:
        err = [o.zeropoint - truth["filters"][o.filter.name]["zeropoint"] for o in objects]
        return (f"zeropoint - truth: {min(err):+.3f} .. {max(err):+.3f} mag "
                f"({sum(o.n_stars for o in objects)} standard stars)")
    if cls is SourceList:
        return f"{sum(o.number_of_sources for o in objects)} sources in the source table"
    return ""


def second_night(night: dt.date) -> Table:
    """Each reduced frame of the night with the calibrations it was made with: the night
    they were made from, and their window, which the first night's calibrations stretch
    over the second."""
    table = Table("reduced frame", "chip", "filter", "bias from night", "flat from night",
                  "bias valid", title=f"{night}: reduced with calibrations of other "
                  "nights", caption="a calibration is used only inside its validity window")
    start = dt.datetime.combine(night, dt.time(12), dt.UTC)
    frames = ReducedScienceFrame.raw.date_obs.between(start, start + dt.timedelta(days=1))
    for k in frames.limit(8):
        bias, flat = k.bias, k.flat
        dome = flat.dome.raw_dome_flat_frames if flat.dome else []
        window = (f"{bias.record.timestamp_start:%m-%d}..{bias.record.timestamp_end:%m-%d}"
                  if bias.record else "?")
        table.add_row(k.record.oid[:13] + "…" if k.record else "", k.chip.name, k.filter.name,
                      str(_night_of(bias.raw_bias_frames[0].date_obs)),
                      str(_night_of(dome[0].date_obs)) if dome else "?", window)
    return table


def timeline(catalog: awe.CatalogClient, chip: str, first: dt.date, last: dt.date) -> Table:
    """One chip's calibrations as a calibration scientist sees them: each validity window
    drawn across the nights, with its verdict (``awe calib list`` shows the same, wider)."""
    span = (dt.datetime.combine(first, dt.time(12), dt.UTC),
            dt.datetime.combine(last, dt.time(12), dt.UTC))
    entries = catalog.timeline("CalFile", chip, None, *span)
    table = Table("calibration", "filter", "valid", "set by",
                  f"{first:%m-%d}..{last:%m-%d}",
                  title=f"{chip}: {len(entries)} calibrations over {(last - first).days} nights",
                  caption="one column per half night, noon to noon; █ valid then; ◂ ▸ goes on "
                  "beyond")
    for e in entries:
        who = e.last_curation.by if e.last_curation else f"{e.creator}, made"
        table.add_row(e.type, e.filter or "", {0: "bad", 1: "good", 2: "proposed"}[e.is_valid],
                      who, window_bar(e.timestamp_start, e.timestamp_end, span, width=18))
    return table


def _night_of(when: dt.datetime) -> dt.date:
    return (when.astimezone(dt.UTC) - dt.timedelta(hours=12)).date()


def scatter(path: Path, x: list[float], y: list[float]) -> Path:
    """The 5-line script's plot, as the slides draw it, to a PNG (no display needed)."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pylab

    pylab.figure(figsize=(5, 4))
    pylab.scatter(x, y)
    pylab.xlabel("reduced frame: sky rms (ADU)")
    pylab.ylabel("its flat: rms")
    pylab.title("ReducedScienceFrame ccd53 / 841")
    pylab.tight_layout()
    pylab.savefig(path, dpi=100)
    pylab.close()
    return path


def show_lineage(env: dict[str, str], catalog: awe.CatalogClient) -> None:
    sl = SourceList.chip.name == "ccd53"
    first = next(iter(sl), None)
    if first is None or first.record is None:
        return
    target = catalog.changes(limit=1).last_sequence
    lineage = LineageClient(env["AWE_LINEAGE_URL"], env["AWE_TOKEN"])
    for _ in range(100):  # the lineage service follows the catalog within moments
        health = httpx.get(f"{env['AWE_LINEAGE_URL']}/health", timeout=10).json()
        if health["applied_sequence"] >= target:
            break
        time.sleep(0.2)
    graph = lineage.upstream(first.record.oid)
    raws = sorted(n.filename or "" for n in graph.nodes if n.type.startswith("Raw"))
    console.print(f"SourceList {first.record.oid} ({first.number_of_sources} sources) was made "
                  f"from {len(graph.nodes) - 1} objects, {len(raws)} of them raw files:")
    # the instrument, chip and filter are in every frame's lineage: leave them out here
    descriptive = {"Instrument", "Chip", "Filter"}
    keep = {n.oid for n in graph.nodes if n.type not in descriptive}
    console.print(render_tree(graph.model_copy(update={
        "nodes": [n for n in graph.nodes if n.oid in keep],
        "edges": [e for e in graph.edges if e.src in keep and e.dst in keep]})))
    lineage.close()


def show_coadd(stack: Stack, env: dict[str, str], catalog: awe.CatalogClient) -> None:
    """Ask the compute service for the coadd of the sky tile at the centre of the survey's
    first field (filter 841): it selects every exposure of both nights whose chips touch the
    tile, reuses their reduced frames and source lists, solves the tile's astrometry and
    photometry jointly, regrids and stacks them; then its source list. A PNG preview is
    written beside the state, and the coadd's depth and source density are printed beside a
    single exposure's."""
    survey = json.loads((survey_folder(stack) / SURVEY_FILE).read_text())
    first = next(f for f in survey["fields"].values() if f["kind"] == "science")
    tile = tiles_at(float(first["ra"]), float(first["dec"]), "MINI")[0]
    compute = ComputeClient(env["AWE_COMPUTE_URL"], env["AWE_TOKEN"])
    for cls in ("CoaddedRegriddedFrame", "CoaddSourceList"):
        with console.status(f"planning the {cls} of tile {tile.name}..."):
            submitted = compute.submit(TargetIn(cls=cls, data_id={"tile": tile.name,
                                                                  "filter": "841"}))
        wait_for(compute, [j.id for j in submitted.jobs], f"workers making {cls}")
    compute.close()
    coadd = CoaddedRegriddedFrame.get(tile=tile.name, filter="841")
    sources = CoaddSourceList.get(tile=tile.name, filter="841")
    assert coadd.record is not None and sources.record is not None
    storage = StorageClient(env["AWE_STORAGE_URL"], env["AWE_TOKEN"])
    with fits.open(io.BytesIO(storage.get(str(coadd.record.filename)))) as hdul:
        image = np.asarray(hdul[0].data, dtype=np.float32)
        count = np.asarray(hdul["COUNT"].data)
    frames = catalog.get_records(list(coadd.record.refs["regridded_frames"]))
    one = next(iter(frames.values()))
    single = np.asarray(fits.getdata(io.BytesIO(storage.get(str(one.filename)))),
                        dtype=np.float32)
    single_weight = fits.getdata(io.BytesIO(storage.get(str(one.attributes[
        "weight_filename"]))))
    storage.close()
    reduced = catalog.get_records([str(one.refs["reduced"])])[str(one.refs["reduced"])]
    lists = SourceList.frame == reduced.oid
    one_list = next(iter(lists), None)
    scale = float(tile_astrometry_scale(catalog, one))
    table = Table("", "coadd", "one exposure (one chip)")
    area_coadd = float((count > 0).sum()) * (scale / 60) ** 2
    area_single = float((single_weight > 0).sum()) * (scale / 60) ** 2
    n_single = one_list.number_of_sources if one_list is not None else 0
    table.add_row("frames stacked", str(coadd.record.attributes["n_frames"]), "1")
    table.add_row("5-sigma depth (mag, 3 px aperture)",
                  f"{coadd.record.attributes.get('depth', float('nan')):.2f}",
                  f"{depth(coadd_noise(single, single_weight)) or float('nan'):.2f}")
    table.add_row("sources per arcmin^2",
                  f"{sources.number_of_sources / max(area_coadd, 1e-9):.1f}",
                  f"{n_single / max(area_single, 1e-9):.1f}")
    table.add_row("outliers rejected (cosmic rays, ...)",
                  str(coadd.record.attributes.get("n_rejected", 0)), "-")
    console.print(table)
    console.print(f"coadd {coadd.record.oid} of tile {tile.name} ({image.shape[1]} x "
                  f"{image.shape[0]} pixels); its source list has "
                  f"{sources.number_of_sources} sources")
    picture = preview(stack.dir / f"coadd-{tile.name}.png", image, count, tile.name)
    console.print(f"the preview: {picture}")
    # published to the world (privilege 5): the VO's ObsCore lists it to anyone, no token
    catalog.request("PATCH", f"/objects/{coadd.record.oid}",
                    json={"privileges": 5, "reason": "the demo publishes its coadd"})
    console.print(f"published (privilege 5): anonymous TAP at {env['AWE_TAP_URL']} lists it "
                  "in ivoa.obscore")


def wait_for(compute: ComputeClient, ids: list[str], what: str) -> None:
    if not ids:
        return
    with Progress(TextColumn(what), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                  console=console) as bar:
        task = bar.add_task(what, total=len(ids))
        compute.wait(ids, lambda done, _n: bar.update(task, completed=done))


def tile_astrometry_scale(catalog: awe.CatalogClient, regridded: awe.ObjectOut) -> float:
    """The pixel scale (arcsec) of a tile's grid, as its joint astrometry recorded it."""
    oid = str(regridded.refs["astrom"])
    return float(catalog.get_records([oid])[oid].attributes["pixel_scale"])


def preview(path: Path, image: np.ndarray, count: np.ndarray, name: str) -> Path:
    """A coadd and its exposure-count map side by side, to a PNG (no display needed)."""
    import matplotlib

    matplotlib.use("Agg")
    from astropy.visualization import ZScaleInterval
    from matplotlib import pyplot as plt

    low, high = ZScaleInterval().get_limits(image[count > 0] if (count > 0).any() else image)
    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 5))
    left.imshow(image, origin="lower", cmap="gray", vmin=low, vmax=high)
    left.set_title(f"coadd {name}")
    shown = right.imshow(count, origin="lower", cmap="viridis")
    right.set_title("exposures per pixel")
    fig.colorbar(shown, ax=right, fraction=0.046)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path


def main() -> None:
    console.rule("[bold]AWE demo")
    with console.status("starting the local stack (PostgreSQL, broker, catalog, relay, "
                        "storage, lineage, federation, compute and its workers)..."):
        stack = Stack()
        env = stack.up()
    console.print(f"stack up: catalog {env['AWE_CATALOG_URL']}, storage "
                  f"{env['AWE_STORAGE_URL']}, portal {env['AWE_PORTAL_URL']} "
                  f"(settings in {stack.env_file})")
    catalog = awe.connect(env["AWE_CATALOG_URL"], env["AWE_TOKEN"])

    console.rule("Two nights of raw data; calibrations on the first only")
    simulate_and_ingest(stack, env, catalog)
    counts = Table("class", str(NIGHT), str(SECOND))
    for name in awe.registry.subclass_names(RawFrame):
        cls = awe.registry.get(name)
        if not cls.abstract:
            counts.add_row(name, *(str(len(of_night(cls, n))) for n in (NIGHT, SECOND)))
    counts.add_row("ReferenceCatalog", str(len(ReferenceCatalog.select())), "(the survey's)")
    console.print(counts)

    console.rule(f"Target processing: the source list of every science exposure of {NIGHT}")
    made = process(env, NIGHT)
    console.print(f"made {made} products" if made else
                  "everything was there and up to date: nothing made")
    truth = json.loads((survey_folder(stack) / NIGHT.isoformat() / "truth.json").read_text())
    console.print(summary(truth))

    console.rule(f"{SECOND}: a night without calibrations of its own")
    made = process(env, SECOND)
    console.print(f"made {made} products" if made else
                  "everything was there and up to date: nothing made")
    console.print(second_night(SECOND))

    console.rule("The 5-line script")
    console.print("q = (ReducedScienceFrame.chip.name == 'ccd53') & "
                  "(ReducedScienceFrame.filter == '841')\n"
                  "x = [k.imstat.stdev for k in q]\ny = [k.flat.imstat.stdev for k in q]\n"
                  "pylab.scatter(x, y)", markup=False, highlight=False)
    q = (ReducedScienceFrame.chip.name == "ccd53") & (ReducedScienceFrame.filter == "841")
    x = [k.imstat.stdev for k in q]
    y = [k.flat.imstat.stdev for k in q]
    table = Table("frame", "raw file", "sky rms x (ADU)", "flat rms y")
    for k, a, b in zip(q, x, y, strict=True):
        table.add_row(k.record.oid[:13] + "…" if k.record else "", k.raw.raw_filename,
                      f"{a:.2f}", f"{b:.4f}")
    console.print(table)
    console.print(f"the scatter plot: {scatter(stack.dir / 'five-lines.png', x, y)}")

    console.rule("The source table, through the same DSL")
    bright = (Source.mag < 20) & (Source.sourcelist.frame.chip.name == "ccd53")
    console.print("q = (Source.mag < 20) & (Source.sourcelist.frame.chip.name == 'ccd53')",
                  markup=False, highlight=False)
    rows = Table("ra", "dec", "mag", "snr", title=f"{len(bright)} sources; the brightest:")
    for row in bright.order_by(Source.mag).limit(5):
        rows.add_row(f"{row.ra:.5f}", f"{row.dec:.5f}", f"{row.mag:.3f}", f"{row.snr:.0f}")
    console.print(rows)

    console.rule("The lineage of one source list, back to the raw files")
    show_lineage(env, catalog)

    console.rule("The calibration timeline of ccd53 (awe calib list CalFile --chip ccd53)")
    console.print(timeline(catalog, "ccd53", NIGHT - dt.timedelta(days=4),
                           SECOND + dt.timedelta(days=4)))

    console.rule("Best calibration")
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

    console.rule("A coadd of the demo's field: both nights, every chip, one sky tile")
    show_coadd(stack, env, catalog)

    console.rule("Every file checked against the catalogue (awe verify)")
    storage = StorageClient(env["AWE_STORAGE_URL"], env["AWE_TOKEN"])
    with console.status("re-reading and hashing every file the catalogue describes..."):
        report = verify_catalogue(catalog, storage, "DataObject")
    storage.close()
    console.print(f"{report.objects} objects, {report.files} files, {report.bytes / 1e6:.0f} MB "
                  f"in {report.seconds:.1f} s: size, sha256 and AWEOID "
                  + ("[green]as the catalogue says[/]" if report.ok else
                     f"[red]{len(report.mismatches)} mismatches[/]"))
    for m in report.mismatches[:20]:
        console.print(f"  {m.type} {m.oid} {m.filename}: {m.problem}", markup=False)
    if not report.ok:
        raise SystemExit(1)

    console.rule("Where to look next")
    console.print(
        f"- API docs:      {env['AWE_CATALOG_URL']}/docs and {env['AWE_STORAGE_URL']}/docs\n"
        f"- the portal:    {env['AWE_PORTAL_URL']} (sign in with AWE_TOKEN from "
        f"{stack.env_file})\n"
        f"- the VO:        TAP {env['AWE_TAP_URL']} (pyvo, TOPCAT), cone search "
        f"{env['AWE_VO_URL']}/scs, SIA {env['AWE_VO_URL']}/sia\n"
        "- a prompt:      .venv/bin/awe shell\n"
        "- a query:       .venv/bin/awe query \"RawFrame.chip.name == 'ccd53'\" --count\n"
        "- more data:     .venv/bin/awe simulate survey --out /tmp/s --nights 3 --seed 7"
        " && .venv/bin/awe ingest /tmp/s\n"
        "- calibrations:  .venv/bin/awe calib list BiasFrame --chip ccd53\n"
        "- check files:   .venv/bin/awe verify\n"
        f"- lineage:       .venv/bin/awe lineage {oid}\n"
        "- a target:      python -c \"import awecore as awe; awe.connect(); "
        "print(awe.HotPixelMap.plan('2003-02-14', 'ccd53').describe())\"\n"
        "- the stack:     .venv/bin/awe status   (logs under .awe/logs)\n"
        "- stop it:       make down")


if __name__ == "__main__":
    main()
