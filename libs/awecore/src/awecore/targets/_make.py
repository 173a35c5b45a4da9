"""Making what a plan says: inputs' pixels from storage, the recipe, the product registered.

Every product is stored under a name derived from its oid (chosen before it is made) and
registered with its references, process parameters and software version: the lineage.

The maker talks to the world through three ports (``_ports``: read the catalogue, write to
it, the file store) and awaits them; the recipe itself (numpy, astropy) runs in a thread, off
the event loop, so a service's loop keeps serving (and renewing leases) while a frame is
reduced. Before the recipe starts, the records of its inputs and their files are fetched
together; what a recipe reaches for beyond them (the raw frame behind a reduced one, the
reference catalogue of an astrometric solution) its thread asks the loop for.
"""

from __future__ import annotations

import asyncio
import hashlib
import io
import threading
from collections import OrderedDict
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

import numpy as np
from astropy.io import fits
from astropy.table import Table

from ..errors import (
    CalibrationChanged,
    ChecksumMismatch,
    Conflict,
    InvalidRequest,
    NotFound,
    QCRefused,
)
from ..files import name_part
from ..ids import new_oid
from ..model import CalFile, Chip, Filter, RawFrame, registry
from ..pipelines import QC, SOFTWARE_VERSION, overscan_correct, parse_section
from ..query import Compare, QuerySpec
from ..records import ObjectIn, ObjectOut
from ..staleness import covers, moment
from ._header import header_cards, observed_attributes, product_header
from ._nodes import calibrates
from ._plan import Node, Plan
from ._policy import describe, flags_of, refused_flags
from ._ports import CatalogReader, CatalogWriter, FileStore
from ._recipes import RECIPES, Inputs, Made, Recipe
from ._rules import CalibrationRules

__all__ = ["AsyncMaker", "MakerCache", "product_name"]

T = TypeVar("T")
#: input files fetched at once before a recipe runs
FETCH_CONCURRENCY = 4

_RAW_TYPES = frozenset(registry.subclass_names(RawFrame))
#: cards of a product's image that do not describe its weight map
_NOT_OF_WEIGHTS = frozenset({"BUNIT", "MAGZP", "PHOTZP", "MAGZERO"})


def product_name(cls: str, chip: str | None, night: str | None, oid: str,
                 tile: str | None = None) -> str:
    """Where a product's file is stored: by class, chip (any name: see files.name_part),
    night (or, for a product across chips and nights, its sky tile) and its own oid, so no
    two products can share a file."""
    if chip is None or night is None:
        return f"products/{cls}/{name_part(tile or 'all')}/{oid}.fits"
    return f"products/{cls}/{name_part(chip)}/{night}/{oid}.fits"


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _fits(image: np.ndarray | None, header: dict[str, Any],
          extensions: dict[str, np.ndarray] | None = None,
          table: dict[str, Any] | None = None) -> bytes:
    """A product's file: the image with its header (values, or (value, comment) pairs),
    its extensions with the same cards (so each is placed on the sky alone), its table."""
    buf = io.BytesIO()
    cards = header_cards(header)
    hdu = fits.PrimaryHDU(image)
    hdu.header.extend(cards, update=True)
    hdus: list[Any] = [hdu]
    for name, data in (extensions or {}).items():
        ext = fits.ImageHDU(data, name=name)
        ext.header.extend([c for c in cards.cards if c.keyword != "AWETYPE"], update=True)
        hdus.append(ext)
    if table is not None:
        hdus.append(fits.BinTableHDU(Table(table), name="TABLE"))
    fits.HDUList(hdus).writeto(buf)
    return buf.getvalue()


