"""An OmegaCAM-size night through the compute service, beside the bare limit of one process.

The night: the simulator's ``omegacam`` camera (32 chips of 2048 x 4100 light pixels and a
32-column overscan, ESO headers), with the fewest calibrations the recipes accept: 2 biases
(a ReadNoise needs a pair), 2 dome and 2 twilight flats per filter, one science field of 2
exposures per filter and the standard field (1 exposure per filter). It is simulated once
and kept under ``--work`` (simulating 32 x 8.5 Mpix chips per exposure takes minutes); a
run with other options simulates another.

Processed to ReducedScienceFrame, not SourceList: the chain is ReadNoise, BiasFrame and
HotPixelMap per chip; DomeFlatFrame, ColdPixelMap, TwilightFlatFrame and MasterFlatFrame
per chip and filter; a ReducedScienceFrame (image and weight map) per chip of every science
and standard exposure. Past that, astrometry, photometry and source lists end in catalogue
rows (the source table, through the catalog's API), not files, so "one process writing the
same FITS files" has no counterpart for them; the reduced frames are where the pixels are.

Counted, on both sides alike: the raw light pixels of every exposure of the night, once
(exposures x chips x 2048 x 4100; each raw frame is read and used by the chain: biases by
ReadNoise and BiasFrame, flats by the flats, science and standard frames by their reduced
frames), divided by wall-clock seconds. Beside it the same pixels per CPU-second: the
limit's process time, and the CPU time of every process of the stack (workers, storage,
catalog, PostgreSQL, broker, ...; printed by part) over the timed run. On a machine other
processes load, the wall-clock ratio flatters the stack (its many processes get a larger
share of the CPU than the limit's one); the CPU ratio much less so. Also printed: each
class's job time beside the limit's time for it, and how often the workers fetched raw
chips and calibrations from storage (from its access log: re-reads are cache evictions).

- ours: a whole local stack (`awe up`) in a temporary state folder, the night ingested
  (untimed: Ingester + StorageClient.put), then a ReducedScienceFrame of every raw science
  and standard frame asked for as one plan (`POST /jobs/plan`), timed from the submit to the
  last job done: planning against the catalog, the jobs on Kafka, two workers reading the
  raw chips and calibrations from storage over HTTP (checked against their sha256), the
  overscan subtracted and trimmed, the pipelines with imstat and QC, every product encoded
  as FITS and stored (image, weight, maps) and registered in the catalog.
- the limit: one process, before the stack starts, reading the same raw FITS from the
  simulated folder (astropy, one extension per chip; the files read through once untimed
  first, as the service's freshly ingested copies are warm too), measuring the overscan
  level and trimming (pipelines.overscan_level / overscan_correct with the sections ingest
  records: section_from_counts with the header's PRSCX / OVSCX), calling the same pipeline
  functions the recipes call (read_noise, master_bias, hot_pixel_map, dome_flat,
  cold_pixel_map, twilight_flat, master_flat, reduce_science, with their imstat and QC
  calls) and writing the same FITS files (float32 products and weights, uint8 pixel maps,
  with AWEOID / AWETYPE) into a temporary folder; no hashing, no HTTP, no catalogue. Its
  files are deleted before the stack starts, but for one chip's, which are then compared
  pixel for pixel with the service's.
- `awe verify` (verify_catalogue on DataObject: every stored file re-hashed by storage,
  size and sha256 checked against the catalogue, the primary header read for AWEOID) in
  files/s and MB/s, beside `sha256sum` over the same files in storage's folder (timed
  before and after verify; the faster is the baseline), and `openssl dgst -sha256` (coreutils
  may hash in software where OpenSSL, like Python's hashlib, uses the CPU's SHA
  instructions).

The goal: the service at >= 0.5 of the limit with its default two workers (on 2 cores the
two workers could reach 2x the one-process limit; 0.5 allows the service a 4x overhead).

    .venv/bin/python bench/night.py [--chips 32] [--filters 2] [--work /tmp/awe-bench-night]
        [--keep]

``--chips`` 1, 2, 4, 8, 16 or 32 (a mosaic of at most 8 chips a row); ``--filters 1`` keeps
the first filter (r_SDSS) only. A full night of 2 filters needs ~40 GB in ``--work`` (raw
night 9 GB, its copy in storage 9 GB, products 21 GB; the limit's 21 GB of products are
deleted before the stack starts); the run checks the free space first. ``--keep`` keeps the
stack's state folder (logs, storage) after stopping it.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import io
import json
import os
import shutil
import statistics
import subprocess
import tempfile
import time
import uuid
from collections import Counter, defaultdict
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
from _common import line, local_stack
from astropy.io import fits

import awecore as awe
from awecore import pipelines as p
from awecore.client import CatalogClient, ComputeClient, StorageClient
from awecore.ingest import Ingester, expand
from awecore.jobs import JobOut, PlanIn, TargetRef
from awecore.model import RawScienceFrame
from awecore.sim import PRESETS, InstrumentSpec, NightPlan, simulate_night
from awecore.verify import verify_catalogue

NIGHT = dt.date(2003, 2, 14)
SEED = 2003
GOAL = 0.5
#: the fewest calibrations the recipes accept, one science field, the standard field on
PLAN = NightPlan(n_bias=2, n_dome=2, n_twilight=2, science_fields=1, exposures_per_field=2,
                 standard=True)
#: classes of the chain, in the order they are made
CHAIN = ("ReadNoise", "BiasFrame", "HotPixelMap", "DomeFlatFrame", "ColdPixelMap",
         "TwilightFlatFrame", "MasterFlatFrame", "ReducedScienceFrame")
READ = "read raw FITS + overscan"


# -- the night, simulated once ------------------------------------------------------------
def camera(chips: int, filters: int) -> InstrumentSpec:
    spec = PRESETS["omegacam"]
    row = min(chips, spec.chips_x)
    if chips < 1 or chips > spec.n_chips or chips % row:
        raise SystemExit(f"--chips {chips}: 1 to {spec.n_chips}, a multiple of {spec.chips_x} "
                         f"above {spec.chips_x}")
    if not 1 <= filters <= len(spec.filters):
        raise SystemExit(f"--filters {filters}: 1 to {len(spec.filters)}")
    return dataclasses.replace(spec, chips_x=row, chips_y=chips // row,
                               filters=spec.filters[:filters])


def _raw_chip_bytes(spec: InstrumentSpec) -> int:
    """A raw chip as ingest stores it: 16-bit pixels and a few header blocks."""
    return -(-spec.ny * spec.raw_nx * 2 // 2880) * 2880 + 3 * 2880


def exposures_of(spec: InstrumentSpec) -> int:
    per_filter = PLAN.n_dome + PLAN.n_twilight + PLAN.science_fields * \
        PLAN.exposures_per_field + int(PLAN.standard)
    return PLAN.n_bias + len(spec.filters) * per_filter


def product_bytes(spec: InstrumentSpec) -> int:
    """What the chain stores per night: float32 images and weights, uint8 maps."""
    pix = spec.nx * spec.ny
    reduced = PLAN.science_fields * PLAN.exposures_per_field + int(PLAN.standard)
    per_chip = 4 * pix + pix + len(spec.filters) * (3 * 4 * pix + pix + reduced * 8 * pix)
    return spec.n_chips * per_chip


def night_folder(work: Path, spec: InstrumentSpec) -> tuple[Path, bool]:
    key = f"omegacam-{spec.n_chips}chips-{len(spec.filters)}filters-seed{SEED}"
    folder = work / key
    return folder, (folder / "complete.json").exists()


def simulate(folder: Path, spec: InstrumentSpec) -> None:
    partial = folder.with_name(folder.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    t = time.perf_counter()
    done = [0]
    total = exposures_of(spec)

    def progress(name: str) -> None:
        done[0] += 1
        print(f"  simulated {done[0]}/{total} {name} ({time.perf_counter() - t:.0f} s)",
              flush=True)

    simulate_night(partial, spec, seed=SEED, date=NIGHT, plan=PLAN, progress=progress)
    (partial / "complete.json").write_text(json.dumps(
        {"chips": spec.n_chips, "filters": [f.name for f in spec.filters], "seed": SEED,
         "plan": dataclasses.asdict(PLAN), "seconds": time.perf_counter() - t}))
    shutil.rmtree(folder, ignore_errors=True)
    partial.rename(folder)


def read_through(files: list[Path]) -> float:
    """Read every file once (untimed for the figures): the page cache as warm as it is
    for the service's just-ingested copies. Returns the seconds it took."""
    t = time.perf_counter()
    for path in files:
        with path.open("rb") as f:
            while f.read(1 << 24):
                pass
    return time.perf_counter() - t


