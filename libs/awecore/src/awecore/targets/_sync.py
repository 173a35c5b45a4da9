"""The planner and the maker for a synchronous caller: a prompt, a script, a notebook.

They take the clients a scientist holds (``awe.connect()``'s catalogue client, a storage
client) and run the async core (``AsyncPlanner``, ``AsyncMaker``) on the private event loop
of ``_loop``, so they work the same in a plain Python prompt and in IPython or Jupyter,
where a loop is running already. A service never uses these: it awaits the core directly.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

from ..model import DBObject
from ..records import ObjectOut
from ._adapters import BlockingCatalog, BlockingFiles, SyncCatalog, SyncStorage
from ._loop import run
from ._make import AsyncMaker, MakerCache
from ._plan import AsyncPlanner, Node, Plan, Target
from ._rules import CalibrationRules

__all__ = ["Maker", "Planner"]


class Planner:
    """:class:`AsyncPlanner` over a synchronous catalogue client, waited for."""

    def __init__(self, catalog: SyncCatalog,
                 params: dict[str, dict[str, Any]] | None = None,
                 rules: CalibrationRules | None = None) -> None:
        self.core = AsyncPlanner(BlockingCatalog(catalog), params, rules)

    def plan(self, cls: str | type[DBObject], chip: str | None, night: dt.date | None,
             filter: str | None = None, raw: str | None = None, anew: bool = False,
             extra: dict[str, str] | None = None) -> Plan:
        return run(self.core.plan(cls, chip, night, filter, raw, anew, extra))

    def plan_many(self, targets: list[Target], anew: bool = False) -> Plan:
        return run(self.core.plan_many(targets, anew))

    def existing(self, target: Target) -> str | None:
        return run(self.core.existing(target))

    def target_of(self, record: ObjectOut) -> Target:
        return run(self.core.target_of(record))

    def check(self, target: Target) -> None:
        run(self.core.check(target))


class Maker:
    """:class:`AsyncMaker` over synchronous catalogue and storage clients, waited for."""

    def __init__(self, catalog: SyncCatalog, storage: SyncStorage, privileges: int = 3,
                 cache: MakerCache | None = None, rules: CalibrationRules | None = None,
                 project: str | None = None) -> None:
        ports = BlockingCatalog(catalog)
        self.core = AsyncMaker(ports, ports, BlockingFiles(storage), privileges, cache, rules,
                               project)

    def make(self, plan: Plan, progress: Callable[[Node], None] | None = None) -> str:
        """Make every node the plan marks, inputs first; ``progress`` is called (from the
        private loop's thread) after each."""
        return run(self.core.make(plan, progress))

    def make_one(self, node: Node, sources: dict[str, str | list[str]], oid: str) -> str:
        return run(self.core.make_one(node, sources, oid))
