"""Ingest: raw files in, chips stored, Raw*Frames registered; re-ingest changes nothing.

The same Ingester serves ``awe ingest`` (through the HTTP clients) and the storage service's
ingest endpoint (which hands it a function that writes to its own backend).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from ..client import CatalogClient
from ..errors import AweError, Conflict
from ..model import Chip, Filter, Instrument, ObjectIn
from ..query import In, QuerySpec
from ._plan import RawExposure, read_exposure

__all__ = ["IngestReport", "Ingester", "Store"]

#: Writes one file to storage; must raise Conflict when the name is taken.
Store = Callable[[str, bytes], object]


@dataclass
class IngestReport:
    files: int = 0
    frames: dict[str, int] = field(default_factory=dict)
    skipped: int = 0
    bytes: int = 0
    failed: dict[str, str] = field(default_factory=dict)
    oids: list[str] = field(default_factory=list)

    def merge(self, other: IngestReport) -> None:
        self.files += other.files
        self.skipped += other.skipped
        self.bytes += other.bytes
        self.failed.update(other.failed)
        self.oids.extend(other.oids)
        for k, v in other.frames.items():
            self.frames[k] = self.frames.get(k, 0) + v


class Ingester:
    def __init__(self, catalog: CatalogClient, store: Store,
                 privileges: Literal[1, 2, 3, 4, 5] = 3) -> None:
        self.catalog = catalog
        self.store = store
        self.privileges = privileges
        self._refs: dict[tuple[str, str], str] = {}

    def _ref(self, cls: type[Instrument | Chip | Filter], name: str,
             instrument: str | None = None) -> str:
        """The oid of the instrument, chip or filter of that name, made on first sight."""
        key = (cls.__name__, name)
        if key not in self._refs:
            found = (cls.name == name).limit(1)
            found._session = self.catalog
            existing = list(found)
            if existing and existing[0].record is not None:
                self._refs[key] = existing[0].record.oid
            else:
                refs = {"instrument": instrument} if cls is Chip and instrument else {}
                self._refs[key] = self.catalog.create_batch([ObjectIn(
                    type=cls.__name__, privileges=self.privileges,
                    attributes={"name": name}, refs=refs)])[0]
        return self._refs[key]

    def ingest_exposure(self, exposure: RawExposure) -> IngestReport:
        report = IngestReport(files=1)
        names = [p.name for p in exposure.parts]
        spec = QuerySpec(cls="DataObject", where=In(path=("filename",), values=tuple(names)))
        present = {o.record.filename for o in self.catalog.iter_query(spec) if o.record}
        todo = [p for p in exposure.parts if p.name not in present]
        report.skipped = len(exposure.parts) - len(todo)
        if not todo:
            return report
        objects = []
        for part in todo:
            # a Conflict: stored by an earlier, interrupted ingest under the same name
            with contextlib.suppress(Conflict):
                self.store(part.name, part.data)
            refs: dict[str, str] = {}
            if part.chip is not None:
                instrument = self._ref(Instrument, exposure.instrument)
                refs = {"instrument": instrument,
                        "chip": self._ref(Chip, part.chip, instrument)}
            if part.filter is not None:
                refs["filter"] = self._ref(Filter, part.filter)
            objects.append(ObjectIn(type=part.cls, privileges=self.privileges,
                                    filename=part.name, file_size=len(part.data),
                                    attributes=part.attributes, refs=refs))
            report.bytes += len(part.data)
            report.frames[part.cls] = report.frames.get(part.cls, 0) + 1
        report.oids = self.catalog.create_batch(objects)
        return report

    def ingest(self, sources: Iterable[Path],
               progress: Callable[[Path, int], None] | None = None) -> IngestReport:
        """Ingest every file; a bad one is reported with its reason and the rest go on."""
        total = IngestReport()
        for path in sources:
            try:
                total.merge(self.ingest_exposure(read_exposure(path, path.name)))
            except AweError as exc:
                total.failed[str(path)] = exc.detail
            if progress:
                progress(path, path.stat().st_size if path.exists() else 0)
        return total


def expand(paths: Iterable[Path]) -> list[Path]:
    """Files as given, and the *.fits files inside folders."""
    out: list[Path] = []
    for p in paths:
        if p.is_dir():
            out.extend(sorted(q for q in p.rglob("*.fits") if not q.name.startswith("truth")))
        else:
            out.append(p)
    return out
