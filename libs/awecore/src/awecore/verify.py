"""Is every file the catalogue describes the one in storage?

:func:`verify_catalogue` walks the catalogue's objects that have a file (``filename`` set),
page by page through the query API, and checks each file:

* it is in storage (asked through this site's storage, which fetches what it lacks from
  its peers);
* storage re-reads and hashes it (``POST /verify/{name}``): the bytes still match what
  storage recorded when they were written;
* its size is the record's ``file_size`` and its sha256 the record's ``checksum`` (a record
  without them is reported: nothing vouches for its file);
* the ``AWEOID`` keyword of its primary FITS header is the object's oid (read with an HTTP
  Range request, never the whole file): a product's file is its own, not another's. Raw
  frames and reference catalogues come from outside and may lack the keyword; one that
  has it must still name the object.

A reduced frame's weight map (``weight_filename``) is checked the same way, against
``weight_checksum`` when the record has one.

``awe verify`` runs it from the shell.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from astropy.io import fits
from pydantic import BaseModel, Field

from .client import CatalogClient, StorageClient
from .errors import (
    AweError,
    Forbidden,
    InvalidRequest,
    NotFound,
    ServiceUnavailable,
    Unauthorized,
)
from .files import Verification
from .model import DataObject, DBObject, ObjectOut, Query, RawFrame, ReferenceCatalog, registry
from .query import And, Compare, QuerySpec

__all__ = ["BLOCK", "HEADER_READ", "Mismatch", "VerifyReport", "files_spec", "read_header",
           "verify_catalogue", "verify_object"]

#: FITS is written in blocks of 2880 bytes; a header ends with its END card.
BLOCK = 2880
#: how much of a file one Range request reads for its primary header (10 blocks)
HEADER_READ = 10 * BLOCK
#: a primary header longer than this is not looked for further
MAX_HEADER = 100 * BLOCK
PAGE = 200

#: the classes whose files come from outside, so may lack AWEOID
_FOREIGN = (RawFrame, ReferenceCatalog)


class Mismatch(BaseModel):
    """One thing wrong with one object's file."""

    oid: str
    type: str
    filename: str
    problem: str
    expected: str | None = None
    actual: str | None = None


class VerifyReport(BaseModel):
    cls: str = Field(description="the class walked (with its subclasses)")
    objects: int = Field(default=0, description="objects checked")
    files: int = Field(default=0, description="files found in storage and checked")
    bytes: int = Field(default=0, description="bytes storage re-read and hashed")
    seconds: float = 0.0
    mismatches: list[Mismatch] = Field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.mismatches

    @property
    def bytes_per_second(self) -> float:
        return self.bytes / self.seconds if self.seconds > 0 else 0.0


def _root(what: str | type[DBObject] | Query[Any]) -> tuple[type[DBObject], Query[Any]]:
    if isinstance(what, Query):
        query: Query[Any] = what
    else:
        cls = registry.get(what) if isinstance(what, str) else what
        query = Query(cls)
    root = query.root
    if not (isinstance(root, type) and issubclass(root, DataObject)):
        raise InvalidRequest(f"{getattr(root, '__name__', root)} objects have no files; "
                             f"verify DataObject or one of its subclasses: "
                             f"{', '.join(registry.subclass_names(DataObject))}")
    return root, query


def files_spec(what: str | type[DBObject] | Query[Any] = "DataObject") -> QuerySpec:
    """The query for the objects of ``what`` (a class, its name, or a DSL query on one)
    that have a file, in the catalogue's stable order (by oid)."""
    root, query = _root(what)
    has_file = Compare(op="ne", path=("filename",), value=None)
    where = has_file if query.where is None else And(items=(has_file, query.where))
    return QuerySpec(cls=root.__name__, where=where, scope=query.scope,
                     project=query.project)


def _records(catalog: CatalogClient, spec: QuerySpec,
             limit: int | None) -> Iterator[list[ObjectOut]]:
    offset, left = 0, limit
    while left is None or left > 0:
        page = catalog.query_page(spec, offset, PAGE if left is None else min(PAGE, left))
        if page.objects:
            yield page.objects
        if page.next_offset is None or not page.objects:
            return
        offset += len(page.objects)
        left = None if left is None else left - len(page.objects)


def _end_of_header(data: bytes) -> int | None:
    """Where the header in ``data`` ends (after its END card), if it does."""
    for at in range(0, len(data) - 79, 80):
        if data[at:at + 8] == b"END     ":
            return at + 80
    return None