# -- the bare limit ---------------------------------------------------------------------
@dataclasses.dataclass
class Limit:
    seconds: float
    cpu: float  # CPU seconds of this process meanwhile
    phases: dict[str, float]  # READ and each class: seconds
    files: int
    bytes: int
    read_noise: dict[str, float]  # chip -> the ReadNoise


class _Chain:
    """The limit's bookkeeping: seconds per phase, files and bytes written."""

    def __init__(self) -> None:
        self.phases: dict[str, float] = defaultdict(float)
        self.files = 0
        self.bytes = 0

    @contextmanager
    def timing(self, phase: str) -> Iterator[None]:
        t = time.perf_counter()
        try:
            yield
        finally:
            self.phases[phase] += time.perf_counter() - t

    def raw(self, path: Path, chip: str) -> tuple[np.ndarray, float]:
        """One chip of a raw file: its data section less its overscan level (measured as
        ingest measures it), in float32, and that level."""
        with self.timing(READ):
            data, header = fits.getdata(path, extname=chip, header=True)
            section, overscan = p.section_from_counts(
                data.shape, int(header["HIERARCH ESO DET OUT1 PRSCX"]),
                int(header["HIERARCH ESO DET OUT1 OVSCX"]))
            assert overscan is not None
            level = p.overscan_level(data, overscan)
            return p.overscan_correct(data, section, overscan, level), level

    def write(self, path: Path, image: np.ndarray, kind: str) -> None:
        """As the maker writes a product: a primary HDU with the product's oid and type."""
        hdu = fits.PrimaryHDU(image)
        hdu.header["AWEOID"] = str(uuid.uuid4())
        hdu.header["AWETYPE"] = kind
        hdu.writeto(path)
        self.files += 1
        self.bytes += path.stat().st_size

    def chip(self, night: Path, spec: InstrumentSpec, chip: str,
             exposures: list[dict[str, Any]], out: Path) -> float:
        """Every product of one chip, as the recipes make them; returns the read noise."""

        def of(kind: str, filt: str | None = None) -> list[Path]:
            return [night / e["file"] for e in exposures
                    if e["type"] == kind and (filt is None or e["filter"] == filt)]

        biases = [self.raw(f, chip)[0] for f in of("bias")]
        with self.timing("ReadNoise"):
            noise = p.read_noise(biases[0], biases[1])
        with self.timing("BiasFrame"):
            bias = p.master_bias(biases, sigma=3.0)
            p.imstat(bias)
            p.qc_bias(bias, noise, len(biases))
            self.write(out / "BiasFrame.fits", bias, "BiasFrame")
        with self.timing("HotPixelMap"):
            hot = p.hot_pixel_map(bias, p.imstat(bias).stdev, 10.0)
            p.qc_pixel_map(hot)
            self.write(out / "HotPixelMap.fits", hot.astype(np.uint8), "HotPixelMap")
        for f in (f.name for f in spec.filters):
            domes = [self.raw(path, chip)[0] for path in of("dome", f)]
            with self.timing("DomeFlatFrame"):
                dome = p.dome_flat(domes, bias, hot)
                level = float(np.median(domes[0] - bias))
                p.imstat(dome)
                p.qc_flat(dome, level)
                self.write(out / f"DomeFlatFrame-{f}.fits", dome, "DomeFlatFrame")
            with self.timing("ColdPixelMap"):
                cold = p.cold_pixel_map(dome, 0.5)
                p.qc_pixel_map(cold)
                self.write(out / f"ColdPixelMap-{f}.fits", cold.astype(np.uint8),
                           "ColdPixelMap")
            twilights = [self.raw(path, chip)[0] for path in of("twilight", f)]
            with self.timing("TwilightFlatFrame"):
                twilight = p.twilight_flat(twilights, bias, hot)
                p.imstat(twilight)
                self.write(out / f"TwilightFlatFrame-{f}.fits", twilight, "TwilightFlatFrame")
            with self.timing("MasterFlatFrame"):
                flat = p.master_flat(dome, twilight)
                p.imstat(flat)
                self.write(out / f"MasterFlatFrame-{f}.fits", flat, "MasterFlatFrame")
            for path in of("science", f) + of("standard", f):
                pixels, overscan = self.raw(path, chip)
                with self.timing("ReducedScienceFrame"):
                    saturation = p.SATURATION - overscan
                    image, weight = p.reduce_science(pixels, bias, flat, hot, cold, saturation)
                    p.imstat(image, weight <= 0)
                    p.qc_reduced(pixels, weight, saturation)
                    name = f"ReducedScienceFrame-{path.stem}"
                    self.write(out / f"{name}.fits", image, "ReducedScienceFrame")
                    self.write(out / f"{name}.weight.fits", weight, "weight")
        return noise


