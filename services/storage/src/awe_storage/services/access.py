"""Who may read a stored file: the objects that own it, as the catalogue says.

Storage holds bytes, the catalogue holds who may see them: a file is the ``filename`` of a
catalogue object (or its weight map, ``weight_filename``), and the file is read by whoever
may see that object (``awecore.visibility.may_read_file``; a raw file's object is its raw
frame). Storage asks the catalogue with its own service token, which sees every object, and
decides with the caller's identity here, by the one rule.

Asking once per read would put a catalogue request in front of every byte served, so the
owners of a name are kept ``ttl`` seconds. That is safe because privileges only ever rise
(a cached owner can only be less visible than the real one, never more), and a name's owner
never changes once registered. A name nobody owns yet (a product being made) is not kept:
its object may be registered at any moment, and then others may read it at once. Admins and
service accounts (the workers read every input) never ask.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass

from awecore.client import AsyncCatalogClient
from awecore.model import ObjectOut, registry
from awecore.query import In, QuerySpec
from awecore.server import Identity
from awecore.visibility import Viewer, may_read_file

__all__ = ["FileOwners", "Owner"]

#: names asked in one catalogue query (the query's ``in`` list)
BATCH = 500


@dataclass(frozen=True)
class Owner:
    """What the visibility rule reads of an object that owns a file."""

    creator: str
    project: str
    privileges: int
    site: str


def _weight_classes() -> list[str]:
    """The classes that declare a weight map (each asked by its own field)."""
    return sorted(c.__name__ for c in registry if "weight_filename" in c.fields
                  and not c.abstract)


class FileOwners:
    def __init__(self, catalog: AsyncCatalogClient, ttl: float = 5.0,
                 max_entries: int = 100_000) -> None:
        self.catalog = catalog
        self.ttl = ttl
        self.max_entries = max_entries
        self._cache: dict[str, tuple[float, tuple[Owner, ...]]] = {}

    async def of(self, names: Sequence[str]) -> dict[str, tuple[Owner, ...]]:
        """The owners of each name (an empty tuple: no object owns it)."""
        now = time.monotonic()
        out: dict[str, tuple[Owner, ...]] = {}
        todo: list[str] = []
        for name in dict.fromkeys(names):
            hit = self._cache.get(name)
            if hit is not None and hit[0] > now:
                out[name] = hit[1]
            else:
                todo.append(name)
        if todo:
            found = await self._ask(todo)
            if len(self._cache) + len(found) > self.max_entries:
                self._cache = {k: v for k, v in self._cache.items() if v[0] > now}
                if len(self._cache) + len(found) > self.max_entries:
                    self._cache.clear()
            for name in todo:
                owners = tuple(found.get(name, ()))
                out[name] = owners
                if owners:
                    self._cache[name] = (now + self.ttl, owners)
        return out

    async def _ask(self, names: list[str]) -> dict[str, list[Owner]]:
        found: dict[str, list[Owner]] = {}
        for i in range(0, len(names), BATCH):
            chunk = tuple(names[i:i + BATCH])
            for record in await self.catalog.find(QuerySpec(
                    cls="DataObject", where=In(path=("filename",), values=chunk))):
                if record.filename is not None:
                    found.setdefault(record.filename, []).append(_owner(record))
            rest = tuple(n for n in chunk if n not in found)
            for cls in _weight_classes() if rest else []:
                for record in await self.catalog.find(QuerySpec(
                        cls=cls, where=In(path=("weight_filename",), values=rest))):
                    weight = record.attributes.get("weight_filename")
                    if isinstance(weight, str):
                        found.setdefault(weight, []).append(_owner(record))
        return found

    async def readable(self, caller: Identity, name: str, writer: str | None) -> bool:
        """Whether ``caller`` may read file ``name``, written by ``writer``."""
        if caller.sees_all:
            return True
        owners = (await self.of([name]))[name]
        return may_read_file(Viewer.of(caller), owners, writer)


def _owner(record: ObjectOut) -> Owner:
    return Owner(creator=record.creator, project=record.project,
                 privileges=record.privileges, site=record.site)
