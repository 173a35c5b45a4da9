"""Creating, reading, querying and curating objects, with the rules of the object model."""

from __future__ import annotations

import datetime as dt
import functools
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

import asyncpg

from awecore.clock import HybridClock
from awecore.dimensions import CalibrationWanted
from awecore.errors import Conflict, Forbidden, InvalidObject, InvalidQuery, NotFound
from awecore.events import ObjectCurated
from awecore.ids import new_oids, parse_oid
from awecore.model import (
    CalFile,
    Chip,
    CurationUpdate,
    DBObject,
    Filter,
    ObjectIn,
    ObjectOut,
    registry,
    validate_object,
)
from awecore.query import QueryPage, QuerySpec
from awecore.records import CurationChange, TimelinePage
from awecore.visibility import Viewer, may_approve, may_curate

from ..models import Caller
from ..storage.calibrations import CalibrationStore, Wanted
from ..storage.hidden import hide_refs
from ..storage.history import HistoryStore
from ..storage.objects import ObjectStore
from ..storage.timeline import TimelineStore

__all__ = ["NotChecked", "ObjectService"]


class NotChecked(Exception):
    """A part of a batch that one-pass validation left to the exact path (see register)."""

#: what a client may send of an object (the rest of a record the catalogue fills in)
_IN_FIELDS = tuple(ObjectIn.model_fields)


def _oid(value: str) -> str:
    try:
        return str(parse_oid(value))
    except ValueError as exc:
        raise NotFound(str(exc)) from None


