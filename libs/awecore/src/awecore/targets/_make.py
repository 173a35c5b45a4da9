"""Making what a plan says: inputs' pixels from storage, the recipe, the product registered.

Every product is stored under a name derived from its oid (chosen before it is made) and
registered with its references, process parameters and software version: the lineage.
"""

from __future__ import annotations

import contextlib
import io
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

import numpy as np
from astropy.io import fits

from ..client import CatalogClient, StorageClient
from ..errors import Conflict, InvalidRequest, NotFound
from ..ids import new_oid
from ..model import CalFile, Chip, DBObject, Filter, ObjectIn, ObjectOut, registry
from ..pipelines import SOFTWARE_VERSION
from ..query import Query
from ._plan import Node, Plan, night_window
from ._recipes import RECIPES, Inputs

__all__ = ["Maker", "MakerCache"]


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

    # -- the Loader of the recipes -----------------------------------------------------
    def record(self, oid: str) -> ObjectOut:
        if oid not in self._records:
            self._records.update(self.catalog.get_records([oid]))
        if oid not in self._records:
            raise NotFound(f"input {oid} is not in the catalog (or not visible to you)")
        return self._records[oid]

    def hdus(self, name: str) -> fits.HDUList:
        return self._cache.get(name) or self._cache.put(name, self.storage.get(name))

    def pixels(self, oid: str) -> np.ndarray:
        if oid not in self._pixels:
            record = self.record(oid)
            if record.filename is None:
                raise InvalidRequest(f"{record.type} {oid} has no pixels")
            self._pixels[oid] = np.asarray(self.hdus(record.filename)[0].data,
                                           dtype=np.float32)
        return self._pixels[oid]

    # -- making ------------------------------------------------------------------------
    def _named(self, cls: type[Chip | Filter], name: str) -> str:
        key = (cls.__name__, name)
        if key not in self._cache.names:
            found: list[DBObject] = list(Query(cls, (cls.name == name).where,
                                               session=self.catalog, limit=1))
            if not found or found[0].record is None:
                raise Conflict(f"no {cls.__name__} named {name}")
            self._cache.names[key] = found[0].record.oid
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

    def make_one(self, node: Node, sources: dict[str, str | list[str]], oid: str) -> str:
        """Make one product from its inputs' oids, under a chosen oid (so that a job done
        twice registers one object: the second registration is refused)."""
        recipe = RECIPES[node.cls]
        refs: dict[str, str | list[str]] = {"chip": self._named(Chip, node.chip)}
        if node.filter is not None:
            refs["filter"] = self._named(Filter, node.filter)
        refs.update(node.raws)
        refs.update(sources)
        wanted = {o for v in refs.values() for o in (v if isinstance(v, list) else [v])}
        self._records.update(self.catalog.get_records(sorted(wanted - set(self._records))))
        made = recipe.make(Inputs(refs, self, node.filter), node.params)
        record: dict[str, Any] = {
            "oid": oid, "type": node.cls, "privileges": self.privileges, "refs": refs,
            "process_params": node.params, "software_version": SOFTWARE_VERSION,
            "quality_flags": made.quality_flags,
        }
        attributes = dict(made.attributes)
        if issubclass(registry.get(node.cls), CalFile):
            start, end = night_window(node.night)
            record.update(timestamp_start=start, timestamp_end=end)
        if made.image is not None:
            name = f"products/{node.cls}/{node.chip}/{node.night}/{oid}.fits"
            data = _fits(made.image, {"AWEOID": oid, "AWETYPE": node.cls})
            with contextlib.suppress(Conflict):  # stored by an earlier, interrupted try
                self.storage.put(name, data)
            record.update(filename=name, file_size=len(data))
            self._pixels[oid] = np.asarray(made.image, dtype=np.float32)
            if made.weight is not None:
                weight_name = name.removesuffix(".fits") + ".weight.fits"
                with contextlib.suppress(Conflict):
                    self.storage.put(weight_name, _fits(made.weight, {"AWEOID": oid}))
                attributes["weight_filename"] = weight_name
        record["attributes"] = attributes
        try:
            self.catalog.create_batch([ObjectIn.model_validate(record)])
        except Conflict:
            if made.sources is None:
                raise
        if made.sources is not None:
            with contextlib.suppress(Conflict):  # loaded by an earlier, interrupted try
                self.catalog.request("POST", f"/sources/{oid}", json=made.sources)
        return oid
