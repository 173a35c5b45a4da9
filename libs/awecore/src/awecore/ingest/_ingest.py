"""Ingest: raw files in, chips stored, Raw*Frames registered; re-ingest changes nothing.

The same Ingester serves ``awe ingest`` (through the HTTP clients) and the storage service's
ingest endpoint (which hands it functions that write to and read from its own backend).

A raw file is known by its content (the sha256 of the file as it came, recorded on every
raw frame as ``raw_sha256``) and by its name (the names its chips are stored under:
instrument, night and file name). Ingest decides per file:

* the same name with the same content: nothing to do, reported as already there (an
  interrupted ingest is completed);
* the same name with other content: refused (:class:`NameTaken`, 409), naming both
  checksums; raw data is never replaced;
* the same content under a new name: refused as a duplicate (:class:`DuplicateRawFile`,
  409), naming the file it duplicates;
* an exposure without every chip of its instrument (what its header declares, and the chips
  the catalogue knows for the instrument): refused (:class:`IncompleteExposure`, 400),
  naming the missing chips.

A name already taken in storage (a Conflict from ``store``) counts as stored only once the
stored file's checksum is found equal to the chip's; otherwise the file is refused.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from ..client import CatalogClient
from ..errors import AweError, ChecksumMismatch, Conflict, NotFound
from ..model import ObjectIn, ObjectOut
from ..query import And, Compare, In, QuerySpec
from ._passbands import passband
from ._plan import Part, RawExposure, check_complete, read_exposure
from ._translate import DuplicateRawFile, NameTaken

__all__ = ["Checksum", "IngestReport", "Ingester", "Store"]

#: Writes one file to storage; raises Conflict when the name holds other bytes (it may
#: also raise Conflict for a name taken at all: the Ingester then compares checksums).
Store = Callable[[str, bytes], object]
#: The sha256 storage holds for a name, None if there is no such file.
Checksum = Callable[[str], str | None]


@dataclass
class IngestReport:
    files: int = 0
    frames: dict[str, int] = field(default_factory=dict)
    skipped: int = 0  # chips (frames) already there
    bytes: int = 0
    failed: dict[str, str] = field(default_factory=dict)  # file -> why it was refused
    oids: list[str] = field(default_factory=list)
    already_there: list[str] = field(default_factory=list)  # files wholly ingested before

    def merge(self, other: IngestReport) -> None:
        self.files += other.files
        self.skipped += other.skipped
        self.bytes += other.bytes
        self.failed.update(other.failed)
        self.oids.extend(other.oids)
        self.already_there.extend(other.already_there)
        for k, v in other.frames.items():
            self.frames[k] = self.frames.get(k, 0) + v


def _checksum_of(store: Store) -> Checksum | None:
    """For ``StorageClient.put``: its client's HEAD gives the stored checksum."""
    head = getattr(getattr(store, "__self__", None), "head", None)
    if not callable(head):
        return None

    def checksum(name: str) -> str | None:
        try:
            headers: dict[str, str] = head(name)
        except NotFound:
            return None
        return headers.get("x-checksum-sha256")

    return checksum