class ObjectService:
    def __init__(self, pool: asyncpg.Pool, clock: HybridClock, site: str,
                 lookups: asyncpg.Pool | None = None) -> None:
        self.pool = pool
        self.clock = clock
        self.site = site
        #: where best-calibration look-ups run (connections that plan them once)
        self.lookups = lookups or pool

    # -- writing -----------------------------------------------------------------------
    def prepare(self, items: Sequence[ObjectIn]) -> list[dict[str, Any]]:
        """The exact path: each object validated against its class, every problem of every
        object reported at once (by its index in the batch). What it returns is what
        ``check_batch`` returns for objects it takes: the fields of ObjectIn, clean
        attributes."""
        out: list[dict[str, Any]] = []
        problems: list[dict[str, Any]] = []
        for i, item in enumerate(items):
            try:
                _, attributes = validate_object(item)
            except InvalidObject as exc:
                problems.extend({**p, "index": i} for p in exc.errors)
                if not exc.errors:
                    problems.append({"index": i, "field": "type", "message": exc.detail})
                continue
            out.append({**{k: getattr(item, k) for k in _IN_FIELDS}, "attributes": attributes})
        if problems:
            first = problems[0]
            more = f" (and {len(problems) - 1} more problems)" if len(problems) > 1 else ""
            raise InvalidObject(
                f"object {first['index']}: {first['field']}: {first['message']}{more}", problems)
        return out

    def _records(self, checked: list[dict[str, Any]], caller: Caller) -> list[dict[str, Any]]:
        """Validated objects made records (every field of ObjectOut), in place: identity,
        project, provenance and clocks. The caller must be a member of each project."""
        now = dt.datetime.now(dt.UTC)
        fresh = iter(new_oids(sum(1 for c in checked if not c["oid"])))
        first = self.clock.now()
        if len(checked) > 1:  # a clock value apiece, none of which the clock gives again
            self.clock.observe(first + len(checked) - 1)
        site, name, default = self.site, caller.name, caller.default_project
        allowed = None if caller.sees_all else set(caller.projects)
        for hlc, record in enumerate(checked, start=first):
            project = record["project"] or default
            if allowed is not None and project not in allowed:
                raise Forbidden(f"you are not a member of project {project!r}")
            # one key at a time (no keyword dict per record): oid and project keep their
            # places, the rest follow in ObjectOut's order
            if not record["oid"]:
                record["oid"] = next(fresh)
            record["project"] = project
            record["site"] = site
            record["creation_date"] = now
            record["creator"] = name
            record["hlc"] = hlc
            record["curation_hlc"] = hlc
            record["curation_site"] = site
        return checked

    async def _check_refs(self, store: ObjectStore, records: list[dict[str, Any]],
                          caller: Caller) -> None:
        """Every reference names an object the caller may see, of the class the reference
        declares (or a subclass): each distinct (class, reference, target) is judged once,
        with one look-up of the distinct targets, after the insert (so that objects of the
        same batch are found); the objects at fault are sought only if one is."""
        named: set[tuple[str, str, str]] = set()
        for r in records:
            if r["refs"]:
                kind = r["type"]
                for name, value in r["refs"].items():
                    if type(value) is list:
                        named.update((kind, name, dst) for dst in value)
                    else:
                        named.add((kind, name, value))
        if not named:
            return
        types = await store.target_types({dst for _, _, dst in named}, caller)
        wrong: dict[tuple[str, str, str], str] = {}
        for kind, name, dst in named:
            target = registry.get(kind).ref_fields()[name].target
            found = types.get(dst)
            if found is None:
                wrong[(kind, name, dst)] = f"no visible object {dst}"
            elif not issubclass(registry.get(found), target):
                wrong[(kind, name, dst)] = f"{dst} is a {found}, not a {target.__name__}"
        if not wrong:
            return
        problems = [{"index": i, "oid": r["oid"], "field": f"refs.{name}", "message": why}
                    for i, r in enumerate(records) for name, value in r["refs"].items()
                    for dst in (value if type(value) is list else (value,))
                    if (why := wrong.get((r["type"], name, dst)))]
        p = problems[0]
        more = f" (and {len(problems) - 1} more problems)" if len(problems) > 1 else ""
        raise InvalidObject(f"object {p['oid']}: {p['field']}: {p['message']}{more}", problems)

    async def create(self, items: Sequence[ObjectIn], caller: Caller) -> list[ObjectOut]:
        """Register objects in one transaction: all of them, with their events, or none."""
        records = await self.register([self.prepare(items)], caller)
        return [ObjectOut.model_construct(**r) for r in records]

    async def register(self, parts: Iterable[list[dict[str, Any]] | None],
                       caller: Caller) -> list[dict[str, Any]]:
        """Register validated objects (``prepare``, or ``awecore.model.check_batch``) in one
        transaction: all of them, with their events, or none. Returns their records (every
        field of ObjectOut).

        The objects come in parts, which may be validated only as they are asked for: the
        database stores the rows of one part while the next is validated. A part that is
        None could not be validated in one pass: NotChecked is raised (what was sent is
        rolled back) and the caller takes the exact path. Problems found on the way stop
        the rows and are raised after the COPY, not inside it (asyncpg would abort it with
        a cancel request)."""
        records: list[dict[str, Any]] = []
        seen: set[str] = set()
        stop: list[Exception] = []

        def made() -> Iterator[dict[str, Any]]:
            for part in parts:
                if part is None:
                    stop.append(NotChecked())
                    return
                try:
                    part = self._records(part, caller)
                except Forbidden as exc:
                    stop.append(exc)
                    return
                for r in part:
                    if r["oid"] in seen:
                        stop.append(InvalidObject("the batch holds the same oid twice"))
                        return
                    seen.add(r["oid"])
                records.extend(part)
                yield from part

        async with self.pool.acquire() as conn, conn.transaction():
            store = ObjectStore(conn)
            try:
                # what the site's pipeline registers (an admin, a service account, or the
                # compute service making an admin's products) may be anybody's best calibration
                await store.insert_records(made(), governed=caller.sees_all)
            except asyncpg.UniqueViolationError as exc:
                raise _taken(exc) from None
            if stop:
                raise stop[0]
            await self._check_refs(store, records, caller)
            await store.record_created_records(records)
            await store.notify()
        return records

    async def curate(self, oid: str, update: CurationUpdate, caller: Caller) -> ObjectOut:
        changes = update.changed()
        if not changes:
            raise InvalidObject("nothing to change: give is_valid, timestamp_start, "
                                "timestamp_end, privileges or comments")
        if any(v is None for k, v in changes.items() if k != "comments"):
            raise InvalidObject("curation fields other than comments cannot be set to null")
        async with self.pool.acquire() as conn, conn.transaction():
            store = ObjectStore(conn)
            found = await store.get_many([_oid(oid)], caller, for_update=True)
            if not found:
                raise NotFound(f"no object {oid}")
            current = found[0]
            viewer = Viewer.of(caller)
            if not may_curate(viewer, current, caller.curates):
                raise Forbidden(f"only {current.owner}, a calibration scientist of project "
                                f"{current.project} or an admin may curate {oid}")
            cls = registry.get(current.type)
            if ("timestamp_start" in changes or "timestamp_end" in changes) and not issubclass(
                    cls, CalFile):
                raise InvalidObject(f"{current.type} is not a calibration: it has no validity")
            new_priv = changes.get("privileges")
            if new_priv is not None and new_priv < current.privileges:
                raise Conflict(f"privileges only ever rise: {current.privileges} -> {new_priv}")
            start = changes.get("timestamp_start", current.timestamp_start)
            end = changes.get("timestamp_end", current.timestamp_end)
            if start and end and end < start:
                raise InvalidObject("validity would end before it starts")
            old = {k: getattr(current, k) for k in changes}
            at = dt.datetime.now(dt.UTC)
            hlc = self.clock.now()
            approve = changes.get("is_valid") == 1 and may_approve(viewer, current,
                                                                  caller.curates)
            result = await store.curate(current.oid, changes, hlc, self.site, by=caller.name,
                                        at=at, reason=update.reason, old=old, approve=approve)
            await HistoryStore(conn).record([ObjectCurated(
                oid=current.oid, changes=CurationUpdate(**changes), hlc=hlc, site=self.site,
                by=caller.name, at=at, reason=update.reason, old=old).history()])
            await store.notify()
        return result

    async def history(self, oid: str, caller: Caller) -> list[CurationChange]:
        """Every curation of the object, oldest first, for whoever may see the object."""
        async with self.pool.acquire() as conn:
            found = await ObjectStore(conn).get_many([_oid(oid)], caller)
            if not found:
                raise NotFound(f"no object {oid} (or it is not visible to you)")
            return await HistoryStore(conn).of(found[0].oid)

    async def timeline(self, cls_name: str, chip: str, caller: Caller,
                       filter_name: str | None = None, start: dt.datetime | None = None,
                       end: dt.datetime | None = None, offset: int = 0,
                       limit: int = 100) -> TimelinePage:
        """The calibrations of ``cls_name`` (and its subclasses) for a chip (and filter)
        whose validity overlaps [start, end], by window start, with their latest curation."""
        cls = _calibration_class(cls_name)
        if filter_name is not None and not any(
                (ref := c.ref_fields().get("filter")) is not None and ref.target is Filter
                for c in registry if issubclass(c, cls)):
            raise InvalidQuery(f"{cls_name} does not depend on a filter")
        start, end = (_aware(start), _aware(end))
        if start is not None and end is not None and end < start:
            raise InvalidQuery(f"the span ends ({end.isoformat()}) before it starts "
                               f"({start.isoformat()})")
        async with self.pool.acquire() as conn:
            # one row more tells whether another page exists without a count
            rows = await TimelineStore(conn).page(
                caller, registry.subclass_names(cls), chip, filter_name, start, end, offset,
                limit + 1)
        more = len(rows) > limit
        return TimelinePage(entries=rows[:limit], offset=offset, limit=limit,
                            next_offset=offset + limit if more else None)

    # -- reading -----------------------------------------------------------------------
    async def counts(self, caller: Caller) -> dict[str, int]:
        """How many objects of each type the caller may see."""
        async with self.pool.acquire() as conn:
            return await ObjectStore(conn).counts(caller)

    async def get(self, oid: str, caller: Caller) -> ObjectOut:
        async with self.pool.acquire() as conn:
            found = await hide_refs(
                conn, await ObjectStore(conn).get_many([_oid(oid)], caller), caller)
        if not found:
            raise NotFound(f"no object {oid} (or it is not visible to you)")
        return found[0]

    async def get_many(self, oids: Sequence[str], caller: Caller) -> tuple[list[ObjectOut],
                                                                            list[str]]:
        clean = []
        missing = []
        for oid in oids:
            try:
                clean.append(str(parse_oid(oid)))
            except ValueError:
                missing.append(oid)
        async with self.pool.acquire() as conn:
            found = await hide_refs(
                conn, await ObjectStore(conn).get_many(clean, caller), caller) if clean else []
        have = {o.oid for o in found}
        missing.extend(o for o in clean if o not in have)
        return found, missing

    async def query(self, spec: QuerySpec, caller: Caller, offset: int, limit: int,
                    after: str | None = None) -> QueryPage:
        """One page, from ``offset`` or after the cursor ``after`` (not both); the next
        page is at ``next_offset`` and, cheaper however deep, after ``next_after``."""
        if after is not None and offset:
            raise InvalidQuery("give offset or after, not both")
        async with self.pool.acquire() as conn:
            # one row more tells whether another page exists without a count
            found = await ObjectStore(conn).query(spec, caller, offset, limit + 1, after)
            rows = await hide_refs(conn, [o for o, _ in found], caller)
        more = len(rows) > limit
        return QueryPage(objects=rows[:limit], offset=offset, limit=limit,
                         next_offset=offset + limit if more else None,
                         next_after=found[limit - 1][1] if more else None)

    async def count(self, spec: QuerySpec, caller: Caller) -> int:
        async with self.pool.acquire() as conn:
            return await ObjectStore(conn).count(spec, caller)

    async def best(self, cls_name: str, chip: str, when: dt.datetime, caller: Caller,
                   filter_name: str | None = None) -> ObjectOut:
        """The best calibration: valid, window covering ``when``, newest creation."""
        when = when if when.tzinfo else when.replace(tzinfo=dt.UTC)
        (found,) = await self.best_many([CalibrationWanted(
            cls=cls_name, chip=chip, time=when, filter=filter_name)], caller)
        if found is None:
            raise NotFound(f"no valid {cls_name} for chip {chip}"
                           + (f", filter {filter_name}" if filter_name else "")
                           + f" at {when.isoformat()}")
        return found

    async def best_many(self, wanted: Sequence[CalibrationWanted],
                        caller: Caller) -> list[ObjectOut | None]:
        """The best calibration for each request, in the order asked (None: none covers
        its time), in one statement: chips and filters may be named or given by oid."""
        return (await self.best_over(wanted, caller))[0]

    async def best_over(self, wanted: Sequence[CalibrationWanted], caller: Caller
                        ) -> tuple[list[ObjectOut | None], list[int]]:
        """:meth:`best_many` where a request may ask for a span (``until``): also the
        numbers of the requests whose best changes within their span (None for them)."""
        types: dict[str, list[str]] = {}
        filtered: dict[str, bool] = {}
        for i, w in enumerate(wanted):
            where = f"request {i}: " if len(wanted) > 1 else ""
            if w.cls not in types:
                try:
                    cls = _calibration_class(w.cls)
                except InvalidQuery as exc:
                    raise InvalidQuery(where + exc.detail) from None
                ref = cls.ref_fields().get("filter")
                filtered[w.cls] = ref is not None and ref.target is Filter
                types[w.cls] = [c for c in registry.subclass_names(cls)
                                if not registry.get(c).abstract]
            if w.filter is not None and not filtered[w.cls]:
                raise InvalidQuery(f"{where}{w.cls} does not depend on a filter")
        rows = [Wanted(i, t, _canonical(w.chip), _canonical(w.filter) if w.filter else None,
                       w.time if w.time.tzinfo else w.time.replace(tzinfo=dt.UTC),
                       _is_oid(w.chip), w.filter is not None and _is_oid(w.filter),
                       None if w.until is None else
                       w.until if w.until.tzinfo else w.until.replace(tzinfo=dt.UTC))
                for i, w in enumerate(wanted) for t in types[w.cls]]
        async with self.lookups.acquire() as conn:
            found, varies = await CalibrationStore(conn).best_over(
                rows, registry.subclass_names(Chip), registry.subclass_names(Filter), caller)
            shown = await hide_refs(conn, list(found.values()), caller)
            found = dict(zip(found, shown, strict=True))
        return [found.get(i) for i in range(len(wanted))], sorted(varies)


