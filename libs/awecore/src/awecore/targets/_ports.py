"""What the planner and the maker need from the world, as three small interfaces.

The planner reads the catalogue; the maker reads it, writes to it and moves files. Stating
that here, instead of taking the HTTP clients, keeps target processing a piece of logic that
can be run against anything that answers these questions: the services' async clients (see
``_adapters``), a scientist's synchronous session (through the sync facade) or in-memory
fakes in a unit test. Every method is a coroutine, so a service awaits them on its own event
loop, and a batch of many questions is one call (``best`` answers many data IDs at once, so a
catalogue that can answer them in one request can be plugged in without the planner changing).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any, NamedTuple, Protocol

from ..files import FileInfo
from ..query import QuerySpec
from ..records import CurationChange, ObjectIn, ObjectOut

__all__ = ["Calibration", "CatalogReader", "CatalogValues", "CatalogWriter", "FileStore"]


class Calibration(NamedTuple):
    """A data ID that wants a calibration: which class, for which chip (and filter) at
    which time. The best is the valid one whose validity covers the time, newest first.
    (A named tuple: a plan hashes 10^5 of them.)"""

    cls: str
    chip: str
    time: dt.datetime
    filter: str | None = None
    #: the end of a span [time, until] asked for at once (``CatalogSpans``), else None
    until: dt.datetime | None = None


class CatalogReader(Protocol):
    """The catalogue as the planner and the maker read it (what the caller may see)."""

    async def get_records(self, oids: Sequence[str]) -> dict[str, ObjectOut]:
        """The records of ``oids`` by oid; missing (or invisible) ones are left out."""
        ...

    async def find(self, spec: QuerySpec, limit: int | None = None) -> list[ObjectOut]:
        """Every record the query selects, in its order (at most ``limit``)."""
        ...

    async def best(self, wanted: Sequence[Calibration]) -> list[ObjectOut | None]:
        """The best calibration for each data ID, in the order asked (None: there is none)."""
        ...

    async def history(self, oid: str) -> list[CurationChange]:
        """The curation history of an object, oldest first (who changed its window or
        verdict, when, why): what staleness reasons name. A catalogue that keeps none may
        raise an AweError; the planner then says what changed without who."""
        ...


class CatalogSpans(Protocol):
    """A catalogue that also answers for spans of time (what the planner uses when the
    reader has it: one look-up for the frames of a night instead of one per frame)."""

    async def best_over(self, wanted: Sequence[Calibration]
                        ) -> list[tuple[ObjectOut | None, bool]]:
        """For each look-up, in the order asked: the best calibration and True when it is
        the best at every moment of [time, until] (None, True: none at any moment); False
        when the best changes within the span (or the catalogue cannot tell): ask per
        moment. The catalogue decides what is best; the caller only reads the answer."""
        ...


class CatalogValues(Protocol):
    """A catalogue that also answers a query with a few fields of each object (what the
    planner uses when the reader has it: the moment, position, chip and filter of 10^4 raw
    frames, at a fraction of their whole records' weight)."""

    async def values(self, spec: QuerySpec, fields: Sequence[str]) -> list[list[Any]] | None:
        """A row per object the query selects, in its order: the ``fields`` (``oid``,
        ``type``, ``attributes.NAME``, ``refs.NAME``: null where absent) in the order
        given, with the visibility of ``find``. None when the catalogue cannot answer so
        (older): read the records."""
        ...


class CatalogWriter(Protocol):
    """What the maker writes: objects (under oids it chose) and a source list's rows."""

    async def create(self, objects: Sequence[ObjectIn]) -> list[str]:
        """Register objects in one transaction; an oid that is taken raises Conflict."""
        ...

    async def load_sources(self, oid: str, rows: dict[str, list[Any]]) -> int:
        """Load a source list's rows (columns of equal length), once: a second load raises
        Conflict. Returns how many were loaded."""
        ...

    async def count_sources(self, spec: QuerySpec) -> int:
        """How many rows of the source table a query selects."""
        ...


class FileStore(Protocol):
    """Write-once file storage."""

    async def get(self, name: str, *, sha256: str | None = None,
                  size: int | None = None) -> bytes:
        """A file's bytes, checked against ``sha256`` and ``size`` when given (what the
        catalogue recorded): other bytes raise ChecksumMismatch before they are returned."""
        ...

    async def put(self, name: str, data: bytes) -> FileInfo:
        """Store bytes under a new name; the same bytes again are a success (a retry),
        other bytes under a taken name raise Conflict."""
        ...
