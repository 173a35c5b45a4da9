"""Reading and writing objects, their references and their change events."""

from __future__ import annotations

import datetime as dt
import operator
import os
import time
import uuid
from collections.abc import Collection, Iterable, Iterator, Mapping, Sequence
from typing import Any

import asyncpg

from awecore.dimensions import parse_time
from awecore.events import ObjectCurated
from awecore.model import CURATION_FIELDS, CurationUpdate, ObjectOut, Scalar, registry
from awecore.query import QuerySpec
from awecore.records import CurationChange

from ..models import Caller
from .sql import (
    MAX_RESOLVED,
    OBJECT_COLUMNS,
    compile_count,
    compile_lookups,
    compile_select,
    row_cursor,
    sort_keys,
    visibility,
)

__all__ = ["ObjectStore"]

#: Serialises changelog writers until commit: sequences are then gapless (a rolled-back
#: writer took none) and in commit order, so a reader of ``seq > N`` never skips a change
#: that commits late, and a missing number always means a missed change.
#:
#: Lock order: this lock first, then the rows of existing objects. A writer that locked a
#: row and then waited for this lock, while the holder of this lock waited for that row
#: (a replicated batch curates several objects in one transaction), would deadlock, and
#: PostgreSQL would fail one of them: a curation made by a user, lost. So rows are locked
#: for curation only under this lock (``get_many(for_update=True)`` takes it first).
CHANGES_LOCK = 7_031_002

_INSERT_COLUMNS = (
    "oid", "type", "site", "creation_date", "creator", "project", "privileges", "is_valid",
    "quality_flags", "timestamp_start", "timestamp_end", "filename", "file_size", "checksum",
    "process_params", "software_version", "comments", "attributes", "refs", "hlc",
    "curation_hlc", "curation_site", "governed", "obs_time",
)


#: a record's fields in the order of _INSERT_COLUMNS, but for the two the store adds
_row = operator.itemgetter(*_INSERT_COLUMNS[:-2])


