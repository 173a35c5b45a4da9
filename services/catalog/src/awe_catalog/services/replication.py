"""The apply path of federation: changes made at other sites, kept as they were made.

Objects keep their origin oid, site, creator, creation date and clock. Curation merges field
by field, last writer wins by (hybrid logical clock, site); privileges only rise, so they
merge by maximum. Applying is idempotent, and a change that wins nothing records nothing:
so a change echoed back through other sites stops, and every site ends in the same state
whatever the order of arrival. Applied changes enter this site's changelog, so a hub passes
them on to its spokes.
"""

from __future__ import annotations

from typing import Any

import asyncpg

from awecore.clock import HybridClock
from awecore.errors import Forbidden
from awecore.events import CatalogEvent, ObjectCreated, ObjectCurated
from awecore.model import ObjectIn, validate_object

from ..models import Caller, Digest, ReplicateOut
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
            for event in events:
                if isinstance(event.data, ObjectCreated):
                    outcome = await self._created(store, event.data)
                else:
                    outcome = await self._curated(store, event.data)
                getattr(out, outcome).append(event.id)
            if out.applied:
                await store.notify()
        return out

    async def _created(self, store: ObjectStore, data: ObjectCreated) -> str:
        o = data.object
        if o.site == self.site or not await store.missing([o.oid]):
            return "skipped"  # our own, echoed back; or here already
        validate_object(ObjectIn.model_validate(
            o.model_dump(include=set(ObjectIn.model_fields))))
        targets = [t for v in o.refs.values() for t in (v if isinstance(v, list) else [v])]
        if targets and await store.missing(targets):
            return "waiting"
        await store.insert([o])
        await store.init_clocks(o.oid, o.curation_hlc, o.curation_site)
        await store.record_created([o])
        self.clock.observe(o.curation_hlc)
        return "applied"

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
            if (data.hlc, data.site) > (hlc, site):
                winners[name] = value
        if not winners:
            return "skipped"
        await store.curate(data.oid, winners, data.hlc, data.site)
        self.clock.observe(data.hlc)
        return "applied"

    async def digest(self, min_privileges: int = 3) -> Digest:
        async with self.pool.acquire() as conn:
            n, digest = await ObjectStore(conn).digest(min_privileges)
        return Digest(site=self.site, objects=n, digest=digest, min_privileges=min_privileges)
