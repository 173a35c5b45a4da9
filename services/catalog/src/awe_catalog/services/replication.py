"""The apply path of federation: changes made at other sites, kept as they were made.

Objects keep their origin oid, site, creator, creation date and clock. Curation merges field
by field, last writer wins by (hybrid logical clock, site); privileges only rise, so they
merge by maximum. Every curation also leaves its origin's history row (who, where, when,
why, old and new values) here, whether or not it wins a field. Applying is idempotent, and
a change that wins nothing records nothing in the changelog: so a change echoed back
through other sites stops, and every site ends in the same state whatever the order of
arrival. Applied changes enter this site's changelog, so a hub passes them on to its
spokes.
"""

from __future__ import annotations

from typing import Any

import asyncpg

from awecore.clock import HybridClock, hlc_wins
from awecore.errors import Forbidden
from awecore.events import CatalogEvent, ObjectCreated, ObjectCurated, hlc_time
from awecore.model import ObjectIn, ObjectOut, validate_object
from awecore.visibility import REPLICATED_FROM

from ..models import Caller, Digest, ReplicateOut
from ..storage.history import HistoryStore
from ..storage.objects import ObjectStore

__all__ = ["ReplicationService"]

_ALL = Caller(name="replication", is_service=True, default_project="")


class ReplicationService:
    def __init__(self, pool: asyncpg.Pool, clock: HybridClock, site: str) -> None:
        self.pool = pool
        self.clock = clock
        self.site = site

    async def apply(self, events: list[CatalogEvent], caller: Caller) -> ReplicateOut:
        if not caller.sees_all:
            raise Forbidden("only service accounts and admins replicate changes")
        out = ReplicateOut(applied=[], skipped=[], waiting=[])
        async with self.pool.acquire() as conn, conn.transaction():
            store = ObjectStore(conn)
            # the changelog lock before any row (see CHANGES_LOCK): a batch that inserts or
            # curates several objects never holds one while it waits for another writer
            await store.lock_changelog()
            i = 0
            while i < len(events):
                if isinstance(events[i].data, ObjectCreated):
                    j = i
                    while j < len(events) and isinstance(events[j].data, ObjectCreated):
                        j += 1
                    await self._created(store, events[i:j], out)
                    i = j
                else:
                    outcome = await self._curated(store, events[i].data)  # type: ignore[arg-type]
                    getattr(out, outcome).append(events[i].id)
                    i += 1
            if out.applied:
                await store.notify()
        return out

    async def _created(self, store: ObjectStore, events: list[CatalogEvent],
                       out: ReplicateOut) -> None:
        """A run of new objects, in bulk: those whose references are all here (or in the
        run) are inserted; the others wait."""
        fresh: dict[str, tuple[str, ObjectOut]] = {}
        missing = await store.missing([e.subject for e in events])
        for e in events:
            assert isinstance(e.data, ObjectCreated)
            o = e.data.object
            if o.site == self.site or o.oid not in missing or o.oid in fresh:
                out.skipped.append(e.id)  # our own, echoed back; or here already
                continue
            validate_object(ObjectIn.model_validate(
                o.model_dump(include=set(ObjectIn.model_fields))))
            fresh[o.oid] = (e.id, o)
        targets = {t for _, o in fresh.values() for v in o.refs.values()
                   for t in (v if isinstance(v, list) else [v])} - set(fresh)
        absent = await store.missing(list(targets)) if targets else set()
        ready: dict[str, tuple[str, ObjectOut]] = {}
        changed = True
        while changed:  # an object is ready once everything it references is
            changed = False
            for oid, (eid, o) in fresh.items():
                if oid in ready:
                    continue
                refs = {t for v in o.refs.values() for t in (v if isinstance(v, list) else [v])}
                if not refs & absent and all(r in ready or r not in fresh for r in refs):
                    ready[oid] = (eid, o)
                    changed = True
        out.waiting.extend(eid for oid, (eid, _) in fresh.items() if oid not in ready)
        objects = [o for _, o in ready.values()]
        if objects:
            await store.insert(objects, governed=True)  # their site governed them
            await store.init_clocks(objects)
            # the history a snapshot of a curated object brought, recorded and passed on
            history = {o.oid: h for e in events if isinstance(e.data, ObjectCreated)
                       and (o := e.data.object).oid in ready and (h := e.data.history)}
            await HistoryStore(store.conn).record([h for hs in history.values() for h in hs])
            await store.record_created(objects, history)
            self.clock.observe(max(o.curation_hlc for o in objects))
            out.applied.extend(eid for eid, _ in ready.values())

    async def _curated(self, store: ObjectStore, data: ObjectCurated) -> str:
        if data.site == self.site:
            return "skipped"
        found = await store.get_many([data.oid], _ALL, for_update=True)
        if not found:
            return "waiting"
        current = found[0]
        clocks = await store.clocks(data.oid)
        winners: dict[str, Any] = {}
        for name, value in data.changes.changed().items():
            if name == "privileges":
                if value is not None and value > current.privileges:
                    winners[name] = value
                continue
            hlc, site = clocks.get(name, [current.hlc, current.site])
            if hlc_wins(data.hlc, data.site, hlc, site):
                winners[name] = value
        # the origin's history row, whether or not a field wins here: every site keeps the
        # same history (an event from before history was kept has no old values: ours)
        old = data.old or {k: getattr(current, k) for k in data.changes.changed()}
        at = data.at or hlc_time(data.hlc)
        by = data.by or "unknown"
        await HistoryStore(store.conn).record(
            [data.model_copy(update={"old": old, "at": at, "by": by}).history()])
        if not winners:
            return "skipped"
        await store.curate(data.oid, winners, data.hlc, data.site, by=by, at=at,
                           reason=data.reason, old=old)
        self.clock.observe(data.hlc)
        return "applied"

    async def digest(self, caller: Caller, min_privileges: int = REPLICATED_FROM) -> Digest:
        async with self.pool.acquire() as conn:
            n, digest = await ObjectStore(conn).digest(min_privileges, caller)
        return Digest(site=self.site, objects=n, digest=digest, min_privileges=min_privileges)