def read_header(storage: StorageClient, name: str, size: int) -> fits.Header:
    """The primary FITS header of a stored file, read block-wise with Range requests (the
    first 10 blocks, then more while no END card came); ValueError if it is not FITS."""
    if size < BLOCK:
        raise ValueError(f"{size} bytes is shorter than one FITS block")
    data = b""
    while True:
        end = min(len(data) + HEADER_READ, size) - 1
        data += storage.get(name, len(data), end)
        if not data.startswith(b"SIMPLE  "):
            raise ValueError("not a FITS file: it does not start with SIMPLE")
        stop = _end_of_header(data)
        if stop is not None:
            return fits.Header.fromstring(data[:stop].decode("ascii"))
        if len(data) >= size or len(data) >= MAX_HEADER:
            raise ValueError(f"no END card in the first {len(data)} bytes")


class _Checker:
    def __init__(self, storage: StorageClient) -> None:
        self.storage = storage

    def _verification(self, name: str) -> Verification | None:
        try:
            return self.storage.verify(name)
        except NotFound:
            pass
        try:  # another site's file: reading its head makes storage fetch it from a peer
            self.storage.head(name)
        except NotFound:
            return None
        return self.storage.verify(name)

    def check(self, record: ObjectOut) -> tuple[list[Mismatch], int, int]:
        """What is wrong with an object's files, how many were found, their bytes."""
        assert record.filename is not None
        out: list[Mismatch] = []
        files = size = 0
        foreign = record.type in registry and issubclass(registry.get(record.type), _FOREIGN)
        attrs = record.attributes
        weight = attrs.get("weight_filename")
        checks: list[tuple[str, str, str | None, int | None, bool]] = [
            ("", record.filename, record.checksum, record.file_size, True)]
        if isinstance(weight, str) and weight:
            checks.append(("weight map: ", weight, attrs.get("weight_checksum"), None, False))
        for label, name, checksum, file_size, recorded in checks:

            def wrong(problem: str, expected: object = None, actual: object = None,
                      label: str = label, name: str = name) -> None:
                out.append(Mismatch(
                    oid=record.oid, type=record.type, filename=name, problem=label + problem,
                    expected=None if expected is None else str(expected),
                    actual=None if actual is None else str(actual)))

            try:
                v = self._verification(name)
            except InvalidRequest as exc:  # a name outside the grammar: no such file
                wrong(f"the name cannot be in storage: {exc.detail}")
                continue
            if v is None:
                wrong("the file is missing from storage", "a file", "none")
                continue
            files += 1
            size += v.size
            if not v.ok:
                wrong("the stored bytes fail storage's own checksum (corrupt)",
                      v.expected_sha256, v.actual_sha256)
            if recorded and file_size is None:
                wrong("no file size recorded", None, v.size)
            elif file_size is not None and file_size != v.size:
                wrong("the size is not the recorded file_size", file_size, v.size)
            if checksum is None:
                if recorded:
                    wrong("no checksum recorded", None, v.actual_sha256)
            elif checksum.lower() != v.actual_sha256:
                wrong("the sha256 is not the recorded checksum", checksum, v.actual_sha256)
            try:
                header = read_header(self.storage, name, v.size)
            except (ServiceUnavailable, Unauthorized, Forbidden):
                raise  # not the file's fault: the walk stops
            except (ValueError, AweError) as exc:
                wrong("no readable FITS primary header", "a FITS file", exc)
                continue
            aweoid = header.get("AWEOID")
            if aweoid is None:
                if not foreign:
                    wrong("no AWEOID in the primary header", record.oid, None)
            elif str(aweoid) != record.oid:
                wrong("AWEOID in the primary header is another object's", record.oid, aweoid)
        return out, files, size


def verify_object(record: ObjectOut, storage: StorageClient) -> list[Mismatch]:
    """What is wrong with one object's file(s); an empty list if nothing."""
    return _Checker(storage).check(record)[0]


def verify_catalogue(catalog: CatalogClient, storage: StorageClient,
                     what: str | type[DBObject] | Query[Any] = "DataObject", *,
                     limit: int | None = None, workers: int = 8,
                     progress: Callable[[ObjectOut, int], None] | None = None) -> VerifyReport:
    """Check the files of every object of ``what`` (a class, its name, or a DSL query on
    one, e.g. ``ReducedScienceFrame.chip.name == 'ccd53'``) that has a file, at most
    ``limit`` objects, ``workers`` at a time; ``progress(record, bytes)`` after each.
    Storage hashes the files server-side; only FITS headers travel."""
    spec = files_spec(what)
    if limit is not None and limit < 0:
        raise InvalidRequest(f"limit must be 0 or more; got {limit}")
    if workers < 1:
        raise InvalidRequest(f"workers must be 1 or more; got {workers}")
    report = VerifyReport(cls=spec.cls)
    checker = _Checker(storage)
    started = time.perf_counter()
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="awe-verify") as pool:
        for page in _records(catalog, spec, limit):
            for record, (wrong, files, size) in zip(page, pool.map(checker.check, page),
                                                    strict=True):
                report.objects += 1
                report.files += files
                report.bytes += size
                report.mismatches.extend(wrong)
                if progress is not None:
                    progress(record, size)
    report.seconds = time.perf_counter() - started
    return report