def event_ids(n: int) -> list[str]:
    """``n`` event ids as text, time-ordered (UUIDv7: the millisecond, 12 random bits, then
    62 bits that start at a random value and count up), from one read of the system's
    randomness.

    Why not random (version 4) ids: ``changes.event_id`` is UNIQUE, and each random id
    lands on its own leaf of that index. Once the changelog outgrows the buffer cache
    (some 10^6 events), a batch's 5 000 events touched 5 000 leaves read from disk and
    written back whole after each checkpoint: on a changelog of 2 * 10^6 events the COPY
    of 5 000 took 40-250 ms with random ids, 15-30 ms with these, which fill the
    rightmost leaves as sequences do. Ids stay unique across sites and batches as UUIDv7
    ids are (73 random bits a batch and millisecond). Why not ``awecore.ids.new_oids``: it
    takes a millisecond of its own per id, and events are as many as objects."""
    if n <= 0:
        return []
    stamp = (time.time_ns() // 1_000_000) & 0xFFFFFFFFFFFF
    rand = int.from_bytes(os.urandom(10), "big")
    # the batch's millisecond and rand_a, then the variant and a rand_b counted up from a
    # random start whose top bit is clear (so that counting never carries into the variant)
    head = f"{stamp << 16 | 0x7000 | rand >> 68:016x}"
    prefix = f"{head[:8]}-{head[8:12]}-{head[12:]}-"
    start = 0b10 << 62 | (rand & ((1 << 61) - 1))
    out = []
    for value in range(start, start + n):
        h = f"{value:016x}"
        out.append(f"{prefix}{h[:4]}-{h[4:]}")
    return out


def _observed(cls_name: str, attributes: Mapping[str, Any]) -> dt.datetime | None:
    """The observation time column (0013): ``date_obs`` of a class that declares it as a
    datetime, a naive one being UTC (as a query's values are); None for any other."""
    value = attributes.get("date_obs")
    if value is None or not _has_obs_time(cls_name):
        return None
    return parse_time(value)


def _has_obs_time(cls_name: str) -> bool:
    field = registry.get(cls_name).fields.get("date_obs") if cls_name in registry else None
    return isinstance(field, Scalar) and field.type_name == "datetime"


def _curation_column(name: str) -> str:
    if name not in CURATION_FIELDS:
        raise ValueError(f"{name} is not a curation field")
    return name


def row_to_object(row: asyncpg.Record) -> ObjectOut:
    return ObjectOut.model_validate(dict(row))


class ObjectStore:
    def __init__(self, conn: asyncpg.Connection) -> None:
        self.conn = conn

    async def insert(self, objects: Sequence[ObjectOut], governed: bool = False) -> None:
        """COPY the objects and their reference rows (see insert_records)."""
        await self.insert_records([vars(o) for o in objects], governed)

    async def insert_records(self, records: Iterable[Mapping[str, Any]],
                             governed: bool = False) -> None:
        """COPY objects, given as records (every field of ObjectOut by name), and their
        reference rows. ``governed``: calibrations among them may be the best of anybody
        (the site's pipeline made them, or a peer site sent them), not only of their
        creator (0012). Oids go as text (the uuid codec parses them in C). The rows are
        made as COPY sends them (``records`` may be made as they are asked for too): the
        database stores the first ones meanwhile."""
        refs: list[tuple[str, str, int, str]] = []

        def rows() -> Iterator[tuple[Any, ...]]:
            for r in records:
                oid, attributes = r["oid"], r["attributes"]
                for name, value in r["refs"].items():
                    if type(value) is list:
                        refs.extend((oid, name, pos, t) for pos, t in enumerate(value))
                    else:
                        refs.append((oid, name, 0, value))
                yield (*_row(r), governed, _observed(r["type"], attributes))

        await self.conn.copy_records_to_table("objects", records=rows(),
                                              columns=_INSERT_COLUMNS)
        if refs:
            await self.conn.copy_records_to_table(
                "object_refs", records=refs, columns=("src", "name", "pos", "dst"))

    async def record_created(self, objects: Sequence[ObjectOut],
                             history: Mapping[str, Sequence[CurationChange]] | None = None,
                             ) -> None:
        """One 'created' event per object (see record_created_records)."""
        await self.record_created_records([vars(o) for o in objects], history)

    async def record_created_records(
            self, records: Sequence[Mapping[str, Any]],
            history: Mapping[str, Sequence[CurationChange]] | None = None) -> None:
        """One 'created' event per object, its record the event's ``object``; call last:
        the changelog lock is held to commit.

        The record's own field values go in: the jsonb codec (orjson) writes datetimes as
        ISO 8601, so no pydantic dump is needed on this bulk path (readers validate the
        payload as ObjectCreated). ``history``: the curation history a replicated object
        brought, by oid, passed on with it (a hub's spokes get it too)."""
        first = await self.lock_changelog()
        now = dt.datetime.now(dt.UTC)
        history = history or {}
        ids = event_ids(len(records))
        events = (  # made as COPY sends them
            (first + i, ids[i], r["oid"], "created", now,
             {"kind": "created", "object": r} if not history.get(r["oid"]) else
             {"kind": "created", "object": r,
              "history": [h.model_dump(mode="json") for h in history[r["oid"]]]})
            for i, r in enumerate(records)
        )
        await self.conn.copy_records_to_table(
            "changes", records=events,
            columns=("seq", "event_id", "oid", "kind", "time", "payload"))

    async def lock_changelog(self) -> int:
        """Take the changelog lock (held to commit); returns the next free sequence."""
        await self.conn.execute("SELECT pg_advisory_xact_lock($1)", CHANGES_LOCK)
        last = await self.conn.fetchval("SELECT coalesce(max(seq), 0) FROM changes")
        return int(last) + 1

    async def target_types(self, oids: Collection[str], caller: Caller) -> dict[str, str | None]:
        """The type of each object the caller may see among ``oids`` (None for the others):
        what references name is checked once per target, however many name it."""
        vis, params = visibility(caller, "t", 2)
        rows = await self.conn.fetch(
            f"SELECT d.oid::text, t.type FROM unnest($1::uuid[]) AS d(oid) "
            f"LEFT JOIN objects t ON t.oid = d.oid AND {vis}",
            list(oids), *params)
        return {r[0]: r[1] for r in rows}

    async def counts(self, caller: Caller) -> dict[str, int]:
        """Objects by type, of those the caller may see."""
        vis, params = visibility(caller, "o", 1)
        rows = await self.conn.fetch(
            f"SELECT type, count(*) AS n FROM objects o WHERE {vis} GROUP BY type", *params)
        return {str(r["type"]): int(r["n"]) for r in rows}

    async def digest(self, min_privileges: int, caller: Caller) -> tuple[int, str]:
        """A hash over the shared objects and their curation state, for comparing sites:
        of those the caller may see (a count of what one may not see would tell it exists;
        the sites' service accounts see everything)."""
        vis, params = visibility(caller, "o", 2)
        row = await self.conn.fetchrow(
            "SELECT count(*) AS n, md5(coalesce(string_agg(concat_ws('|', oid, type, site, "
            "  is_valid, privileges, extract(epoch FROM timestamp_start), "
            "  extract(epoch FROM timestamp_end), comments), ',' ORDER BY oid), '')) AS digest "
            f"FROM objects o WHERE privileges >= $1 AND {vis}",
            min_privileges, *params)
        return int(row["n"]), str(row["digest"])

    async def get_many(self, oids: Sequence[str], caller: Caller,
                       for_update: bool = False) -> list[ObjectOut]:
        """The visible ones of these objects; ``for_update`` locks them for a curation
        (after the changelog lock, see CHANGES_LOCK; a curation never changes a key, so the
        row lock lets rows that reference the object be written meanwhile)."""
        vis, params = visibility(caller, "o", 2)
        lock = ""
        if for_update:
            await self.lock_changelog()
            lock = " FOR NO KEY UPDATE"
        rows = await self.conn.fetch(
            f"SELECT {OBJECT_COLUMNS} FROM objects o WHERE o.oid = ANY($1::uuid[]) AND {vis}{lock}",
            [uuid.UUID(o) for o in oids], *params,
        )
        return [row_to_object(r) for r in rows]

    async def query(self, spec: QuerySpec, caller: Caller, offset: int,
                    limit: int, after: str | None = None) -> list[tuple[ObjectOut, str]]:
        """A page of the query's objects, each with its cursor (the position to ask for
        the rows after it: keyset pagination, which costs the same on page 1 and 10^5)."""
        resolved: list[list[uuid.UUID] | None] = []
        for lookup in compile_lookups(spec, caller):
            found = [r[0] for r in await self.conn.fetch(lookup.sql, *lookup.params)]
            resolved.append(found if len(found) <= MAX_RESOLVED else None)
        q = compile_select(spec, caller, offset, limit, after, resolved=resolved or None)
        keys = sort_keys(spec)
        out = []
        for r in await self.conn.fetch(q.sql, *q.params):
            row = dict(r)
            cursor = row_cursor(row, keys)
            for i in range(keys):
                del row[f"_k{i}"]
            out.append((ObjectOut.model_validate(row), cursor))
        return out

    async def count(self, spec: QuerySpec, caller: Caller) -> int:
        q = compile_count(spec, caller)
        value = await self.conn.fetchval(q.sql, *q.params)
        return int(value)

    async def init_clocks(self, objects: Sequence[ObjectOut]) -> None:
        """A replicated object's curation is as recent as its curation clock, field by field."""
        await self.conn.executemany(
            "UPDATE objects SET curation_clock = $2::jsonb WHERE oid = $1",
            [(uuid.UUID(o.oid), {name: [o.curation_hlc, o.curation_site]
                                 for name in sorted(CURATION_FIELDS)}) for o in objects])

    async def missing(self, oids: Sequence[str]) -> set[str]:
        found = await self.conn.fetch("SELECT oid::text FROM objects WHERE oid = ANY($1::uuid[])",
                                      [uuid.UUID(o) for o in oids])
        return set(oids) - {r[0] for r in found}

    async def clocks(self, oid: str) -> dict[str, Any]:
        """The per-field curation clocks of a (locked) object."""
        value = await self.conn.fetchval(
            "SELECT curation_clock FROM objects WHERE oid = $1", uuid.UUID(oid))
        return dict(value or {})

    async def curate(self, oid: str, changes: dict[str, Any], hlc: int, site: str, *,
                     by: str, at: dt.datetime, reason: str | None,
                     old: dict[str, Any], approve: bool = False) -> ObjectOut:
        """Apply curation fields and record the 'curated' event (caller holds the row lock).

        Each field remembers the clock of the change that set it; the row's curation_hlc is
        the newest of them. The event says who curated where, when and why, and the values
        before, so that every site records the same history row (the caller records it
        here: ``HistoryStore``)."""
        sets = [f"{_curation_column(name)} = ${i}" for i, name in enumerate(changes, start=5)]
        if approve:  # a calibration scientist's approval: its calibration may be anybody's best
            sets.append("governed = true")
        stamp = {name: [hlc, site] for name in changes}
        row = await self.conn.fetchrow(
            f"UPDATE objects o SET {', '.join(sets)}, "
            f"curation_clock = curation_clock || $4::jsonb, "
            f"curation_site = CASE WHEN (curation_hlc, curation_site) < ($2, $3) THEN $3 "
            f"  ELSE curation_site END, curation_hlc = GREATEST(curation_hlc, $2) "
            f"WHERE oid = $1 RETURNING {OBJECT_COLUMNS}",
            uuid.UUID(oid), hlc, site, stamp, *changes.values(),
        )
        event = ObjectCurated(oid=oid, changes=CurationUpdate(**changes), hlc=hlc, site=site,
                              by=by, at=at, reason=reason,
                              old={k: old.get(k) for k in changes})
        seq = await self.lock_changelog()
        await self.conn.execute(
            "INSERT INTO changes (seq, event_id, oid, kind, time, payload) "
            "VALUES ($1, $2, $3, 'curated', $4, $5)",
            seq, event_ids(1)[0], uuid.UUID(oid), dt.datetime.now(dt.UTC),
            event.model_dump(mode="json"),
        )
        return row_to_object(row)

    async def notify(self) -> None:
        """Wake the outbox relay once the transaction commits."""
        await self.conn.execute("SELECT pg_notify('awe_changes', '')")