class Ingester:
    def __init__(self, catalog: CatalogClient, store: Store,
                 privileges: Literal[1, 2, 3, 4, 5] = 3,
                 checksum: Checksum | None = None) -> None:
        """``checksum`` tells what storage holds under a name; given ``StorageClient.put``
        as ``store``, that client's ``head`` is used. Without one, a name taken in storage
        is refused rather than assumed to hold the right file."""
        self.catalog = catalog
        self.store = store
        self.checksum = checksum or _checksum_of(store)
        self.privileges = privileges
        self._refs: dict[tuple[str, ...], str] = {}
        self._chips: dict[str, set[str]] = {}

    # -- instruments, chips, filters ----------------------------------------------------
    def _find(self, spec: QuerySpec) -> list[ObjectOut]:
        return [o.record for o in self.catalog.iter_query(spec) if o.record is not None]

    def _create(self, cls: str, attributes: dict[str, Any], refs: dict[str, str]) -> str:
        return self.catalog.create_batch([ObjectIn(
            type=cls, privileges=self.privileges, attributes=attributes, refs=refs)])[0]

    def _instrument(self, exposure: RawExposure) -> str:
        key = ("Instrument", exposure.instrument)
        if key not in self._refs:
            found = self._find(QuerySpec(cls="Instrument", where=Compare(
                op="eq", path=("name",), value=exposure.instrument)))
            self._refs[key] = found[0].oid if found else self._create(
                "Instrument", {"name": exposure.instrument,
                               **({"telescope": exposure.telescope} if exposure.telescope
                                  else {})}, {})
        return self._refs[key]

    def _known_chips(self, instrument: str) -> set[str]:
        """The chips the catalogue knows for an instrument (registered at earlier ingests)."""
        if instrument not in self._chips:
            spec = QuerySpec(cls="Chip", where=Compare(op="eq", path=("instrument", "name"),
                                                       value=instrument))
            self._chips[instrument] = {str(r.attributes["name"]) for r in self._find(spec)
                                       if r.attributes.get("name")}
        return self._chips[instrument]

    def _chip(self, exposure: RawExposure, part: Part) -> str:
        assert part.chip is not None
        key = ("Chip", exposure.instrument, part.chip)
        if key not in self._refs:
            instrument = self._instrument(exposure)
            found = self._find(QuerySpec(cls="Chip", where=And(items=(
                Compare(op="eq", path=("name",), value=part.chip),
                Compare(op="eq", path=("instrument", "name"), value=exposure.instrument)))))
            if found:
                self._refs[key] = found[0].oid
            else:
                size: dict[str, Any] = {k: part.attributes[k] for k in ("nx", "ny")
                                        if k in part.attributes}
                self._refs[key] = self._create("Chip", {"name": part.chip, **size},
                                               {"instrument": instrument})
            self._known_chips(exposure.instrument).add(part.chip)
        return self._refs[key]

    def _filter(self, name: str) -> str:
        key = ("Filter", name)
        if key not in self._refs:
            found = self._find(QuerySpec(cls="Filter", where=Compare(op="eq", path=("name",),
                                                                     value=name)))
            self._refs[key] = found[0].oid if found else self._create(
                "Filter", {"name": name, **_passband_attributes(name)}, {})
        return self._refs[key]

    # -- the rules -----------------------------------------------------------------------
    def _check_complete(self, exposure: RawExposure) -> None:
        known = (self._known_chips(exposure.instrument) if exposure.chips_from_catalogue
                 else set())
        check_complete(exposure, known)

    def _check_same(self, exposure: RawExposure, existing: dict[str, ObjectOut]) -> None:
        """Objects hold the names already: they must hold this very content."""
        for part in exposure.parts:
            record = existing.get(part.name)
            if record is None:
                continue
            stored_raw = record.attributes.get("raw_sha256")
            if stored_raw is not None:
                same, stored, new = stored_raw == exposure.sha256, stored_raw, exposure.sha256
            elif record.checksum is not None:
                same, stored, new = record.checksum == part.sha256, record.checksum, part.sha256
            else:  # registered before checksums were recorded: nothing to compare
                continue
            if not same:
                was = record.attributes.get("raw_filename") or record.filename
                raise NameTaken(
                    f"{exposure.source}: other content under an existing name: {part.name} "
                    f"is in the archive already (from {was}, sha256 {stored}); this file has "
                    f"sha256 {new}. Raw data is never replaced: give new data a name of its "
                    "own", [{"name": part.name, "stored_sha256": stored, "sha256": new}])

    def _check_not_duplicate(self, exposure: RawExposure, names: set[str]) -> None:
        """The same bytes must not be in the archive under another name."""
        if exposure.parts and exposure.parts[0].chip is None:
            spec = QuerySpec(cls="ReferenceCatalog", where=Compare(
                op="eq", path=("checksum",), value=exposure.parts[0].sha256))
        else:
            spec = QuerySpec(cls="RawFrame", where=Compare(op="eq", path=("raw_sha256",),
                                                           value=exposure.sha256))
        for o in self.catalog.iter_query(spec, limit=len(names) + 1):
            record = o.record
            if record is not None and record.filename not in names:
                was = record.attributes.get("raw_filename") or record.filename
                raise DuplicateRawFile(
                    f"{exposure.source}: a duplicate of {was}, in the archive already "
                    f"(as {record.filename}, sha256 {exposure.sha256}); the same bytes are "
                    "not ingested twice",
                    [{"name": record.filename, "sha256": exposure.sha256}])

    def _put(self, part: Part) -> None:
        """Store a chip; a name taken already counts only if it holds these very bytes."""
        try:
            result = self.store(part.name, part.data)
        except ChecksumMismatch:
            raise
        except Conflict as exc:
            stored = self.checksum(part.name) if self.checksum is not None else None
            if stored == part.sha256:
                return  # stored by an earlier, interrupted ingest
            raise NameTaken(
                f"{part.name} is in storage already with other bytes (stored sha256 "
                f"{stored or 'unknown'}; this chip's {part.sha256}): {exc.detail}",
                [{"name": part.name, "stored_sha256": stored, "sha256": part.sha256}]) from None
        sha = getattr(result, "sha256", None)
        if isinstance(sha, str) and sha != part.sha256:
            raise ChecksumMismatch.of(part.name, part.sha256, sha)

    # -- ingest ------------------------------------------------------------------------
    def ingest_exposure(self, exposure: RawExposure) -> IngestReport:
        """Store and register one file's chips, or refuse it by the rules above."""
        report = IngestReport(files=1)
        self._check_complete(exposure)
        names = {p.name for p in exposure.parts}
        spec = QuerySpec(cls="DataObject", where=In(path=("filename",), values=tuple(names)))
        existing = {r.filename: r for r in self._find(spec) if r.filename is not None}
        self._check_same(exposure, existing)
        self._check_not_duplicate(exposure, names)
        todo = [p for p in exposure.parts if p.name not in existing]
        report.skipped = len(exposure.parts) - len(todo)
        if not todo:
            report.already_there.append(exposure.source)
            return report
        objects = []
        for part in todo:
            self._put(part)
            refs: dict[str, str] = {}
            if part.chip is not None:
                refs = {"instrument": self._instrument(exposure),
                        "chip": self._chip(exposure, part)}
            if part.filter is not None:
                refs["filter"] = self._filter(part.filter)
            objects.append(ObjectIn(type=part.cls, privileges=self.privileges,
                                    filename=part.name, file_size=len(part.data),
                                    checksum=part.sha256, attributes=part.attributes,
                                    refs=refs))
            report.bytes += len(part.data)
            report.frames[part.cls] = report.frames.get(part.cls, 0) + 1
        report.oids = self.catalog.create_batch(objects)
        return report

    def ingest(self, sources: Iterable[Path],
               progress: Callable[[Path, int], None] | None = None) -> IngestReport:
        """Ingest every file; a bad or refused one is reported with its reason and the rest
        go on."""
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


def _passband_attributes(name: str) -> dict[str, float]:
    """A new filter's passband, where its name says it (``_passbands``)."""
    band = passband(name)
    return {} if band is None else {"central_wavelength": band[0], "bandwidth": band[1]}
