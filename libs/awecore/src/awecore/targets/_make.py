"""Making what a plan says: inputs' pixels from storage, the recipe, the product registered.

Every product is stored under a name derived from its oid (chosen before it is made) and
registered with its references, process parameters and software version: the lineage.
"""

from __future__ import annotations

import contextlib
import io
from collections.abc import Callable
from typing import Any

import numpy as np
from astropy.io import fits

from ..client import CatalogClient, StorageClient
from ..errors import Conflict
from ..ids import new_oid
from ..model import CalFile, Chip, DBObject, Filter, ObjectIn, registry
from ..pipelines import SOFTWARE_VERSION
from ..query import Query
from ._plan import Node, Plan, night_window
from ._recipes import RECIPES

__all__ = ["Maker"]


def _fits(image: np.ndarray, header: dict[str, Any]) -> bytes:
    buf = io.BytesIO()
    hdu = fits.PrimaryHDU(image)
    for key, value in header.items():
        hdu.header[key] = value
    hdu.writeto(buf)
    return buf.getvalue()


class Maker:
    def __init__(self, catalog: CatalogClient, storage: StorageClient,
                 privileges: int = 3) -> None:
        self.catalog = catalog
        self.storage = storage
        self.privileges = privileges
        self._pixels: dict[str, np.ndarray] = {}
        self._refs: dict[tuple[str, str], str] = {}

    def _pixels_of(self, oid: str) -> Any:
        if oid not in self._pixels:
            record = self.catalog.get_records([oid])[oid]
            if record.filename is None:
                value = record.attributes.get("read_noise")
                return value
            data = fits.getdata(io.BytesIO(self.storage.get(record.filename)))
            self._pixels[oid] = np.asarray(data, dtype=np.float32)
        return self._pixels[oid]

    def _named(self, cls: type[Chip | Filter], name: str) -> str:
        key = (cls.__name__, name)
        if key not in self._refs:
            found: list[DBObject] = list(Query(cls, (cls.name == name).where,
                                               session=self.catalog, limit=1))
            if not found or found[0].record is None:
                raise Conflict(f"no {cls.__name__} named {name}")
            self._refs[key] = found[0].record.oid
        return self._refs[key]

    def make(self, plan: Plan, progress: Callable[[Node], None] | None = None) -> str:
        """Make every node the plan marks, inputs first; returns the root's oid."""
        for node in plan.to_make:
            self._make_node(node, plan)
            if progress:
                progress(node)
        root = plan.nodes[plan.root]
        assert root.oid is not None
        return root.oid

    def _make_node(self, node: Node, plan: Plan) -> None:
        sources: dict[str, str] = {}
        for ref, key in node.inputs.items():
            dep = plan.nodes[key]
            assert dep.oid is not None, f"{dep.describe()} was not made"
            sources[ref] = dep.oid
        node.oid = self.make_one(node, sources, new_oid())

    def make_one(self, node: Node, sources: dict[str, str], oid: str) -> str:
        """Make one product from its inputs' oids, under a chosen oid (so that a job done
        twice registers one object: the second registration is refused)."""
        recipe = RECIPES[node.cls]
        inputs: dict[str, Any] = {}
        refs: dict[str, str | list[str]] = {"chip": self._named(Chip, node.chip)}
        if node.filter is not None:
            refs["filter"] = self._named(Filter, node.filter)
        for ref, oids in node.raws.items():
            inputs[ref] = [self._pixels_of(o) for o in oids]
            refs[ref] = oids if ref != "raw" else oids[0]
        if "raw" in inputs:
            inputs["raw"] = inputs["raw"][0]
        for ref, source in sources.items():
            inputs[ref] = self._pixels_of(source)
            refs[ref] = source
            if node.cls == "SourceList" and ref == "frame":
                inputs.update(self._frame_extras(source))
        made = recipe.make(inputs, node.params)
        record: dict[str, Any] = {
            "oid": oid, "type": node.cls, "privileges": self.privileges, "refs": refs,
            "process_params": node.params, "software_version": SOFTWARE_VERSION,
            "quality_flags": made.quality_flags,
        }
        attributes = {k: v for k, v in made.attributes.items() if k != "weight"}
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
            if "weight" in made.attributes:
                weight_name = name.removesuffix(".fits") + ".weight.fits"
                with contextlib.suppress(Conflict):
                    self.storage.put(weight_name,
                                     _fits(made.attributes["weight"], {"AWEOID": oid}))
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

    def _frame_extras(self, frame_oid: str) -> dict[str, Any]:
        """A reduced frame's weight map and its raw frame's header (the WCS)."""
        record = self.catalog.get_records([frame_oid])[frame_oid]
        weight = fits.getdata(io.BytesIO(self.storage.get(
            str(record.attributes["weight_filename"]))))
        raw_oid = str(record.refs["raw"])
        raw = self.catalog.get_records([raw_oid])[raw_oid]
        header = fits.getheader(io.BytesIO(self.storage.get(str(raw.filename))))
        return {"frame@weight": np.asarray(weight, dtype=np.float32), "frame@header": header}