def bare_limit(night: Path, spec: InstrumentSpec, truth: dict[str, Any], out: Path) -> Limit:
    """The whole chain in this process, chip by chip; products into ``out/chipNN/``."""
    chain = _Chain()
    noise = {}
    started, cpu = time.perf_counter(), time.process_time()
    for i in range(spec.n_chips):
        folder = out / f"chip{i:02d}"
        folder.mkdir(parents=True)
        noise[spec.chip_name(i)] = chain.chip(night, spec, spec.chip_name(i),
                                              truth["exposures"], folder)
    return Limit(time.perf_counter() - started, time.process_time() - cpu, dict(chain.phases),
                 chain.files, chain.bytes, noise)


# -- through the service ----------------------------------------------------------------
def tree(root: Path) -> list[Path]:
    """Storage's files (not its .meta and .tmp), sorted."""
    out = []
    for dirpath, dirnames, filenames in os.walk(root):
        if Path(dirpath) == root:
            dirnames[:] = [d for d in dirnames if d not in (".meta", ".tmp")]
        out.extend(Path(dirpath) / f for f in filenames)
    return sorted(out)


def stack_cpu(state: Path) -> dict[str, float]:
    """CPU seconds used so far by each part of the stack (its services and broker by the
    pids in its state folder, PostgreSQL by its postmaster), with all their descendants,
    live or exited (an exited child's time counts in its parent once reaped)."""
    parts = {name: int(pid) for name, pid in
             json.loads((state / "stack.json").read_text())["pids"].items() if pid}
    postmaster = state / "postgres" / "postmaster.pid"
    if postmaster.exists():
        parts["postgres"] = int(postmaster.read_text().split()[0])
    procs: dict[int, tuple[int, int]] = {}  # pid -> (parent, utime+stime+cutime+cstime)
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            fields = stat[stat.rindex(")") + 2:].split()  # from field 3 (state) on
            procs[int(entry.name)] = (int(fields[1]), sum(int(f) for f in fields[11:15]))
    out = {}
    for name, pid in parts.items():
        tree, frontier = set(), {pid} & procs.keys()
        while frontier:
            tree |= frontier
            frontier = {c for c, (parent, _) in procs.items() if parent in frontier} - tree
        out[name] = sum(procs[c][1] for c in tree) / os.sysconf("SC_CLK_TCK")
    return out


