"""Generate a survey-scale catalogue once, for bench/scale.py, and keep it.

The catalogue's schema is the service's own: the catalog's migrations (and the lineage
service's, in a second database) are applied by the same code the services run. Migrations
up to TODAY (the schema this generator was written for) are applied before the rows are
loaded and any later ones after, so a newer schema in the tree (typed data-ID columns,
new indexes) is reached the way a site reaches it: by migrating a populated catalogue.

Objects are shaped as the imaging chain makes them, per chip and night: raw biases, a
master bias (valid for a few days), raw dome flats, dome and master flats per filter, raw
science frames, reduced science frames and their source lists, with references (the
``refs`` column and the ``object_refs`` table), data-ID attributes and validity windows.
The same objects and references are written as the lineage service's nodes and edges.
Sources are made with numpy per source list (a chip's footprint on the sky, 4,000 sources)
and loaded by binary COPY; they sit in a footprint whose area grows with their number, so
the density (and so a cone's rows) is that of 10^8 sources over 1,000 square degrees
whatever the size generated.

Rows are COPY'd with the secondary indexes dropped, then the indexes are built again from
their own definitions (what a bulk load does); ``bench_scale_generated`` records what was
made, how long it took and the disk it takes, and a second run on the same --keep folder
loads nothing again.
"""

from __future__ import annotations

import datetime as dt
import io
import json
import random
import re
import struct
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import asyncpg
import numpy as np

from awecore.healpix import healpix_of
from awecore.server import pg

#: the newest catalog migration when this generator was written: rows are loaded after it
TODAY = "0012_governed_calibrations"
CHIPS = 32
FILTERS = ("u", "g", "r", "i", "z")
SCIENCE = 12  # science exposures per chip, night and filter (two filters a night)
PER_LIST = 4000  # sources per source list (a chip of a KiDS-deep exposure)
DENSITY = 1e5  # sources per square degree: 10^8 over 1,000 deg^2
CHIP_W, CHIP_H = 0.24, 0.12  # a chip's footprint (deg), OmegaCAM's 2k x 4k at 0.21"
FIRST_NIGHT = dt.datetime(2011, 8, 15, 12, tzinfo=dt.UTC)  # noon UTC starts a night
BASE_MS = int(FIRST_NIGHT.timestamp() * 1000)
PER_CHIP_NIGHT = 10 + 1 + 2 * (5 + 1 + 1) + 2 * SCIENCE * 3  # objects per chip and night

OBJECT_COLS = ("oid", "type", "site", "creation_date", "creator", "project", "privileges",
               "is_valid", "quality_flags", "timestamp_start", "timestamp_end", "filename",
               "file_size", "checksum", "software_version", "attributes", "refs", "hlc",
               "curation_hlc", "curation_site", "governed")
NODE_COLS = ("oid", "type", "site", "creation_date", "creator", "project", "privileges",
             "is_valid", "created_valid", "software_version", "timestamp_start",
             "timestamp_end", "date_obs", "chip", "filter", "filename", "seq",
             "created_privileges", "created_timestamp_start", "created_timestamp_end",
             "object_name")
SOURCE_COLS = ("sourcelist", "seq", "ra", "dec", "healpix", "x", "y", "flux", "flux_err",
               "mag", "mag_err", "snr", "flag")


def night_of(n: int) -> dt.datetime:
    return FIRST_NIGHT + dt.timedelta(days=n)


def nights_for(objects: int) -> int:
    return max(1, round(objects / (CHIPS * PER_CHIP_NIGHT)))


def footprint(sources: int) -> tuple[float, float, float, float]:
    """The sky region (ra0, ra1, dec0, dec1) that holds ``sources`` at DENSITY: 10 deg of
    declination around the equator, as wide in right ascension as it must be."""
    width = sources / DENSITY / 10.0
    return 150.0, 150.0 + width, -5.0, 5.0


class _Oids:
    """UUIDv7 oids in creation order (what the catalogue makes), from a seeded generator."""

    def __init__(self, seed: int) -> None:
        self.rng = random.Random(seed)
        self.n = 0

    def __call__(self) -> str:
        ms = BASE_MS + self.n
        self.n += 1
        bits = self.rng.getrandbits(74)
        value = (ms << 80) | (0x7 << 76) | ((bits >> 62) << 64) | (0b10 << 62) | (
            bits & (2**62 - 1))
        h = f"{value:032x}"  # the canonical form: refs hold oids as the catalogue writes them
        return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


