"""Target processing, the make metaphor: ask for a product, get the best up-to-date one,
made on the fly (with everything beneath it that is missing or stale) when needed.

    HotPixelMap.get(date='2003-02-14', chip='ccd50')      # the best up-to-date one, or made
    HotPixelMap.exists('2003-02-14', 'ccd50')             # is there one at all?
    hot.uptodate()                                        # still the best? if not, why
    HotPixelMap.make('2003-02-14', 'ccd50')               # made anew

The planner and the maker are coroutines over three small ports (``_ports``: read the
catalogue, write to it, a file store): a service awaits ``AsyncPlanner``/``AsyncMaker`` with
the async clients (``CatalogPorts``, ``AsyncStorageClient``), a unit test with in-memory
fakes. The functions here, and ``Planner``/``Maker``, are the synchronous side for a prompt
or a script (and a notebook, where an event loop runs already): they run the same core on a
private event loop (``_loop``).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from ..client import (
    CatalogClient,
    ComputeClient,
    StorageClient,
    current,
    settings_from_env,
)
from ..dimensions import DataId
from ..errors import InvalidRequest, NotFound, QCRefused, ServiceUnavailable
from ..jobs import Ownership, TargetIn
from ..model import DBObject
from ..records import ObjectOut
from ._adapters import BlockingCatalog, CatalogPorts
from ._loop import run
from ._make import AsyncMaker, MakerCache, product_name
from ._plan import AsyncPlanner, Key, Node, Plan, Target, midnight, night_of, night_window
from ._plugins import (
    ENTRY_POINT_GROUP,
    Plugin,
    aregister_classes,
    load_plugins,
    register_classes,
    register_recipe,
)
from ._ports import Calibration, CatalogReader, CatalogWriter, FileStore
from ._recipes import RECIPES, Input, Inputs, Made, Recipe
from ._rules import CalibrationRules, Rule
from ._survey import SURVEY_RECIPES, ZEROPOINT, depth, tile_frames
from ._sync import Maker, Planner

RECIPES.update({r.cls: r for r in SURVEY_RECIPES})

__all__ = [
    "ENTRY_POINT_GROUP",
    "RECIPES",
    "ZEROPOINT",
    "AsyncMaker",
    "AsyncPlanner",
    "Calibration",
    "CalibrationRules",
    "CatalogPorts",
    "CatalogReader",
    "CatalogWriter",
    "FileStore",
    "Input",
    "Inputs",
    "Key",
    "Made",
    "Maker",
    "MakerCache",
    "Node",
    "Plan",
    "Planner",
    "Plugin",
    "Recipe",
    "Rule",
    "Target",
    "UpToDate",
    "aregister_classes",
    "depth",
    "exists",
    "get",
    "load_plugins",
    "make",
    "midnight",
    "night_of",
    "night_window",
    "plan",
    "product_name",
    "register_classes",
    "register_recipe",
    "tile_frames",
    "uptodate",
]


def _night(date: str | dt.date | dt.datetime | None) -> dt.date | None:
    if date is None:
        return None
    if isinstance(date, dt.datetime):
        return date.date()
    if isinstance(date, dt.date):
        return date
    try:
        return dt.date.fromisoformat(str(date).strip())
    except ValueError:
        raise InvalidRequest(f"bad date {date!r}: expected the night as YYYY-MM-DD, "
                             "e.g. 2003-02-14") from None


def plan(cls: str | type[DBObject], date: str | dt.date | None, chip: str | None,
         filter: str | None = None, raw: str | None = None,
         params: dict[str, Any] | None = None, catalog: CatalogClient | None = None,
         anew: bool = False, *, extra: dict[str, str] | None = None) -> Plan:
    """What getting the target would use and make, and why (a dry run). ``extra``: the
    data ID's dimensions beyond night, chip, filter and raw frame (``{"tile": ...}``)."""
    name = cls if isinstance(cls, str) else cls.__name__
    planner = Planner(catalog or current(), {name: params} if params else None)
    return planner.plan(name, chip, _night(date), filter, raw, anew, extra)


@dataclass
class UpToDate:
    """Whether an object is still up to date for its target and its own parameters (every
    input still the best, none invalidated, software current, none newer), and if not, why."""

    oid: str
    reasons: list[str]

    def __bool__(self) -> bool:
        return not self.reasons

    def __str__(self) -> str:
        return f"{self.oid} is up to date" if not self.reasons else \
            f"{self.oid} is out of date: " + "; ".join(self.reasons)


def exists(cls: str | type[DBObject], date: str | dt.date | None, chip: str | None,
           filter: str | None = None, raw: str | None = None,
           catalog: CatalogClient | None = None, *,
           extra: dict[str, str] | None = None) -> bool:
    """Whether a valid object of the target exists at all (up to date or not)."""
    name = cls if isinstance(cls, str) else cls.__name__
    planner = Planner(catalog or current())
    return planner.existing(Target(name, chip, _night(date), filter, raw,
                                   DataId(extra or {}))) is not None