def fetched(log: Path) -> dict[str, tuple[int, int]]:
    """Whole files read from storage so far, by top folder (raw, products): how many reads
    and how many distinct files, from storage's access log (empty if it has none)."""
    reads: dict[str, list[str]] = defaultdict(list)
    if log.exists():
        for text in log.read_text(errors="replace").splitlines():
            if '"GET /files/' in text:
                name = text.split('"GET /files/', 1)[1].split(" ", 1)[0]
                reads[name.split("/", 1)[0]].append(name)
    return {k: (len(v), len(set(v))) for k, v in reads.items()}


def wait(compute: ComputeClient, ids: list[str], poll: float = 0.5) -> list[JobOut]:
    """Until every job is done, cheaply (the timed run is not to pay for the watching): asks
    for the oldest job not yet seen done only (jobs finish roughly in order; a failed one
    fails what depends on it), about one request per ``poll``; then all of them at once."""
    pending = list(ids)
    while pending:
        job = compute.job(pending[0])
        if job.status in ("failed", "cancelled"):
            raise RuntimeError(f"{job.cls} job {job.id} {job.status}: {job.error}\n"
                               f"{compute.log(job.id)}")
        if job.status == "done":
            pending.pop(0)
            continue
        time.sleep(poll)
    return compute.lookup(ids)


def _seconds(job: JobOut) -> float:
    return (job.finished - job.started).total_seconds() if job.started and job.finished \
        else 0.0