class MakerCache:
    """What a maker keeps between jobs: stored files, decoded, while they fit in a byte
    budget (least recently used go first), and the oids of chips and filters by name. Safe
    to share between jobs (a worker's recipes run in threads, so it is locked): a stored
    file never changes (storage is write-once), objects are immutable, and a worker making
    the reduced frames of a night reads the same calibrations each time. The budget counts
    stored bytes, near enough to what the decoded arrays take."""

    def __init__(self, max_bytes: int = 1 << 30) -> None:
        self.max_bytes = max_bytes
        self.names: dict[tuple[str, str], str] = {}
        self._hdus: OrderedDict[str, tuple[fits.HDUList, int]] = OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()

    def __contains__(self, name: str) -> bool:
        return name in self._hdus

    def get(self, name: str) -> fits.HDUList | None:
        with self._lock:
            found = self._hdus.get(name)
            if found is None:
                return None
            self._hdus.move_to_end(name)
            return found[0]

    def put(self, name: str, data: bytes) -> fits.HDUList:
        """Decode a file and keep it (CPU work: called from a recipe's thread)."""
        hdul = fits.open(io.BytesIO(data))
        for hdu in hdul:  # decode now: the bytes are dropped
            _ = hdu.data
        with self._lock:
            if name not in self._hdus:
                self._bytes += len(data)
            self._hdus[name] = (hdul, len(data))
            while self._bytes > self.max_bytes and self._hdus:
                _, (_, size) = self._hdus.popitem(last=False)
                self._bytes -= size
        return hdul


class _Loader:
    """The recipes' Loader, used in the recipe's thread: what the maker fetched already is
    used as it is; anything else is asked of the maker on its event loop."""

    def __init__(self, maker: AsyncMaker, loop: asyncio.AbstractEventLoop) -> None:
        self.maker = maker
        self.loop = loop

    def _await(self, coro: Coroutine[Any, Any, T]) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result()

    def record(self, oid: str) -> ObjectOut:
        found = self.maker._records.get(oid)
        return found if found is not None else self._await(self.maker.record(oid))

    def hdus(self, name: str) -> fits.HDUList:
        """A stored file of an input, checked against the checksum and size the catalogue
        recorded for it (by the file store) before anything is computed from it."""
        cache = self.maker._cache
        cached = cache.get(name)
        if cached is not None:
            return cached
        data = self.maker._fetched.pop(name, None)
        if data is None:
            data = self._await(self.maker.file(name))
        return cache.put(name, data)

    def pixels(self, oid: str) -> np.ndarray:
        """An input's pixels in float32; a raw frame's with its overscan level subtracted
        and trimmed to its data section, so every product is on the trimmed image."""
        pixels = self.maker._pixels
        if oid not in pixels:
            record = self.record(oid)
            if record.filename is None:
                raise InvalidRequest(f"{record.type} {oid} has no pixels")
            data = self.hdus(record.filename)[0].data
            a = record.attributes
            if record.type in _RAW_TYPES and a.get("data_section"):
                overscan = a.get("overscan_section")
                pixels[oid] = overscan_correct(
                    data, parse_section(str(a["data_section"]), data.shape),
                    parse_section(str(overscan), data.shape) if overscan else None,
                    float(a["overscan_level"]) if a.get("overscan_level") is not None
                    else None)
            else:
                pixels[oid] = np.asarray(data, dtype=np.float32)
        return pixels[oid]


def _compute(recipe: Recipe, node: Node, refs: dict[str, str | list[str]], loader: _Loader,
             oid: str) -> tuple[Made, list[tuple[str, bytes, str]]]:
    """The CPU part of making a product, run in a thread: the recipe, then its files
    encoded, each with its sha256."""
    made = recipe.make(Inputs(refs, loader, node.filter, dict(node.extra)), node.params)
    for key, value in observed_attributes(node.cls, refs, loader).items():
        made.attributes.setdefault(key, value)
    files: list[tuple[str, bytes, str]] = []
    if made.image is not None or made.table is not None:
        name = product_name(node.cls, node.chip,
                            node.night.isoformat() if node.night else None, oid,
                            node.extra.get("tile"))
        header = product_header(node, refs, loader, made, oid)
        data = _fits(made.image, header, made.extensions, made.table)
        files.append((name, data, _sha256(data)))
        if made.weight is not None:
            # the image's cards but its units and zeropoint: a weight is no flux
            weight = _fits(made.weight, {**{k: v for k, v in header.items()
                                            if k not in _NOT_OF_WEIGHTS},
                                         "AWETYPE": "weight"})
            files.append((name.removesuffix(".fits") + ".weight.fits", weight,
                          _sha256(weight)))
    return made, files