def _ts(t: dt.datetime | None) -> str:
    return "\\N" if t is None else t.isoformat()


@dataclass
class _Writer:
    """Text COPY buffers for one batch of nights: catalog objects and references, lineage
    nodes and edges (the same references)."""

    objects: io.StringIO = field(default_factory=io.StringIO)
    refs: io.StringIO = field(default_factory=io.StringIO)
    nodes: io.StringIO = field(default_factory=io.StringIO)
    count: int = 0
    sourcelists: list[tuple[str, str, str]] = field(default_factory=list)
    template: bool = False  # hlc and seq as a placeholder (see _Template)

    def add(self, oid: str, type_: str, made: dt.datetime, refs: dict[str, Any],
            attributes: dict[str, Any], window: tuple[dt.datetime, dt.datetime] | None = None,
            filename: str | None = None) -> str:
        self.count += 1
        seq: int | str = "<%h%>" if self.template else self.count
        start, end = window if window else (None, None)
        checksum = f"{self.count:064x}" if filename else "\\N"
        size = "20971520" if filename else "\\N"
        software = "awe-1.0" if type_.startswith(("Reduced", "Source", "Bias", "Dome",
                                                   "Master")) else "\\N"
        self.objects.write("\t".join((
            oid, type_, "scale", made.isoformat(), "admin", "admin", "3", "1", "0",
            _ts(start), _ts(end), filename or "\\N", size, checksum, software,
            json.dumps(attributes, separators=(",", ":")),
            json.dumps(refs, separators=(",", ":")), str(seq), str(seq), "scale", "t")) + "\n")
        for name, value in refs.items():
            targets = value if isinstance(value, list) else [value]
            for pos, dst in enumerate(targets):
                self.refs.write(f"{oid}\t{name}\t{pos}\t{dst}\n")
        date_obs = attributes.get("date_obs")
        self.nodes.write("\t".join((
            oid, type_, "scale", made.isoformat(), "admin", "admin", "3", "1", "1", software,
            _ts(start), _ts(end), date_obs or "\\N", refs.get("chip", "\\N"),
            refs.get("filter", "\\N"), filename or "\\N", str(seq), "3", _ts(start), _ts(end),
            attributes.get("name", "\\N"))) + "\n")
        return oid


def _chip_night(w: _Writer, new: _Oids, night: int, chip: int, inst: str, chip_oid: str,
                filters: dict[str, str]) -> None:
    """The objects of one chip and one night, in the order a night's pipeline makes them."""
    noon = night_of(night)
    evening = noon + dt.timedelta(hours=10)
    made = noon + dt.timedelta(days=1)  # reduced the next morning
    c = f"ccd{chip:02d}"
    base = {"instrument": inst, "chip": chip_oid}
    raw_b = [w.add(new(), "RawBiasFrame", made, base,
                   {"date_obs": (evening - dt.timedelta(hours=2, minutes=k)).isoformat(),
                    "exptime": 0.0, "object": "BIAS"},
                   filename=f"raw/n{night}/bias{k}_{c}.fits") for k in range(10)]
    window = (noon - dt.timedelta(days=2), noon + dt.timedelta(days=3))
    bias = w.add(new(), "BiasFrame", made, {**base, "raw_bias_frames": raw_b},
                 {"imstat": {"mean": 500.0, "stdev": 3.1}}, window,
                 filename=f"cal/n{night}/bias_{c}.fits")
    pair = (FILTERS[night % 5], FILTERS[(night + 2) % 5])
    flats: dict[str, str] = {}
    for f in pair:
        fb = {**base, "filter": filters[f]}
        raw_f = [w.add(new(), "RawDomeFlatFrame", made, fb,
                       {"date_obs": (evening - dt.timedelta(hours=1, minutes=k)).isoformat(),
                        "exptime": 2.0, "object": "DOME"},
                       filename=f"raw/n{night}/dome{f}{k}_{c}.fits") for k in range(5)]
        dome = w.add(new(), "DomeFlatFrame", made,
                     {**fb, "raw_dome_flat_frames": raw_f, "bias": bias},
                     {"imstat": {"mean": 1.0, "stdev": 0.01}}, window,
                     filename=f"cal/n{night}/dome{f}_{c}.fits")
        flats[f] = w.add(new(), "MasterFlatFrame", made, {**fb, "dome": dome},
                         {"imstat": {"mean": 1.0, "stdev": 0.01}}, window,
                         filename=f"cal/n{night}/flat{f}_{c}.fits")
    for j, f in enumerate(pair):
        fb = {**base, "filter": filters[f]}
        for k in range(SCIENCE):
            when = (evening + dt.timedelta(minutes=6 * (j * SCIENCE + k))).isoformat()
            field_ = f"KIDS_{(night * 7 + k) % 1000}"
            raw = w.add(new(), "RawScienceFrame", made, fb,
                        {"date_obs": when, "exptime": 360.0, "object": field_,
                         "ra": 150.0 + k, "dec": -2.0},
                        filename=f"raw/n{night}/sci{f}{k}_{c}.fits")
            red = w.add(new(), "ReducedScienceFrame", made,
                        {**fb, "raw": raw, "bias": bias, "flat": flats[f]},
                        {"date_obs": when, "exptime": 360.0, "object": field_,
                         "imstat": {"mean": 1000.0, "stdev": 30.0 + k}},
                        filename=f"red/n{night}/sci{f}{k}_{c}.fits")
            sl = w.add(new(), "SourceList", made,
                       {"chip": chip_oid, "filter": filters[f], "frame": red},
                       {"number_of_sources": PER_LIST, "seeing": 0.7},
                       filename=f"src/n{night}/sci{f}{k}_{c}.fits")
            w.sourcelists.append((sl, c, f))