def hash_files(command: list[str], files: list[Path]) -> float:
    """A hashing command (one process at a time, 500 files each) over the files; returns
    the seconds."""
    t = time.perf_counter()
    for i in range(0, len(files), 500):
        subprocess.run([*command, *map(str, files[i:i + 500])], check=True,
                       stdout=subprocess.DEVNULL)
    return time.perf_counter() - t


def agreement(catalog: CatalogClient, storage: StorageClient, jobs: list[JobOut],
              chip: str, kept: Path, limit_noise: float) -> str:
    """The service's products of one chip beside the limit's, pixel for pixel."""
    mine = [j for j in jobs if j.chip == chip]
    records = catalog.get_records([j.product for j in mine])
    raws = catalog.get_records(sorted({j.raw for j in mine if j.raw}))
    same = compared = 0
    worst = 0.0
    notes = []
    for job in mine:
        record = records[job.product]
        if job.cls == "ReadNoise":
            theirs = float(record.attributes["read_noise"])
            notes.append(f"read noise {theirs:.4f} vs {limit_noise:.4f} ADU")
            continue
        assert record.filename is not None
        names = [(record.filename, f"{job.cls}-{job.filter}.fits" if job.filter
                  else f"{job.cls}.fits")]
        if job.cls == "ReducedScienceFrame":
            assert job.raw is not None
            stem = Path(str(raws[job.raw].attributes["raw_filename"])).stem
            names = [(record.filename, f"{job.cls}-{stem}.fits"),
                     (str(record.attributes["weight_filename"]),
                      f"{job.cls}-{stem}.weight.fits")]
        for stored, local in names:
            a = np.asarray(fits.getdata(io.BytesIO(storage.get(stored))))
            b = np.asarray(fits.getdata(kept / local))
            compared += 1
            if a.dtype == b.dtype and np.array_equal(a, b, equal_nan=True):
                same += 1
            else:
                worst = max(worst, float(np.nanmax(np.abs(a.astype(np.float64) - b))))
    text = f"{same} of {compared} files bit-identical in pixels"
    if same < compared:
        text += f" (max |diff| {worst:.3g})"
    return "; ".join([text, *notes])