def uptodate(obj: DBObject, catalog: CatalogClient | None = None) -> UpToDate:
    """Is ``obj`` still the best of its kind for its night and chip, every input (down to
    the raw data) still the best, none invalidated, software and parameters current?"""
    if obj.record is None:
        raise InvalidRequest("an object that is not stored has no target")
    record = obj.record
    own = getattr(obj, "_session", None)  # the connection the object was read through
    catalog = catalog or (own if isinstance(own, CatalogClient) else current())
    planner = AsyncPlanner(BlockingCatalog(catalog), {record.type: record.process_params or {}})
    the_plan = run(_plan_of(planner, record))
    if isinstance(the_plan, UpToDate):
        return the_plan
    root = the_plan.nodes[the_plan.root]
    if root.oid == record.oid:
        return UpToDate(record.oid, root.reasons if root.action == "make" else [])
    best = f"the best {record.type} now is {root.oid}" if root.oid else \
        f"no valid {record.type} is the best now"
    return UpToDate(record.oid, [best, *([] if root.action == "use" else root.reasons)]
                    if record.is_valid else ["it was invalidated", best])


async def _plan_of(planner: AsyncPlanner, record: ObjectOut) -> Plan | UpToDate:
    """The plan of the target an existing object answers (one trip to the private loop);
    when none can be drawn any more (a calibration it used no longer covers it, and none
    can replace it), why: what changed, and what is missing."""
    try:
        return await planner.plan_many([await planner.target_of(record)])
    except NotFound as exc:
        return UpToDate(record.oid, [*await planner.window_reasons(record),
                                     f"it cannot be made anew: {exc}"])


def make(cls: str | type[DBObject], date: str | dt.date | None, chip: str | None,
         filter: str | None = None, raw: str | None = None,
         params: dict[str, Any] | None = None, catalog: CatalogClient | None = None,
         storage: StorageClient | None = None, progress: bool = True, *,
         extra: dict[str, str] | None = None, owner: Ownership | None = None) -> DBObject:
    """Make the target anew (and, recursively, whatever beneath it is missing or stale)."""
    return get(cls, date, chip, filter, raw, params, catalog, storage, progress, anew=True,
               extra=extra, owner=owner)


def get(cls: str | type[DBObject], date: str | dt.date | None, chip: str | None,
        filter: str | None = None, raw: str | None = None,
        params: dict[str, Any] | None = None, catalog: CatalogClient | None = None,
        storage: StorageClient | None = None, progress: bool = True, anew: bool = False,
        *, extra: dict[str, str] | None = None, owner: Ownership | None = None) -> DBObject:
    """The best up-to-date target, made (recursively) if missing or stale. What is made
    belongs to the caller, in ``owner``'s project and at its privilege level (default:
    level 1, the caller alone)."""
    catalog = catalog or current()
    owner = owner or Ownership()
    env = settings_from_env()
    if env.get("AWE_COMPUTE_URL") and storage is None:
        return _get_by_compute(env, catalog, cls, date, chip, filter, raw, params, progress,
                               anew, extra, owner)
    the_plan = plan(cls, date, chip, filter, raw, params, catalog, anew, extra=extra)
    root = the_plan.nodes[the_plan.root]
    if root.action == "refuse":
        raise QCRefused(root.describe())
    if the_plan.to_make:
        if storage is None:
            if "AWE_STORAGE_URL" not in env:
                raise ServiceUnavailable("making needs storage: set AWE_STORAGE_URL")
            storage = StorageClient(env["AWE_STORAGE_URL"], env.get("AWE_TOKEN"))
        maker = Maker(catalog, storage, owner.privileges, project=owner.project)
        if progress:
            from rich.progress import Progress

            with Progress() as bar:
                task = bar.add_task("making", total=len(the_plan.to_make))
                oid = maker.make(the_plan, lambda _n: bar.advance(task))
        else:
            oid = maker.make(the_plan)
    else:
        oid = the_plan.nodes[the_plan.root].oid or ""
    return catalog.get(oid)


def _get_by_compute(env: dict[str, str], catalog: CatalogClient, cls: str | type[DBObject],
                    date: str | dt.date | None, chip: str | None, filter: str | None,
                    raw: str | None, params: dict[str, Any] | None, progress: bool,
                    anew: bool, extra: dict[str, str] | None = None,
                    owner: Ownership | None = None) -> DBObject:
    """Submit to the compute service and wait for its workers (with a progress bar)."""
    compute = ComputeClient(env["AWE_COMPUTE_URL"], env.get("AWE_TOKEN"))
    name = cls if isinstance(cls, str) else cls.__name__
    try:
        submitted = compute.submit(TargetIn(cls=name, date=_night(date), chip=chip,
                                            filter=filter, raw=raw, params=params, anew=anew,
                                            data_id=extra or None,
                                            **(owner or Ownership()).model_dump()))
        ids = [j.id for j in submitted.jobs]
        if ids and progress:
            from rich.progress import Progress

            with Progress() as bar:
                task = bar.add_task(f"making {name} ({len(ids)} jobs)", total=len(ids))
                compute.wait(ids, lambda done, _n: bar.update(task, completed=done))
        elif ids:
            compute.wait(ids)
    finally:
        compute.close()
    if submitted.target is None:
        refused = [line for line in submitted.plan if line.startswith("refuse")]
        if refused:
            raise QCRefused("; ".join(refused))
        raise ServiceUnavailable(f"compute planned no {name}")
    return catalog.get(submitted.target)