class _Template:
    """One chip-night's COPY text as a str.format template, made once per filter pair by
    running _chip_night with placeholders (oids, chip, night, times), so that a chip-night
    costs one format call instead of a hundred json.dumps (10^7 objects in minutes)."""

    def __init__(self, pair_of: int) -> None:
        self.n = 0
        w = _Writer(template=True)
        filters = {f: f"<%f_{f}%>" for f in FILTERS}
        _chip_night(w, self._oid, pair_of, 0, "<%inst%>", "<%chip%>", filters)
        self.objects_n = self.n
        # the sourcelists' positions among the oids, and their filters
        self.lists = [(int(o[3:-2]), f) for o, _, f in w.sourcelists]
        texts = [w.objects.getvalue(), w.refs.getvalue(), w.nodes.getvalue()]
        times = sorted({m for t in texts for m in re.findall(
            r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\+00:00", t)})
        self.times = [dt.datetime.fromisoformat(t) - dt.timedelta(days=pair_of)
                      for t in times]
        out = []
        for t in texts:
            t = t.replace("{", "{{").replace("}", "}}")
            for k, when in enumerate(times):
                t = t.replace(when, f"<%t{k}%>")
            t = t.replace(f"/n{pair_of}/", "/n<%night%>/").replace("ccd00", "<%c%>")
            out.append(re.sub("<%([a-z_0-9]+)%>", r"{\1}", t))
        self.objects, self.refs, self.nodes = out

    def _oid(self) -> str:
        self.n += 1
        return f"<%o{self.n - 1}%>"

    def fill(self, w: _Writer, new: _Oids, night: int, chip: int, values: dict[str, str],
             times: list[str]) -> None:
        oids = [new() for _ in range(self.objects_n)]
        args = {**values, "night": str(night), "c": f"ccd{chip:02d}", "h": str(w.count)}
        args.update((f"o{k}", o) for k, o in enumerate(oids))
        args.update((f"t{k}", t) for k, t in enumerate(times))
        w.objects.write(self.objects.format(**args))
        w.refs.write(self.refs.format(**args))
        w.nodes.write(self.nodes.format(**args))
        w.count += self.objects_n
        w.sourcelists.extend((oids[k], args["c"], f) for k, f in self.lists)


async def _copy_text(conn: asyncpg.Connection, table: str, cols: tuple[str, ...],
                     buf: io.StringIO) -> None:
    data = buf.getvalue().encode()
    if data:
        await conn.copy_to_table(table, source=io.BytesIO(data), columns=cols, format="text")


async def _drop_indexes(conn: asyncpg.Connection, tables: list[str]) -> list[str]:
    """Drop the secondary indexes and foreign keys of ``tables``; returns the statements
    that make them again (their own definitions)."""
    again: list[str] = []
    for r in await conn.fetch(
            "SELECT i.indexrelid::regclass::text AS name, pg_get_indexdef(i.indexrelid) AS d "
            "FROM pg_index i WHERE i.indrelid::regclass::text = ANY($1) AND NOT i.indisprimary",
            tables):
        again.append(r["d"])
        await conn.execute(f"DROP INDEX {r['name']}")
    for r in await conn.fetch(
            "SELECT conrelid::regclass::text AS t, conname, pg_get_constraintdef(oid) AS d "
            "FROM pg_constraint WHERE contype = 'f' AND conrelid::regclass::text = ANY($1)",
            tables):
        again.append(f"ALTER TABLE {r['t']} ADD CONSTRAINT {r['conname']} {r['d']}")
        await conn.execute(f"ALTER TABLE {r['t']} DROP CONSTRAINT {r['conname']}")
    return again


async def migrate(conn: asyncpg.Connection, package: str, lock: int,
                  upto: str | None = None) -> list[str]:
    """The package's migrations (the service's own code), all or only up to ``upto``."""
    if upto is None:
        return await pg.apply_migrations(conn, package, lock)
    await conn.execute("CREATE TABLE IF NOT EXISTS schema_migrations ("
                       " version text PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())")
    done = {r["version"] for r in await conn.fetch("SELECT version FROM schema_migrations")}
    applied = []
    for f in sorted(resources.files(package).joinpath("migrations").iterdir(),
                    key=lambda f: f.name):
        version = f.name.removesuffix(".sql")
        if not f.name.endswith(".sql") or version > upto or version in done:
            continue
        async with conn.transaction():
            await conn.execute(f.read_text())
            await conn.execute("INSERT INTO schema_migrations (version) VALUES ($1)", version)
        applied.append(version)
    return applied


async def _marker(conn: asyncpg.Connection) -> dict[str, dict[str, Any]]:
    await conn.execute(
        "CREATE TABLE IF NOT EXISTS bench_scale_generated (what text PRIMARY KEY, "
        "rows bigint NOT NULL, seconds double precision NOT NULL, bytes bigint NOT NULL, "
        "detail jsonb NOT NULL DEFAULT '{}', at timestamptz NOT NULL DEFAULT now())")
    return {r["what"]: {**dict(r), "detail": json.loads(r["detail"])}
            for r in await conn.fetch("SELECT * FROM bench_scale_generated")}


async def _record(conn: asyncpg.Connection, what: str, rows: int, seconds: float,
                  size: int, detail: dict[str, Any]) -> None:
    await conn.execute(
        "INSERT INTO bench_scale_generated (what, rows, seconds, bytes, detail) "
        "VALUES ($1, $2, $3, $4, $5) ON CONFLICT (what) DO UPDATE SET rows = $2, "
        "seconds = $3, bytes = $4, detail = $5, at = now()",
        what, rows, seconds, size, json.dumps(detail))


async def table_bytes(conn: asyncpg.Connection, *tables: str) -> int:
    return int(await conn.fetchval(
        "SELECT coalesce(sum(pg_total_relation_size(c.oid)), 0) FROM pg_class c "
        "WHERE c.relname = ANY($1) AND c.relkind IN ('r', 'p')", list(tables)))


async def generate_objects(cat: asyncpg.Connection, lin: asyncpg.Connection, objects: int,
                           say: Any) -> dict[str, Any]:
    """Load ``objects`` objects (rounded to whole nights) into the catalog and lineage
    databases, unless the marker says they are there; returns the marker's row."""
    done = await _marker(cat)
    if "objects" in done:
        return done["objects"]
    start = time.perf_counter()
    new = _Oids(seed=17_001)
    head = _Writer()
    inst = head.add(new(), "Instrument", FIRST_NIGHT, {},
                    {"name": "OMEGACAM", "telescope": "VST", "pixel_scale": 0.21})
    filters = {f: head.add(new(), "Filter", FIRST_NIGHT, {}, {"name": f}) for f in FILTERS}
    chips = [head.add(new(), "Chip", FIRST_NIGHT, {"instrument": inst},
                      {"name": f"ccd{i:02d}", "nx": 2048, "ny": 4096}) for i in range(CHIPS)]
    again_cat = await _drop_indexes(cat, ["objects", "object_refs", "sources"])
    again_lin = await _drop_indexes(lin, ["nodes", "edges"])
    nights = nights_for(objects)
    sourcelists: list[tuple[str, str, str]] = []
    w = head
    templates = [_Template(k) for k in range(5)]  # one per pair of filters
    values = {"inst": inst, **{f"f_{f}": o for f, o in filters.items()}}
    for night in range(nights):
        t = templates[night % 5]
        times = [(x + dt.timedelta(days=night)).isoformat() for x in t.times]
        for chip in range(CHIPS):
            t.fill(w, new, night, chip, {**values, "chip": chips[chip]}, times)
        if night % 20 == 19 or night == nights - 1:
            await _copy_text(cat, "objects", OBJECT_COLS, w.objects)
            await _copy_text(cat, "object_refs", ("src", "name", "pos", "dst"), w.refs)
            await _copy_text(lin, "nodes", NODE_COLS, w.nodes)
            await _copy_text(lin, "edges", ("src", "name", "pos", "dst"), w.refs)
            sourcelists.extend(w.sourcelists)
            w = _Writer(count=w.count)
            say(f"  objects: {w.count:,} ({night + 1}/{nights} nights, "
                f"{w.count / (time.perf_counter() - start):,.0f}/s)")
    copied = time.perf_counter() - start
    say("  objects: building indexes again")
    for statement in again_cat:
        await cat.execute(statement)
    for statement in again_lin:
        await lin.execute(statement)
    await cat.execute("VACUUM ANALYZE objects")
    await cat.execute("VACUUM ANALYZE object_refs")
    await lin.execute("VACUUM ANALYZE nodes")
    await lin.execute("VACUUM ANALYZE edges")
    await cat.execute("CREATE TABLE IF NOT EXISTS bench_scale_sourcelists "
                      "(n integer PRIMARY KEY, oid uuid NOT NULL, chip text, filter text)")
    await cat.copy_records_to_table("bench_scale_sourcelists", records=[
        (i, uuid.UUID(o), c, f) for i, (o, c, f) in enumerate(sourcelists)])
    seconds = time.perf_counter() - start
    size = await table_bytes(cat, "objects", "object_refs") + await table_bytes(
        lin, "nodes", "edges")
    refs = int(await cat.fetchval("SELECT count(*) FROM object_refs"))
    await _record(cat, "objects", w.count, seconds, size, {
        "nights": nights, "chips": CHIPS, "refs": refs, "copy_seconds": copied,
        "index_seconds": seconds - copied,
        "catalog_bytes": await table_bytes(cat, "objects", "object_refs"),
        "lineage_bytes": await table_bytes(lin, "nodes", "edges")})
    return (await _marker(cat))["objects"]


def _copy_header() -> bytes:
    return b"PGCOPY\n\xff\r\n\x00" + struct.pack(">ii", 0, 0)


_SOURCE_DTYPE = np.dtype([
    ("n", ">i2"), ("l0", ">i4"), ("sourcelist", "V16"), ("l1", ">i4"), ("seq", ">i4"),
    ("l2", ">i4"), ("ra", ">f8"), ("l3", ">i4"), ("dec", ">f8"), ("l4", ">i4"),
    ("healpix", ">i8"), ("l5", ">i4"), ("x", ">f4"), ("l6", ">i4"), ("y", ">f4"),
    ("l7", ">i4"), ("flux", ">f8"), ("l8", ">i4"), ("flux_err", ">f8"), ("l9", ">i4"),
    ("mag", ">f4"), ("l10", ">i4"), ("mag_err", ">f4"), ("l11", ">i4"), ("snr", ">f4"),
    ("l12", ">i4"), ("flag", ">i4")])


def source_rows(rng: np.random.Generator, lists: list[uuid.UUID], seq0: int,
                region: tuple[float, float, float, float]) -> np.ndarray:
    """The sources of some source lists as binary COPY tuples (one numpy record each):
    each list a chip's footprint at a random place in ``region``."""
    ra0, ra1, dec0, dec1 = region
    n = len(lists) * PER_LIST
    rows = np.zeros(n, dtype=_SOURCE_DTYPE)
    rows["n"] = len(SOURCE_COLS)
    for i, size in enumerate((16, 4, 8, 8, 8, 4, 4, 8, 8, 4, 4, 4, 4)):
        rows[f"l{i}"] = size
    centre_ra = rng.uniform(ra0 + CHIP_W / 2, ra1 - CHIP_W / 2, len(lists))
    centre_dec = rng.uniform(dec0 + CHIP_H / 2, dec1 - CHIP_H / 2, len(lists))
    ra = np.repeat(centre_ra, PER_LIST) + rng.uniform(-CHIP_W / 2, CHIP_W / 2, n)
    dec = np.repeat(centre_dec, PER_LIST) + rng.uniform(-CHIP_H / 2, CHIP_H / 2, n)
    rows["sourcelist"] = np.repeat(
        np.frombuffer(b"".join(o.bytes for o in lists), dtype="V16"), PER_LIST)
    rows["seq"] = np.tile(np.arange(seq0, seq0 + PER_LIST, dtype=np.int32), len(lists))
    rows["ra"], rows["dec"] = ra, dec
    rows["healpix"] = healpix_of(ra, dec)
    rows["x"] = rng.uniform(0, 2048, n)
    rows["y"] = rng.uniform(0, 4096, n)
    mag = 18 + 7 * rng.power(3.0, n)  # more faint than bright, to ~25
    flux = 10 ** (-0.4 * (mag - 30))
    rows["mag"], rows["flux"] = mag, flux
    rows["flux_err"] = np.sqrt(flux)
    rows["snr"] = flux / np.sqrt(flux)
    rows["mag_err"] = 1.0857 / rows["snr"]
    rows["flag"] = (rng.random(n) < 0.05).astype(np.int32)
    return rows


def source_copy(rows: np.ndarray) -> bytes:
    return _copy_header() + rows.tobytes() + struct.pack(">h", -1)


async def generate_sources(cat: asyncpg.Connection, sources: int, say: Any) -> dict[str, Any]:
    """Load ``sources`` sources (whole source lists of PER_LIST) unless already there."""
    done = await _marker(cat)
    if "sources" in done and done["sources"]["rows"] >= sources:
        return done["sources"]
    if "sources" in done:  # a larger size than the one kept: start over
        await cat.execute("TRUNCATE sources")
    lists_n = sources // PER_LIST
    lists = [r["oid"] for r in await cat.fetch(
        "SELECT oid FROM bench_scale_sourcelists ORDER BY n LIMIT $1", lists_n)]
    if len(lists) < lists_n:
        raise SystemExit(f"{lists_n:,} source lists needed, {len(lists):,} generated: "
                         "generate more objects")
    region = footprint(sources)
    rng = np.random.default_rng(17_002)
    start = time.perf_counter()
    again = await _drop_indexes(cat, ["sources"])
    step = 250  # source lists per COPY: 10^6 rows
    for i in range(0, len(lists), step):
        data = source_copy(source_rows(rng, lists[i:i + step], 0, region))
        await cat.copy_to_table("sources", source=io.BytesIO(data), columns=SOURCE_COLS,
                                format="binary")
        done_n = min(len(lists), i + step) * PER_LIST
        say(f"  sources: {done_n:,} ({done_n / (time.perf_counter() - start):,.0f} rows/s)")
    copied = time.perf_counter() - start
    say("  sources: building indexes again")
    index_times = {}
    for statement in again:
        t = time.perf_counter()
        await cat.execute(statement)
        index_times[statement.split(" ON ")[0]] = round(time.perf_counter() - t, 1)
    await cat.execute("VACUUM ANALYZE sources")
    seconds = time.perf_counter() - start
    sizes = {r["name"]: r["bytes"] for r in await cat.fetch(
        "SELECT c.relname AS name, pg_relation_size(c.oid) AS bytes FROM pg_class c "
        "WHERE c.relname = 'sources' OR c.oid IN (SELECT indexrelid FROM pg_index "
        "WHERE indrelid = 'sources'::regclass)")}
    await _record(cat, "sources", len(lists) * PER_LIST, seconds,
                  await table_bytes(cat, "sources"),
                  {"region": region, "copy_seconds": copied, "index_seconds": index_times,
                   "relation_bytes": sizes, "per_list": PER_LIST})
    return (await _marker(cat))["sources"]


def night_window(night: int) -> tuple[dt.datetime, dt.datetime]:
    return night_of(night), night_of(night + 1)


def iter_nights(nights: int, seed: int) -> Iterator[int]:
    rng = random.Random(seed)
    while True:
        yield rng.randrange(nights)


def keep_dir(path: Path) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    for p in (path, *path.parents):
        if str(p) in ("/", "/tmp"):
            break
        p.chmod(p.stat().st_mode | 0o711)  # PostgreSQL runs as nobody under root
    return path