def service(state: Path, night: Path, spec: InstrumentSpec, mpix: float, limit: Limit,
            kept: Path) -> None:
    with local_stack(state) as env:
        catalog = awe.connect(env["AWE_CATALOG_URL"], env["AWE_TOKEN"])
        storage = StorageClient(env["AWE_STORAGE_URL"], env["AWE_TOKEN"])
        compute = ComputeClient(env["AWE_COMPUTE_URL"], env["AWE_TOKEN"], timeout=600)
        root = state / "files"

        t = time.perf_counter()
        files = expand([night])
        report = Ingester(catalog, storage.put).ingest(files)
        if report.failed:
            raise RuntimeError(f"ingest refused files: {report.failed}")
        frames = sum(report.frames.values())
        print(f"ingest (untimed for the figures): {len(files)} files, {frames} chip frames, "
              f"{report.bytes / 1e9:.2f} GB in {time.perf_counter() - t:.1f} s")
        raws = [(r.record.oid, r.chip.name, r.filter.name)
                for r in RawScienceFrame.select() if r.record is not None]
        raw_frames = frames - 1  # less the reference catalogue
        if raw_frames != exposures_of(spec) * spec.n_chips:
            raise RuntimeError(f"{raw_frames} raw frames ingested, "
                               f"{exposures_of(spec) * spec.n_chips} expected")

        # timed: one plan, from the submit to the last job done
        cpu0, t0 = stack_cpu(state), time.perf_counter()
        submitted = compute.submit_plan(PlanIn(targets=[
            TargetRef(cls="ReducedScienceFrame", date=NIGHT, chip=chip, filter=f, raw=oid)
            for oid, chip, f in raws]))
        planned = time.perf_counter() - t0
        jobs = wait(compute, [j.id for j in submitted.jobs])
        elapsed = time.perf_counter() - t0
        cpu_parts = {k: v - cpu0.get(k, 0.0) for k, v in stack_cpu(state).items()}
        cpu = sum(cpu_parts.values())
        ours = mpix / elapsed

        reads = fetched(state / "logs" / "storage.log")
        stored = tree(root)
        product_files = [f for f in stored if f.relative_to(root).parts[0] == "products"]
        product_size = sum(f.stat().st_size for f in product_files)
        raw_size = sum(f.stat().st_size for f in stored) - product_size
        counts = Counter(j.cls for j in jobs)
        busy = sum(_seconds(j) for j in jobs)
        print(f"\nthrough the compute service: {len(raws)} ReducedScienceFrame targets as one "
              f"plan -> {len(jobs)} jobs = {len(jobs)} products "
              f"({', '.join(f'{counts[c]} {c}' for c in CHAIN if counts[c])})")
        print(f"  {elapsed:.1f} s from the submit to the last job done (planning and queueing "
              f"{planned:.1f} s); workers busy {busy:.0f} worker-s of {2 * elapsed:.0f} "
              f"({busy / (2 * elapsed):.0%} of two workers)")
        print(f"  stored: {len(product_files)} product files {product_size / 1e9:.2f} GB "
              f"(limit wrote {limit.files} files {limit.bytes / 1e9:.2f} GB), raw chips "
              f"{raw_size / 1e9:.2f} GB")
        print(f"  per class: {'class':<20} {'jobs':>5} {'job s (mean)':>12} "
              f"{'worker-s':>9} {'limit s':>8} {'ratio':>6}")
        for cls in CHAIN:
            mine = [_seconds(j) for j in jobs if j.cls == cls]
            if not mine:
                continue
            base = limit.phases.get(cls, 0.0)
            print(f"             {cls:<20} {len(mine):>5} {statistics.mean(mine):>12.2f} "
                  f"{sum(mine):>9.1f} {base:>8.1f} {sum(mine) / base if base else 0:>6.2f}")
        print(f"             (the jobs include reading their inputs; the limit read the raw "
              f"FITS and subtracted overscans in {limit.phases[READ]:.1f} s besides)")
        if reads:
            calibrations = sum(1 for j in jobs if j.cls not in ("ReadNoise",
                                                                "ReducedScienceFrame"))
            print(f"  the workers fetched {reads['raw'][0]} raw chips ({reads['raw'][1]} "
                  f"distinct) and {reads['products'][0]} calibration files "
                  f"({reads['products'][1]} distinct, of {calibrations} made; with two "
                  f"workers each would be fetched at most twice were nothing evicted from "
                  f"their caches)")
        line(f"night, {mpix:,.0f} Mpix raw (Mpix/s)", ours, mpix / limit.seconds, "Mpix/s",
             True)
        ratio = ours / (mpix / limit.seconds)
        print(f"  goal >= {GOAL} of the limit with two workers: "
              f"{'met' if ratio >= GOAL else 'NOT met'} ({ratio:.2f})")
        line("night, CPU (Mpix per CPU-s)", mpix / cpu, mpix / limit.cpu, "Mpix/CPU-s",
             True)
        print(f"  CPU: the stack used {cpu:.0f} CPU-s ({cpu / elapsed:.2f} cores on average), "
              f"the limit {limit.cpu:.0f} CPU-s ({limit.cpu / limit.seconds:.2f} of its one "
              f"core); load average now {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
        print("  the stack's CPU-s by part: " + ", ".join(
            f"{k} {v:.0f}" for k, v in sorted(cpu_parts.items(), key=lambda kv: -kv[1])
            if v >= 0.5))
        if os.getloadavg()[1] > (os.cpu_count() or 1) + 1:
            print("  NOTE: other processes compete for the CPU: the wall-clock figures are "
                  "unreliable (and favour the stack's many processes); the CPU figures less so")
        print(f"  agreement with the limit, {spec.chip_name(0)}: " + agreement(
            catalog, storage, jobs, spec.chip_name(0), kept,
            limit.read_noise[spec.chip_name(0)]))

        # awe verify beside sha256sum on the same files
        print("\nawe verify (every DataObject's files) beside sha256sum on storage's files:")
        before = hash_files(["sha256sum"], stored)
        verified = verify_catalogue(catalog, storage, "DataObject")
        after = hash_files(["sha256sum"], stored)
        base = min(before, after)
        total = sum(f.stat().st_size for f in stored)
        if not verified.ok or verified.files != len(stored) or verified.bytes != total:
            print(f"  NOTE: verify saw {verified.files} files {verified.bytes:,} bytes, "
                  f"storage holds {len(stored)} files {total:,} bytes; "
                  f"{len(verified.mismatches)} mismatches")
        print(f"  {verified.objects} objects, {verified.files} files, "
              f"{verified.bytes / 1e9:.2f} GB: verify {verified.seconds:.1f} s (8 threads); "
              f"sha256sum {before:.1f} s before verify, {after:.1f} s after (one process)")
        line("awe verify vs sha256sum (files/s)", verified.files / verified.seconds,
             len(stored) / base, "files/s", True)
        line("awe verify vs sha256sum (MB/s)", verified.bytes / 1e6 / verified.seconds,
             total / 1e6 / base, "MB/s", True)
        if shutil.which("openssl"):
            # coreutils' sha256sum may hash in software; OpenSSL (as Python's hashlib,
            # which storage uses) takes the CPU's SHA instructions where there are any
            ssl = hash_files(["openssl", "dgst", "-sha256"], stored)
            line("awe verify vs openssl dgst -sha256 (MB/s)",
                 verified.bytes / 1e6 / verified.seconds, total / 1e6 / ssl, "MB/s", True)
        storage.close()
        compute.close()
        catalog.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--chips", type=int, default=32)
    parser.add_argument("--filters", type=int, default=2)
    parser.add_argument("--work", type=Path, default=Path(tempfile.gettempdir())
                        / "awe-bench-night", help="the simulated night is kept here")
    parser.add_argument("--keep", action="store_true",
                        help="keep the stack's state folder (logs, storage) afterwards")
    args = parser.parse_args()
    spec = camera(args.chips, args.filters)
    work = args.work.absolute()
    work.mkdir(parents=True, exist_ok=True)
    folder, cached = night_folder(work, spec)
    exposures = exposures_of(spec)
    raw = exposures * spec.n_chips * _raw_chip_bytes(spec)
    products = product_bytes(spec)
    need = (0 if cached else raw) + raw + products + (1 << 30)
    free = shutil.disk_usage(work).free
    print(f"night benchmark: {spec.n_chips} chips of {spec.nx}x{spec.ny} (+{spec.overscan_x} "
          f"overscan columns), filters {', '.join(f.name for f in spec.filters)}, "
          f"{exposures} exposures ({PLAN.n_bias} bias; per filter {PLAN.n_dome} dome, "
          f"{PLAN.n_twilight} twilight, {PLAN.exposures_per_field} science, "
          f"{int(PLAN.standard)} standard); {os.cpu_count()} cores")
    print(f"disk: {free / 1e9:.1f} GB free in {work}; this run needs ~{need / 1e9:.1f} GB "
          f"(night {raw / 1e9:.1f} GB{' cached' if cached else ''}, its copy in storage, "
          f"products {products / 1e9:.1f} GB)")
    if free < need * 1.1:
        raise SystemExit("too little disk space: run fewer chips (--chips 8) or one filter "
                         "(--filters 1), or point --work elsewhere")
    if not cached:
        print(f"simulating the night into {folder} (kept for later runs)")
        simulate(folder, spec)
    truth = json.loads((folder / "truth.json").read_text())
    assert len(truth["exposures"]) == exposures
    mpix = exposures * spec.n_chips * spec.nx * spec.ny / 1e6

    run = Path(tempfile.mkdtemp(prefix="awe-bench-night-", dir=work))
    run.chmod(0o711)  # PostgreSQL runs as nobody under root: it must get through
    try:
        files = sorted(folder / e["file"] for e in truth["exposures"])
        warm = read_through(files)
        print(f"\nbare limit (one process, numpy/astropy): {len(files)} raw files "
              f"({sum(f.stat().st_size for f in files) / 1e9:.1f} GB) read through once "
              f"first in {warm:.1f} s (untimed)")
        limit = bare_limit(folder, spec, truth, run / "limit")
        print(f"  {mpix:,.0f} Mpix in {limit.seconds:.1f} s = {mpix / limit.seconds:.2f} "
              f"Mpix/s; wrote {limit.files} files, {limit.bytes / 1e9:.2f} GB")
        print("  phases: " + ", ".join(f"{k} {v:.1f} s" for k, v in limit.phases.items()))
        kept = run / "limit" / "chip00"
        for chip in (run / "limit").iterdir():
            if chip != kept:
                shutil.rmtree(chip)
        service(run / "state", folder, spec, mpix, limit, kept)
    finally:
        if args.keep:
            shutil.rmtree(run / "limit", ignore_errors=True)
            print(f"kept the stack's state folder {run / 'state'}")
        else:
            shutil.rmtree(run, ignore_errors=True)


if __name__ == "__main__":
    main()