def _taken(exc: asyncpg.UniqueViolationError) -> Conflict:
    """A registration that takes an oid or filename in use. The answer is the same whether
    the caller may see the object that holds it or not, and says nothing of that object
    (not its type, creator or project): the caller learns only that the value they sent is
    taken, which it would also learn by trying any value that is. Oids are random UUIDs, so
    this tells nothing of objects one has not been shown."""
    if "filename" in (exc.constraint_name or ""):
        return Conflict("an object with a filename in the request exists already (a file "
                        "is the file of one object); choose another name")
    return Conflict("an object with an oid in the request exists already; leave oid out and "
                    "the catalogue chooses one")


def _calibration_class(name: str) -> type[DBObject]:
    cls = registry.get(name) if name in registry else None
    if cls is None or not issubclass(cls, CalFile):
        raise InvalidQuery(f"{name!r} is not a calibration class; calibrations are "
                           + ", ".join(c.__name__ for c in registry
                                       if issubclass(c, CalFile) and not c.abstract))
    return cls


def _aware(when: dt.datetime | None) -> dt.datetime | None:
    return when.replace(tzinfo=dt.UTC) if when is not None and when.tzinfo is None else when


@functools.lru_cache(maxsize=4096)
def _canonical(value: str) -> str:
    """An oid as the catalogue writes it (a name as it is)."""
    return str(parse_oid(value)) if _is_oid(value) else value


@functools.lru_cache(maxsize=4096)
def _is_oid(value: str) -> bool:
    """Whether a chip or filter is given by oid (remembered: a planner's request names the
    same few chips thousands of times, and a name fails parsing by exception)."""
    try:
        parse_oid(value)
    except ValueError:
        return False
    return True
