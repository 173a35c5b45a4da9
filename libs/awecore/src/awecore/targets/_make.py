"""Making what a plan says: inputs' pixels from storage, the recipe, the product registered.

Every product is stored under a name derived from its oid (chosen before it is made) and
registered with its references, process parameters and software version: the lineage.
"""

from __future__ import annotations

import hashlib
import io
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

import numpy as np
from astropy.io import fits

from ..client import CatalogClient, StorageClient
from ..errors import ChecksumMismatch, Conflict, InvalidRequest, NotFound, QCRefused
from ..files import name_part
from ..ids import new_oid
from ..model import CalFile, Chip, Filter, ObjectIn, ObjectOut, RawFrame, registry
from ..pipelines import QC, SOFTWARE_VERSION, overscan_correct, parse_section
from ..query import Compare, QuerySpec
from ._plan import Node, Plan, night_window
from ._policy import describe, flags_of, refused_flags
from ._recipes import RECIPES, Inputs

__all__ = ["Maker", "MakerCache", "product_name"]

_RAW_TYPES = frozenset(registry.subclass_names(RawFrame))


def product_name(cls: str, chip: str, night: str, oid: str) -> str:
    """Where a product's file is stored: by class, chip (any name: see files.name_part),
    night and its own oid, so no two products can share a file."""
    return f"products/{cls}/{name_part(chip)}/{night}/{oid}.fits"


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _fits(image: np.ndarray, header: dict[str, Any]) -> bytes:
    buf = io.BytesIO()
    hdu = fits.PrimaryHDU(image)
    for key, value in header.items():
        hdu.header[key] = value
    hdu.writeto(buf)
    return buf.getvalue()


class MakerCache:
    """What a maker keeps between jobs: stored files, decoded, while they fit in a byte
    budget (least recently used go first), and the oids of chips and filters by name. Safe
    to share between the jobs of one thread (a worker runs one at a time): a stored file
    never changes (storage is write-once), objects are immutable, and a worker making the
    reduced frames of a night reads the same calibrations each time. The budget counts
    stored bytes, near enough to what the decoded arrays take."""

    def __init__(self, max_bytes: int = 1 << 30) -> None:
        self.max_bytes = max_bytes
        self.names: dict[tuple[str, str], str] = {}
        self._hdus: OrderedDict[str, tuple[fits.HDUList, int]] = OrderedDict()
        self._bytes = 0

    def get(self, name: str) -> fits.HDUList | None:
        found = self._hdus.get(name)
        if found is None:
            return None
        self._hdus.move_to_end(name)
        return found[0]

    def put(self, name: str, data: bytes) -> fits.HDUList:
        hdul = fits.open(io.BytesIO(data))
        for hdu in hdul:  # decode now: the bytes are dropped
            _ = hdu.data
        self._hdus[name] = (hdul, len(data))
        self._bytes += len(data)
        while self._bytes > self.max_bytes and self._hdus:
            _, (_, size) = self._hdus.popitem(last=False)
            self._bytes -= size
        return hdul