class AsyncMaker:
    """Makes products: reads inputs through the catalogue reader and the file store, runs
    the recipe off the event loop, stores the files and registers the product."""

    def __init__(self, catalog: CatalogReader, writer: CatalogWriter, files: FileStore,
                 privileges: int = 3, cache: MakerCache | None = None,
                 rules: CalibrationRules | None = None, project: str | None = None) -> None:
        self.catalog = catalog
        self.writer = writer
        self.files = files
        #: who the products are shared with, and their project (None: the default project
        #: of the account that registers them, whose products they are)
        self.privileges = privileges
        self.project = project
        #: a made calibration's default validity window (the planner's rules: the same
        #: environment, AWE_CALIBRATION_RULES, unless given)
        self.rules = rules if rules is not None else CalibrationRules.from_env()
        self._records: dict[str, ObjectOut] = {}
        self._pixels: dict[str, np.ndarray] = {}
        self._cache = cache or MakerCache()
        #: file name -> (sha256, size, oid) the catalogue recorded for it
        self._expected: dict[str, tuple[str | None, int | None, str]] = {}
        #: files fetched for the recipe in hand, not yet decoded
        self._fetched: dict[str, bytes] = {}

    # -- reading inputs ----------------------------------------------------------------
    def _remember(self, records: dict[str, ObjectOut]) -> None:
        self._records.update(records)
        for r in records.values():
            if r.filename:
                self._expected[r.filename] = (r.checksum, r.file_size, r.oid)
            weight = r.attributes.get("weight_filename")
            if weight:
                self._expected[str(weight)] = (r.attributes.get("weight_checksum"), None, r.oid)

    def _known(self, oid: str) -> ObjectOut:
        if oid not in self._records:
            raise NotFound(f"input {oid} is not in the catalog (or not visible to you)")
        return self._records[oid]

    async def record(self, oid: str) -> ObjectOut:
        if oid not in self._records:
            self._remember(await self.catalog.get_records([oid]))
        return self._known(oid)

    async def file(self, name: str) -> bytes:
        """A stored file of an input, as the file store checked it against the checksum
        and size the catalogue recorded; a file with no checksum is not trusted."""
        if name not in self._expected:
            raise InvalidRequest(f"{name} is the file of no input of this product")
        sha256, size, oid = self._expected[name]
        if not sha256:
            raise ChecksumMismatch(f"{name} (the file of {oid}) has no checksum in the "
                                   "catalogue: it cannot be trusted; see awe verify")
        return await self.files.get(name, sha256=sha256, size=size)

    async def _prefetch(self, oids: set[str]) -> None:
        """The files of these inputs (and their weights), fetched together, unless their
        pixels are at hand already (decoded, or made by this maker): what nearly every
        recipe reads first."""
        names: set[str] = set()
        for oid in oids:
            record = self._known(oid)
            weight = record.attributes.get("weight_filename")
            names.update(str(n) for n in (None if oid in self._pixels else record.filename,
                                          weight) if n and str(n) not in self._cache)
        gate = asyncio.Semaphore(FETCH_CONCURRENCY)

        async def fetch(name: str) -> None:
            async with gate:
                self._fetched[name] = await self.file(name)

        tasks = [asyncio.ensure_future(fetch(n)) for n in sorted(names)]
        try:
            await asyncio.gather(*tasks)
        except BaseException:  # the first failure as it is (a ChecksumMismatch): stop the rest
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            raise

    # -- making ------------------------------------------------------------------------
    async def _named(self, cls: type[Chip | Filter], name: str) -> str:
        key = (cls.__name__, name)
        if key not in self._cache.names:
            spec = QuerySpec(cls=cls.__name__, where=Compare(op="eq", path=("name",),
                                                             value=name))
            found = await self.catalog.find(spec, limit=1)
            if not found:
                raise NotFound(f"no {cls.__name__} named {name}")
            self._cache.names[key] = found[0].oid
        return self._cache.names[key]

    async def _instrument(self, chip: str) -> str | None:
        """The name of a chip's instrument (by the chip's oid), for per-instrument rules."""
        key = ("Instrument of", chip)
        if key not in self._cache.names:
            ref = (await self.record(chip)).refs.get("instrument")
            name = ""
            if isinstance(ref, str):
                found = (await self.catalog.get_records([ref])).get(ref)
                name = str(found.attributes.get("name") or "") if found else ""
            self._cache.names[key] = name
        return self._cache.names[key] or None

    def _instrument_of(self, refs: dict[str, str | list[str]]) -> str | None:
        """The instrument of a product that names none itself: its chip's, or that of the
        first input that has one (a coadd's: its frames')."""
        for value in refs.values():
            for oid in value if isinstance(value, list) else [value]:
                record = self._records.get(oid)
                ref = record.refs.get("instrument") if record is not None else None
                if isinstance(ref, str):
                    return ref
        return None

    async def make(self, plan: Plan, progress: Callable[[Node], None] | None = None) -> str:
        """Make every node the plan marks, inputs first; returns the root's oid."""
        for node in plan.to_make:
            node.oid = await self.make_one(node, plan.input_oids(node), new_oid())
            if progress:
                progress(node)
        root = plan.nodes[plan.root]
        assert root.oid is not None
        return root.oid

    def _qc(self, node: Node, sources: dict[str, str | list[str]]
            ) -> tuple[dict[str, str | list[str]], QC, list[str]]:
        """The QC policy on a node's product inputs (see _policy): inputs of a kind the
        class refuses are left out, a refused single input refuses the product. Returns the
        inputs kept, the flags they pass on, and what was left out."""
        kept: dict[str, str | list[str]] = {}
        inherited, notes = QC(0), []
        for ref, value in sources.items():
            oids = value if isinstance(value, list) else [value]
            ok = []
            for oid in oids:
                record = self._known(oid)
                refused = refused_flags(node.cls, record)
                if refused and not isinstance(value, list):
                    raise QCRefused(f"{node.what}: its {ref} {oid} has "
                                    f"{describe(refused)}, which {node.cls} refuses")
                if refused:
                    notes.append(f"left out {ref} {oid} ({describe(refused)})")
                    continue
                ok.append(oid)
                inherited |= flags_of(record)
            if isinstance(value, list) and not ok:
                raise QCRefused(f"{node.what}: every one of its {ref} has flags "
                                f"{node.cls} refuses: " + "; ".join(notes))
            kept[ref] = ok if isinstance(value, list) else ok[0]
        return kept, inherited, notes

    def _still_valid(self, node: Node, sources: dict[str, str | list[str]]) -> None:
        """The calibrations a plan chose must still serve when the product is made: a
        calibration scientist may have invalidated one, or moved its window off the
        moment, while the job waited. Such a product is not made (a calibration is never
        used outside its window); planning again chooses anew."""
        if node.time is None:
            return
        for ref, value in sources.items():
            for oid in value if isinstance(value, list) else [value]:
                record = self._known(oid)
                if not calibrates(record.type):
                    continue
                if record.is_valid == 0:
                    raise CalibrationChanged(
                        f"{node.what}: its {ref} {oid} was invalidated after the plan was "
                        "made; plan it again")
                if not covers(record.timestamp_start, record.timestamp_end, node.time):
                    raise CalibrationChanged(
                        f"{node.what}: its {ref} {oid} no longer covers {moment(node.time)} "
                        f"(its window is now {record.timestamp_start} to "
                        f"{record.timestamp_end}); plan it again")

    async def _store(self, name: str, data: bytes, sha256: str) -> None:
        """Store a product's file. A name that exists already is fine only when it holds
        these very bytes (a retried job); storage refuses others."""
        info = await self.files.put(name, data)
        if info.sha256 != sha256:
            raise ChecksumMismatch.of(name, sha256, info.sha256)

    async def _registered(self, record: dict[str, Any]) -> None:
        """Register a product; if its oid is taken, only an earlier try of this very job
        (same class, references, file and checksum) counts as done."""
        try:
            await self.writer.create([ObjectIn.model_validate(record)])
            return
        except Conflict:
            stored = (await self.catalog.get_records([record["oid"]])).get(record["oid"])
        same = stored is not None and stored.type == record["type"] and all(
            (sorted(v) if isinstance(v, list) else v)
            == (sorted(w) if isinstance(w := stored.refs.get(k), list) else w)
            for k, v in record["refs"].items()) and stored.filename == record.get(
            "filename") and stored.checksum == record.get("checksum")
        if not same:
            raise Conflict(f"object {record['oid']} exists already and is not this "
                           f"{record['type']} (another product took its oid)")

    async def _load_sources(self, oid: str, rows: dict[str, list[Any]]) -> None:
        """Load a source list's rows; if they were loaded already (by an earlier try: the
        load is one transaction), the count must match."""
        try:
            await self.writer.load_sources(oid, rows)
        except Conflict:
            spec = QuerySpec(cls="Source", where=Compare(op="eq", path=("sourcelist",),
                                                         value=oid))
            loaded = await self.writer.count_sources(spec)
            if loaded != len(rows["ra"]):
                raise Conflict(f"source list {oid} has {loaded} sources loaded, this try "
                               f"made {len(rows['ra'])}") from None

    async def make_one(self, node: Node, sources: dict[str, str | list[str]], oid: str) -> str:
        """Make one product from its inputs' oids, under a chosen oid (so that a job done
        twice registers one object: the second registration is refused)."""
        recipe = RECIPES[node.cls]
        refs: dict[str, str | list[str]] = {}
        if node.chip is not None:
            refs["chip"] = await self._named(Chip, node.chip)
        if node.filter is not None:
            refs["filter"] = await self._named(Filter, node.filter)
        refs.update(node.raws)
        wanted = {o for v in [*refs.values(), *sources.values()]
                  for o in (v if isinstance(v, list) else [v])}
        missing = sorted(wanted - set(self._records))
        if missing:
            self._remember(await self.catalog.get_records(missing))
        self._still_valid(node, sources)
        sources, inherited, left_out = self._qc(node, sources)
        refs.update(sources)
        fields = registry.get(node.cls).fields
        if node.chip is None and "instrument" in fields and "instrument" not in refs:
            # a product across chips (a coadd) names its frames' instrument itself
            instrument = self._instrument_of(refs)
            if instrument is not None:
                refs["instrument"] = instrument
        try:
            await self._prefetch({o for v in refs.values()
                                  for o in (v if isinstance(v, list) else [v])
                                  if o != refs.get("instrument")})
            made, files = await asyncio.to_thread(
                _compute, recipe, node, refs, _Loader(self, asyncio.get_running_loop()), oid)
        finally:
            self._fetched.clear()
        record: dict[str, Any] = {
            "oid": oid, "type": node.cls, "privileges": self.privileges, "refs": refs,
            "process_params": node.params, "software_version": SOFTWARE_VERSION,
            "quality_flags": made.quality_flags,
        }
        if self.project is not None:
            record["project"] = self.project
        attributes = {**{k: v for k, v in node.extra.items() if k in fields},
                      **made.attributes}
        attributes["inherited_flags"] = int(inherited)
        if left_out:
            record["comments"] = "QC policy: " + "; ".join(left_out)
        if issubclass(registry.get(node.cls), CalFile) and node.chip is not None \
                and node.night is not None:
            start, end = self.rules.window(node.cls, node.night,
                                           await self._instrument(str(refs["chip"])))
            record.update(timestamp_start=start, timestamp_end=end)
        for name, data, sha256 in files:
            await self._store(name, data, sha256)
        if files:
            name, data, sha256 = files[0]
            record.update(filename=name, file_size=len(data), checksum=sha256)
            if made.image is not None:
                self._pixels[oid] = np.asarray(made.image, dtype=np.float32)
        if len(files) > 1:
            attributes["weight_filename"], _, attributes["weight_checksum"] = files[1]
        record["attributes"] = attributes
        await self._registered(record)
        if made.sources is not None:
            await self._load_sources(oid, made.sources)
        return oid