class Maker:
    """Makes products; also the recipes' Loader: records, pixels and files, each fetched once."""

    def __init__(self, catalog: CatalogClient, storage: StorageClient,
                 privileges: int = 3, cache: MakerCache | None = None) -> None:
        self.catalog = catalog
        self.storage = storage
        self.privileges = privileges
        self._records: dict[str, ObjectOut] = {}
        self._pixels: dict[str, np.ndarray] = {}
        self._cache = cache or MakerCache()
        #: file name -> (sha256, size, oid) the catalogue recorded for it
        self._expected: dict[str, tuple[str | None, int | None, str]] = {}

    # -- the Loader of the recipes -----------------------------------------------------
    def _remember(self, records: dict[str, ObjectOut]) -> None:
        self._records.update(records)
        for r in records.values():
            if r.filename:
                self._expected[r.filename] = (r.checksum, r.file_size, r.oid)
            weight = r.attributes.get("weight_filename")
            if weight:
                self._expected[str(weight)] = (r.attributes.get("weight_checksum"), None, r.oid)

    def record(self, oid: str) -> ObjectOut:
        if oid not in self._records:
            self._remember(self.catalog.get_records([oid]))
        if oid not in self._records:
            raise NotFound(f"input {oid} is not in the catalog (or not visible to you)")
        return self._records[oid]

    def hdus(self, name: str) -> fits.HDUList:
        """A stored file of an input, checked against the checksum and size the catalogue
        recorded for it before anything is computed from it."""
        cached = self._cache.get(name)
        if cached is not None:
            return cached
        if name not in self._expected:
            raise InvalidRequest(f"{name} is the file of no input of this product")
        sha256, size, oid = self._expected[name]
        if not sha256:
            raise ChecksumMismatch(f"{name} (the file of {oid}) has no checksum in the "
                                   "catalogue: it cannot be trusted; see awe verify")
        return self._cache.put(name, self.storage.get(name, sha256=sha256, size=size))

    def pixels(self, oid: str) -> np.ndarray:
        """An input's pixels in float32; a raw frame's with its overscan level subtracted
        and trimmed to its data section, so every product is on the trimmed image."""
        if oid not in self._pixels:
            record = self.record(oid)
            if record.filename is None:
                raise InvalidRequest(f"{record.type} {oid} has no pixels")
            data = self.hdus(record.filename)[0].data
            a = record.attributes
            if record.type in _RAW_TYPES and a.get("data_section"):
                overscan = a.get("overscan_section")
                self._pixels[oid] = overscan_correct(
                    data, parse_section(str(a["data_section"]), data.shape),
                    parse_section(str(overscan), data.shape) if overscan else None,
                    float(a["overscan_level"]) if a.get("overscan_level") is not None
                    else None)
            else:
                self._pixels[oid] = np.asarray(data, dtype=np.float32)
        return self._pixels[oid]

    # -- making ------------------------------------------------------------------------
    def _named(self, cls: type[Chip | Filter], name: str) -> str:
        key = (cls.__name__, name)
        if key not in self._cache.names:
            spec = QuerySpec(cls=cls.__name__, where=Compare(op="eq", path=("name",),
                                                             value=name))
            found = [o.record for o in self.catalog.iter_query(spec, limit=1) if o.record]
            if not found:
                raise NotFound(f"no {cls.__name__} named {name}")
            self._cache.names[key] = found[0].oid
        return self._cache.names[key]

    def make(self, plan: Plan, progress: Callable[[Node], None] | None = None) -> str:
        """Make every node the plan marks, inputs first; returns the root's oid."""
        for node in plan.to_make:
            node.oid = self.make_one(node, plan.input_oids(node), new_oid())
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
                record = self.record(oid)
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

    def _store(self, name: str, data: bytes) -> str:
        """Store a product's file and return its sha256. A name that exists already is
        fine only when it holds these very bytes (a retried job); storage refuses others."""
        sha256 = _sha256(data)
        info = self.storage.put(name, data)
        if info.sha256 != sha256:
            raise ChecksumMismatch.of(name, sha256, info.sha256)
        return sha256

    def _registered(self, record: dict[str, Any]) -> None:
        """Register a product; if its oid is taken, only an earlier try of this very job
        (same class, references, file and checksum) counts as done."""
        try:
            self.catalog.create_batch([ObjectIn.model_validate(record)])
            return
        except Conflict:
            stored = self.catalog.get_records([record["oid"]]).get(record["oid"])
        same = stored is not None and stored.type == record["type"] and all(
            (sorted(v) if isinstance(v, list) else v)
            == (sorted(w) if isinstance(w := stored.refs.get(k), list) else w)
            for k, v in record["refs"].items()) and stored.filename == record.get(
            "filename") and stored.checksum == record.get("checksum")
        if not same:
            raise Conflict(f"object {record['oid']} exists already and is not this "
                           f"{record['type']} (another product took its oid)")

    def _load_sources(self, oid: str, rows: dict[str, list[Any]]) -> None:
        """Load a source list's rows; if they were loaded already (by an earlier try: the
        load is one transaction), the count must match."""
        try:
            self.catalog.request("POST", f"/sources/{oid}", json=rows)
        except Conflict:
            spec = QuerySpec(cls="Source", where=Compare(op="eq", path=("sourcelist",),
                                                         value=oid))
            loaded = self.catalog.count_sources(spec)
            if loaded != len(rows["ra"]):
                raise Conflict(f"source list {oid} has {loaded} sources loaded, this try "
                               f"made {len(rows['ra'])}") from None

    def make_one(self, node: Node, sources: dict[str, str | list[str]], oid: str) -> str:
        """Make one product from its inputs' oids, under a chosen oid (so that a job done
        twice registers one object: the second registration is refused)."""
        recipe = RECIPES[node.cls]
        refs: dict[str, str | list[str]] = {"chip": self._named(Chip, node.chip)}
        if node.filter is not None:
            refs["filter"] = self._named(Filter, node.filter)
        refs.update(node.raws)
        wanted = {o for v in [*refs.values(), *sources.values()]
                  for o in (v if isinstance(v, list) else [v])}
        self._remember(self.catalog.get_records(sorted(wanted - set(self._records))))
        sources, inherited, left_out = self._qc(node, sources)
        refs.update(sources)
        made = recipe.make(Inputs(refs, self, node.filter), node.params)
        record: dict[str, Any] = {
            "oid": oid, "type": node.cls, "privileges": self.privileges, "refs": refs,
            "process_params": node.params, "software_version": SOFTWARE_VERSION,
            "quality_flags": made.quality_flags,
        }
        attributes = dict(made.attributes)
        attributes["inherited_flags"] = int(inherited)
        if left_out:
            record["comments"] = "QC policy: " + "; ".join(left_out)
        if issubclass(registry.get(node.cls), CalFile):
            start, end = night_window(node.night)
            record.update(timestamp_start=start, timestamp_end=end)
        if made.image is not None:
            name = product_name(node.cls, node.chip, node.night.isoformat(), oid)
            data = _fits(made.image, {"AWEOID": oid, "AWETYPE": node.cls})
            record.update(filename=name, file_size=len(data), checksum=self._store(name, data))
            self._pixels[oid] = np.asarray(made.image, dtype=np.float32)
            if made.weight is not None:
                weight_name = name.removesuffix(".fits") + ".weight.fits"
                attributes["weight_filename"] = weight_name
                attributes["weight_checksum"] = self._store(
                    weight_name, _fits(made.weight, {"AWEOID": oid, "AWETYPE": "weight"}))
        record["attributes"] = attributes
        self._registered(record)
        if made.sources is not None:
            self._load_sources(oid, made.sources)
        return oid
