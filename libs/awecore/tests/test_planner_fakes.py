"""The planner and the maker against in-memory fakes of their three ports (read the
catalogue, write to it, a file store): plans, makes, staleness, checksums and the QC policy,
with tiny frames and no service, database or broker."""

from __future__ import annotations

import datetime as dt
import fnmatch
import hashlib
import io
import operator
import threading
from collections.abc import Callable, Sequence
from typing import Any

import httpx
import numpy as np
import pytest
from astropy.io import fits
from pydantic import ValidationError

from awecore import targets
from awecore.client import AsyncStorageClient
from awecore.dimensions import DIMENSIONS, DataId, parse_data_id, target_values
from awecore.errors import (
    CalibrationChanged,
    ChecksumMismatch,
    Conflict,
    InvalidRequest,
    NotFound,
    QCRefused,
)
from awecore.files import FileInfo
from awecore.ids import new_oid
from awecore.jobs import TargetRef
from awecore.model import DBObject, registry
from awecore.pipelines import QC, SOFTWARE_VERSION
from awecore.query import (
    And,
    Between,
    Compare,
    Expr,
    In,
    Like,
    Not,
    Or,
    QueryPage,
    QuerySpec,
)
from awecore.records import CurationChange, FieldChange, ObjectIn, ObjectOut
from awecore.targets import (
    RECIPES,
    AsyncMaker,
    AsyncPlanner,
    Calibration,
    CalibrationRules,
    CatalogPorts,
    Input,
    Made,
    Node,
    Plan,
    Recipe,
    Target,
    night_window,
    product_name,
)
from awecore.targets._loop import run
from awecore.targets._plan import calibrates, key_of

NIGHT = dt.date(2006, 6, 6)
SHAPE = (32, 32)
CHIP, FILTER = "ccd50", "841"
_OPS: dict[str, Callable[[Any, Any], bool]] = {
    "eq": operator.eq, "ne": operator.ne, "lt": operator.lt, "le": operator.le,
    "gt": operator.gt, "ge": operator.ge}
_FIELDS = set(ObjectOut.model_fields) - {"attributes", "refs"}


def _norm(value: Any) -> Any:
    """Values as the catalogue compares them: ISO times as times, in UTC if no zone."""
    if isinstance(value, str):
        try:
            value = dt.datetime.fromisoformat(value)
        except ValueError:
            return value
    if isinstance(value, dt.datetime) and value.tzinfo is None:
        return value.replace(tzinfo=dt.UTC)
    return value


class FakeCatalog:
    """An in-memory catalogue: a CatalogReader and a CatalogWriter. It evaluates the part
    of the query language the planner and the maker use (paths over fields, attributes and
    references, followed through referenced objects)."""

    def __init__(self) -> None:
        self.objects: dict[str, ObjectOut] = {}
        self.sources: dict[str, dict[str, list[Any]]] = {}
        self.histories: dict[str, list[CurationChange]] = {}
        self.calls: dict[str, int] = {}  # requests by port method
        self._clock = dt.datetime(2006, 6, 7, tzinfo=dt.UTC)

    # -- test set-up -------------------------------------------------------------------
    def _now(self) -> dt.datetime:
        self._clock += dt.timedelta(seconds=1)  # every object newer than the one before
        return self._clock

    def _stored(self, obj: ObjectIn) -> ObjectOut:
        return ObjectOut.model_validate({
            **obj.model_dump(), "oid": obj.oid or new_oid(), "project": "test",
            "site": "test", "creation_date": self._now(), "creator": "tester", "hlc": 0,
            "curation_hlc": 0, "curation_site": "test"})

    def add(self, type: str, refs: dict[str, Any] | None = None,
            attributes: dict[str, Any] | None = None, **fields: Any) -> str:
        record = self._stored(ObjectIn(type=type, privileges=3, refs=refs or {},
                                       attributes=attributes or {}, **fields))
        self.objects[record.oid] = record
        return record.oid

    def curate(self, oid: str, by: str = "tester", reason: str | None = None,
               **changes: Any) -> None:
        """Change curation fields (or, for a test's set-up, any field); the curation
        fields' changes are kept as the catalogue's history keeps them."""
        old = self.objects[oid]
        self.objects[oid] = old.model_copy(update=changes)
        kept = {k: FieldChange(old=getattr(old, k), new=v) for k, v in changes.items()
                if k in {"is_valid", "timestamp_start", "timestamp_end"}}
        if kept:
            self.histories.setdefault(oid, []).append(CurationChange(
                oid=oid, at=self._now(), by=by, site="test", reason=reason, changes=kept))

    def of_type(self, type: str) -> list[ObjectOut]:
        return [o for o in self.objects.values() if o.type == type]

    # -- evaluating queries ------------------------------------------------------------
    def _values(self, record: ObjectOut, path: tuple[str, ...]) -> list[Any]:
        head, rest = path[0], path[1:]
        if head in record.refs:
            ref = record.refs[head]
            oids = ref if isinstance(ref, list) else [ref]
            if not rest:
                return list(oids)
            return [v for o in oids if o in self.objects
                    for v in self._values(self.objects[o], rest)]
        if rest:
            return []
        if head in _FIELDS:
            return [getattr(record, head)]
        return [record.attributes[head]] if head in record.attributes else []

    def _match(self, record: ObjectOut, expr: Expr) -> bool:
        if isinstance(expr, And):
            return all(self._match(record, e) for e in expr.items)
        if isinstance(expr, Or):
            return any(self._match(record, e) for e in expr.items)
        if isinstance(expr, Not):
            return not self._match(record, expr.item)
        values = [_norm(v) for v in self._values(record, expr.path)]
        if isinstance(expr, Compare):
            return any(v is not None and _OPS[expr.op](v, _norm(expr.value)) for v in values)
        if isinstance(expr, Between):
            return any(_norm(expr.low) <= v <= _norm(expr.high) for v in values)
        if isinstance(expr, In):
            return any(v in {_norm(w) for w in expr.values} for v in values)
        assert isinstance(expr, Like)
        return any(fnmatch.fnmatchcase(str(v), expr.pattern) for v in values)

    def select(self, spec: QuerySpec, limit: int | None = None) -> list[ObjectOut]:
        classes = set(registry.subclass_names(registry.get(spec.cls)))
        found = [o for o in self.objects.values() if o.type in classes
                 and (spec.where is None or self._match(o, spec.where))]
        for order in reversed(spec.order_by):  # stable sorts: the first order wins
            def key(o: ObjectOut, path: tuple[str, ...] = order.path) -> list[Any]:
                return [_norm(v) for v in self._values(o, path)]

            found.sort(key=key, reverse=order.descending)
        return found[:limit]

    def best_one(self, c: Calibration) -> ObjectOut | None:
        when = _norm(c.time)
        found = [o for o in self.objects.values()
                 if o.type == c.cls and o.is_valid == 1
                 and c.chip in self._values(o, ("chip", "name"))
                 and (c.filter is None or c.filter in self._values(o, ("filter", "name")))
                 and o.timestamp_start is not None and o.timestamp_end is not None
                 and o.timestamp_start <= when <= o.timestamp_end]
        return max(found, key=lambda o: o.creation_date, default=None)

    # -- CatalogReader -----------------------------------------------------------------
    def _call(self, name: str) -> None:
        self.calls[name] = self.calls.get(name, 0) + 1

    async def get_records(self, oids: Sequence[str]) -> dict[str, ObjectOut]:
        self._call("get_records")
        return {o: self.objects[o] for o in oids if o in self.objects}

    async def find(self, spec: QuerySpec, limit: int | None = None) -> list[ObjectOut]:
        self._call("find")
        return self.select(spec, limit)

    async def best(self, wanted: Sequence[Calibration]) -> list[ObjectOut | None]:
        self._call("best")
        return [self.best_one(c) for c in wanted]

    async def history(self, oid: str) -> list[CurationChange]:
        self._call("history")
        return list(self.histories.get(oid, []))

    # -- CatalogWriter -----------------------------------------------------------------
    async def create(self, objects: Sequence[ObjectIn]) -> list[str]:
        taken = [o.oid for o in objects if o.oid in self.objects]
        if taken:
            raise Conflict(f"object {taken[0]} exists")
        stored = [self._stored(o) for o in objects]
        self.objects.update((s.oid, s) for s in stored)
        return [s.oid for s in stored]

    async def load_sources(self, oid: str, rows: dict[str, list[Any]]) -> int:
        if oid in self.sources:
            raise Conflict(f"the sources of {oid} are loaded already")
        self.sources[oid] = rows
        return len(rows["ra"])

    async def count_sources(self, spec: QuerySpec) -> int:
        assert isinstance(spec.where, Compare) and spec.where.path == ("sourcelist",)
        return len(self.sources.get(str(spec.where.value), {}).get("ra", []))


class SyncCatalog:
    """The fake as a scientist's synchronous catalogue client (what the sync facade and
    ``targets.plan(catalog=...)`` take)."""

    def __init__(self, fake: FakeCatalog) -> None:
        self.fake = fake
        self.threads: set[str] = set()

    def get_records(self, oids: Sequence[str]) -> dict[str, ObjectOut]:
        return {o: self.fake.objects[o] for o in oids if o in self.fake.objects}

    def query_page(self, spec: QuerySpec, offset: int, limit: int) -> QueryPage:
        self.threads.add(threading.current_thread().name)  # where the client is called
        found = self.fake.select(spec)
        more = len(found) > offset + limit
        return QueryPage(objects=found[offset:offset + limit], offset=offset, limit=limit,
                         next_offset=offset + limit if more else None)

    def request(self, method: str, path: str, **kwargs: Any) -> Any:
        self.threads.add(threading.current_thread().name)
        return answer(self.fake, method, path, **kwargs)

    def count_sources(self, spec: QuerySpec) -> int:
        raise AssertionError("not used by planning")


def answer(fake: FakeCatalog, method: str, path: str, **kwargs: Any) -> Any:
    """The catalogue's HTTP answers the adapters ask for: best calibrations (many in one
    POST, or one by GET) and an object's curation history."""
    if (method, path) == ("POST", "/calibrations/best"):
        found = [fake.best_one(Calibration(r["cls"], r["chip"],
                                           dt.datetime.fromisoformat(r["time"]),
                                           r.get("filter")))
                 for r in kwargs["json"]["requests"]]
        return {"objects": [None if o is None else o.model_dump(mode="json") for o in found]}
    if method == "GET" and path.startswith("/calibrations/"):
        p = kwargs["params"]
        best = fake.best_one(Calibration(path.split("/")[2], p["chip"],
                                         dt.datetime.fromisoformat(p["time"]),
                                         p.get("filter")))
        if best is None:
            raise NotFound("no calibration")
        return best.model_dump(mode="json")
    if method == "GET" and path.endswith("/history"):
        return [c.model_dump(mode="json") for c in fake.histories.get(path.split("/")[2], [])]
    if (method, path) == ("POST", "/query/values"):  # (the async fake has no values: the
        body = kwargs["json"]                         # planner reads records from it)
        found = fake.select(QuerySpec.model_validate(body["query"]))
        start, end = body["offset"], body["offset"] + body["limit"]
        return {"rows": [[_field(o, f) for f in body["fields"]] for o in found[start:end]],
                "next_offset": end if len(found) > end else None}
    raise AssertionError(f"{method} {path} is not asked by planning")


def _field(record: ObjectOut, name: str) -> Any:
    """A field of a ``POST /query/values`` row, as the catalogue gives it (JSON)."""
    head, _, key = name.partition(".")
    if head == "attributes":
        return record.attributes.get(key)
    if head == "refs":
        return record.refs.get(key)
    return record.model_dump(mode="json")[head]


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


class FakeFiles:
    """A write-once file store in a dict, checking what it hands out like storage does."""

    def __init__(self) -> None:
        self.files: dict[str, bytes] = {}
        self.reads: list[str] = []

    async def get(self, name: str, *, sha256: str | None = None,
                  size: int | None = None) -> bytes:
        if name not in self.files:
            raise NotFound(f"no file {name}")
        data = self.files[name]
        self.reads.append(name)
        if size is not None and len(data) != size:
            raise ChecksumMismatch.of(name, str(size), str(len(data)), "size")
        if sha256 is not None and _sha256(data) != sha256:
            raise ChecksumMismatch.of(name, sha256, _sha256(data))
        return data

    async def put(self, name: str, data: bytes) -> FileInfo:
        if name in self.files and self.files[name] != data:
            raise Conflict(f"{name} holds other bytes")
        self.files[name] = data
        return FileInfo(name=name, size=len(data), sha256=_sha256(data), owner="tester",
                        created=dt.datetime.now(dt.UTC), site="test")


class Night:
    """One night of tiny raw frames for one chip, registered and stored."""

    def __init__(self) -> None:
        self.catalog, self.files = FakeCatalog(), FakeFiles()
        self.rng = np.random.default_rng(7)
        self.chip = self.catalog.add("Chip", attributes={"name": CHIP})
        self.filter = self.catalog.add("Filter", attributes={"name": FILTER})
        self.refcat = self.catalog.add("ReferenceCatalog", attributes={
            "name": "FAKE-REF", "ra_min": 0.0, "ra_max": 360.0, "dec_min": -90.0,
            "dec_max": 90.0})
        self.bias = [self.raw("RawBiasFrame", 0.0) for _ in range(3)]
        self.dome = [self.raw("RawDomeFlatFrame", 20000.0) for _ in range(2)]
        self.twilight = [self.raw("RawTwilightFlatFrame", 8000.0) for _ in range(2)]
        self.science = self.raw("RawScienceFrame", 500.0)
        self.standards = [self.raw("RawStandardFrame", 700.0) for _ in range(2)]
        self.n = 0

    def raw(self, cls: str, level: float, night: dt.date = NIGHT) -> str:
        image = (300.0 + level + self.rng.normal(0, 5, SHAPE)).astype(np.float32)
        buf = io.BytesIO()
        fits.PrimaryHDU(image).writeto(buf)
        data = buf.getvalue()
        name = f"raw/{cls}/{len(self.files.files)}.fits"
        self.files.files[name] = data
        refs = {"chip": self.chip} | ({} if cls == "RawBiasFrame" else {"filter": self.filter})
        start = night_window(night)[0]
        when = start + dt.timedelta(hours=6, minutes=len(self.files.files))
        return self.catalog.add(cls, refs, {"date_obs": when.isoformat(), "exptime": 10.0,
                                            "ra": 150.0, "dec": -30.0},
                                filename=name, file_size=len(data), checksum=_sha256(data))

    def calibrations(self, night: dt.date) -> None:
        """Raw biases and flats on another night too."""
        self.bias += [self.raw("RawBiasFrame", 0.0, night) for _ in range(3)]
        self.dome += [self.raw("RawDomeFlatFrame", 20000.0, night) for _ in range(2)]
        self.twilight += [self.raw("RawTwilightFlatFrame", 8000.0, night) for _ in range(2)]

    def planner(self, params: dict[str, dict[str, Any]] | None = None,
                rules: CalibrationRules | None = None) -> AsyncPlanner:
        return AsyncPlanner(self.catalog, params, rules or CalibrationRules())

    def maker(self, rules: CalibrationRules | None = None) -> AsyncMaker:
        return AsyncMaker(self.catalog, self.catalog, self.files,
                          rules=rules or CalibrationRules())

    async def reduced(self, raw: str, night: dt.date = NIGHT,
                      rules: CalibrationRules | None = None) -> Plan:
        return await self.planner(rules=rules).plan("ReducedScienceFrame", CHIP, night,
                                                    FILTER, raw)


def inputs_first(plan: Plan) -> bool:
    seen: set[Any] = set()
    for key, node in plan.nodes.items():
        if not set(node.input_keys()) <= seen:
            return False
        seen.add(key)
    return True


async def test_plan_of_a_reduced_frame_makes_the_chain_inputs_first() -> None:
    night = Night()
    plan = await night.reduced(night.science)
    assert {n.cls for n in plan.to_make} == {
        "ReadNoise", "BiasFrame", "HotPixelMap", "DomeFlatFrame", "ColdPixelMap",
        "TwilightFlatFrame", "MasterFlatFrame", "ReducedScienceFrame"}
    assert len(plan.nodes) == 8 and inputs_first(plan)  # shared nodes planned once
    assert all(n.reasons == [f"no valid {n.cls} exists"] for n in plan.to_make)
    root = plan.nodes[plan.root]
    assert root.cls == "ReducedScienceFrame" and root.raws == {"raw": night.science}
    assert set(root.inputs) == {"bias", "flat", "hot", "cold"}
    bias = plan.nodes[root.inputs["bias"]]  # type: ignore[index]
    assert bias.raws["raw_bias_frames"] == sorted(night.bias) and bias.filter is None
    assert bias.params == RECIPES["BiasFrame"].params
    with pytest.raises(InvalidRequest, match="depends on a filter"):
        await night.planner().plan("MasterFlatFrame", CHIP, NIGHT)
    with pytest.raises(NotFound, match=f"no chip 'ccd99'; known: {CHIP}"):
        await night.planner().plan("HotPixelMap", "ccd99", NIGHT)
    with pytest.raises(InvalidRequest, match="not a raw science frame"):
        await night.reduced(night.bias[0])
    # biases are made at most 3 nights from the observation: 4 nights on, none can be
    with pytest.raises(NotFound, match="0 RawBiasFrame that night"):
        await night.planner().plan("HotPixelMap", CHIP, NIGHT + dt.timedelta(days=4))


async def test_make_stores_and_registers_then_plans_reuse() -> None:
    night = Night()
    plan = await night.reduced(night.science)
    made: list[str] = []
    oid = await night.maker().make(plan, lambda n: made.append(n.cls))
    assert made == [n.cls for n in plan.to_make]
    reduced = night.catalog.objects[oid]
    assert reduced.type == "ReducedScienceFrame" and reduced.refs["raw"] == night.science
    assert reduced.refs["chip"] == night.chip and reduced.refs["filter"] == night.filter
    assert reduced.filename == product_name("ReducedScienceFrame", CHIP, NIGHT.isoformat(), oid)
    data = night.files.files[reduced.filename]
    assert reduced.checksum == _sha256(data) and reduced.file_size == len(data)
    with fits.open(io.BytesIO(data)) as hdul:
        assert hdul[0].header["AWEOID"] == oid and hdul[0].data.shape == SHAPE
    weight = night.files.files[reduced.attributes["weight_filename"]]
    assert reduced.attributes["weight_checksum"] == _sha256(weight)
    products = [o for o in night.catalog.objects.values() if o.type in RECIPES]
    assert len(products) == 8
    assert all(p.software_version == SOFTWARE_VERSION and p.process_params ==
               RECIPES[p.type].params for p in products)
    bias = night.catalog.objects[str(reduced.refs["bias"])]
    # a made calibration is valid for its class's default window: biases 3 nights around
    start, end = night_window(NIGHT)
    assert (bias.timestamp_start, bias.timestamp_end) == (start - dt.timedelta(days=3),
                                                          end + dt.timedelta(days=3))
    assert sorted(bias.refs["raw_bias_frames"]) == sorted(night.bias)
    assert night.catalog.objects[str(bias.refs["read_noise"])].attributes["read_noise"] > 0
    # every input file was read once, checked against the catalogue's checksum
    assert sorted(night.files.reads) == sorted(set(night.files.reads))
    again = await night.reduced(night.science)
    assert again.to_make == [] and again.nodes[again.root].oid == oid


async def test_staleness_reasons_of_the_plan() -> None:
    night = Night()
    plan = await night.reduced(night.science)
    oid = await night.maker().make(plan)
    reduced = night.catalog.objects[oid]
    hot = str(reduced.refs["hot"])
    # other parameters asked for the hot-pixel map: it, and what uses it, are to be made
    tuned = await night.planner({"HotPixelMap": {"nsigma": 20.0}}).plan(
        "ReducedScienceFrame", CHIP, NIGHT, FILTER, night.science)
    hot_node = next(n for n in tuned.to_make if n.cls == "HotPixelMap")
    assert hot_node.reasons == ["made with {'nsigma': 10.0}, asked for {'nsigma': 20.0}"]
    root = tuned.nodes[tuned.root]
    assert f"its hot {hot} must be remade, as it is itself stale (made with" in \
        "; ".join(root.reasons)
    # a newer valid bias: the old one is no longer the best for what was made from it
    old = night.catalog.objects[str(reduced.refs["bias"])]
    newer = night.catalog.add("BiasFrame", old.refs, old.attributes,
                              timestamp_start=old.timestamp_start,
                              timestamp_end=old.timestamp_end,
                              process_params=old.process_params,
                              software_version=SOFTWARE_VERSION,
                              filename=old.filename, checksum=old.checksum)
    stale = await night.planner().plan("HotPixelMap", CHIP, NIGHT)
    assert stale.nodes[stale.root].reasons == [
        f"its bias {old.oid} is no longer the best; the best is {newer}"]
    # the newer one invalidated, and the old one too: the bias is made anew
    night.catalog.curate(newer, is_valid=0)
    night.catalog.curate(old.oid, is_valid=0)
    remade = await night.reduced(night.science)
    bias_node = next(n for n in remade.to_make if n.cls == "BiasFrame")
    assert bias_node.reasons == ["no valid BiasFrame exists"]
    reasons = remade.nodes[remade.root].reasons
    assert any(r.startswith(f"its bias {old.oid} must be remade") for r in reasons), reasons
    # software of another version made it: stale on its own account
    night.catalog.curate(old.oid, is_valid=1)
    night.catalog.curate(hot, software_version="0.0.1")
    plan = await night.planner().plan("HotPixelMap", CHIP, NIGHT)
    assert plan.nodes[plan.root].reasons == [
        f"made by software 0.0.1; HotPixelMap is now made by {SOFTWARE_VERSION}"]


async def test_a_file_that_is_not_what_the_catalogue_recorded_is_refused() -> None:
    night = Night()
    plan = await night.planner().plan("HotPixelMap", CHIP, NIGHT)
    name = str(night.catalog.objects[night.bias[1]].filename)
    night.files.files[name] = night.files.files[name][:-2880] + b"\0" * 2880
    with pytest.raises(ChecksumMismatch, match=name) as caught:
        await night.maker().make(plan)
    assert caught.value.expected == night.catalog.objects[night.bias[1]].checksum
    assert not [o for o in night.catalog.objects.values() if o.type in RECIPES]
    # a file whose record has no checksum is not trusted at all
    night = Night()
    plan = await night.planner().plan("ReadNoise", CHIP, NIGHT)
    night.catalog.curate(night.bias[0], checksum=None)
    with pytest.raises(ChecksumMismatch, match="has no checksum"):
        await night.maker().make(plan)


async def test_a_retried_job_registers_one_object() -> None:
    night = Night()
    plan = await night.planner().plan("ReadNoise", CHIP, NIGHT)
    (node,) = plan.to_make
    oid = new_oid()
    await night.maker().make_one(node, plan.input_oids(node), oid)
    assert await night.maker().make_one(node, plan.input_oids(node), oid) == oid
    assert len(night.catalog.of_type("ReadNoise")) == 1
    other = Node("ReadNoise", CHIP, None, NIGHT, raws={"raw_bias_frames": night.bias[:2]})
    with pytest.raises(Conflict, match="another product took its oid"):
        await night.maker().make_one(other, {}, oid)


async def astrometry(night: Night, flags: list[QC]) -> list[str]:
    """Reduced standard frames made, and an astrometric solution registered for each (by
    hand: tiny frames have no stars), with the flags given."""
    plan = await night.planner().plan_many(
        [Target("ReducedScienceFrame", CHIP, NIGHT, FILTER, raw) for raw in night.standards])
    await night.maker().make(plan)
    out = []
    for key, flag in zip(plan.roots, flags, strict=True):
        out.append(night.catalog.add(
            "AstrometricParameters",
            {"chip": night.chip, "filter": night.filter, "reduced": str(plan.nodes[key].oid),
             "refcat": night.refcat}, {"rms": 0.05},
            process_params=RECIPES["AstrometricParameters"].params,
            software_version=SOFTWARE_VERSION, quality_flags=int(flag)))
    return out


async def test_the_qc_policy_leaves_out_or_refuses() -> None:
    night = Night()
    good, poor = await astrometry(night, [QC(0), QC.POOR_ASTROMETRY])
    plan = await night.planner().plan("PhotometricParameters", CHIP, NIGHT, FILTER)
    root = plan.nodes[plan.root]
    astrom = root.inputs["astrom"]
    assert root.action == "make" and isinstance(astrom, list)
    assert [plan.nodes[k].oid for k in astrom] == [good]
    assert root.notes == [f"left out: its astrom {poor} has POOR_ASTROMETRY, which "
                          "PhotometricParameters refuses"]
    assert root.raws["refcat"] == night.refcat
    # none left: the product is refused, with the reason, and not made
    night.catalog.curate(good, quality_flags=int(QC.POOR_ASTROMETRY))
    plan = await AsyncPlanner(night.catalog).plan("PhotometricParameters", CHIP, NIGHT, FILTER)
    root = plan.nodes[plan.root]
    assert root.action == "refuse" and plan.to_make == [] and plan.refused == [root]
    assert root.reasons == ["every one of its astrom is refused by the QC policy"]
    # the maker checks too: a source list is not made from a poor solution
    photom = night.catalog.add("PhotometricParameters", {"chip": night.chip})
    reduced = str(night.catalog.objects[poor].refs["reduced"])
    node = Node("SourceList", CHIP, FILTER, NIGHT, night.standards[1],
                params=RECIPES["SourceList"].params)
    with pytest.raises(QCRefused, match=f"its astrom {poor} has POOR_ASTROMETRY"):
        await night.maker().make_one(node, {"frame": reduced, "astrom": poor,
                                            "photom": photom}, new_oid())
    assert night.catalog.of_type("SourceList") == []


async def test_the_sync_facade_runs_inside_a_running_event_loop() -> None:
    """As in Jupyter: a loop runs in this thread, and the synchronous API still works (on
    its private loop, in another thread)."""
    night = Night()
    client = SyncCatalog(night.catalog)
    plan = targets.plan("HotPixelMap", NIGHT.isoformat(), CHIP, catalog=client)  # type: ignore[arg-type]
    assert [n.cls for n in plan.to_make] == ["ReadNoise", "BiasFrame", "HotPixelMap"]
    assert client.threads == {"awe-targets"}
    assert not targets.exists("HotPixelMap", NIGHT, CHIP, catalog=client)  # type: ignore[arg-type]
    assert targets.Planner(client).existing(Target("HotPixelMap", CHIP, NIGHT)) is None

    async def fails() -> None:
        raise Conflict("from the private loop")

    with pytest.raises(Conflict, match="from the private loop"):
        run(fails())


async def test_the_targets_raw_frames_are_read_as_a_few_fields() -> None:
    """What the planner needs of raw frames (class, chip, filter, moment, position) comes
    from ``POST /query/values``, not as their whole records; from a catalogue without it
    (older, asked once), from the records, to the same plan."""
    night = Night()
    raws = [night.raw("RawScienceFrame", 500.0 + i) for i in range(3)]
    wanted = [Target("ReducedScienceFrame", CHIP, NIGHT, FILTER, r) for r in [night.science,
                                                                               *raws]]

    class Logged(SyncCatalog):
        def __init__(self, older: bool) -> None:
            super().__init__(night.catalog)
            self.older, self.asked, self.records = older, [], set()

        def get_records(self, oids: Sequence[str]) -> dict[str, ObjectOut]:
            self.records.update(oids)
            return super().get_records(oids)

        def request(self, method: str, path: str, **kwargs: Any) -> Any:
            self.asked.append(path)
            if self.older and path == "/query/values":
                raise NotFound("no such route")  # as an older catalogue answers
            if path == "/openapi.json":  # its API, where the route is not
                return {"paths": {} if self.older else {"/query/values": {}}}
            return super().request(method, path, **kwargs)

    plans = []
    for older in (False, True):
        client = Logged(older)
        plans.append(targets.Planner(client).plan_many(wanted))  # type: ignore[arg-type]
        assert client.asked.count("/query/values") >= 1
        assert client.asked.count("/query/values") == 1 or not older
        assert bool(client.records & {night.science, *raws}) == older
    assert plans[0].describe() == plans[1].describe()
    assert [n.time for n in plans[0].nodes.values()] == [n.time for n in plans[1].nodes.values()]


async def test_the_async_adapters_check_and_map_what_they_get() -> None:
    """The async storage client refuses bytes that are not the ones recorded (storage's own
    checksum first, then the bytes, then the size); the catalogue adapter answers a batch of
    calibrations, None where there is none."""
    good = b"SIMPLE  = T" + b" " * 100
    served: dict[str, tuple[bytes, str]] = {"a.fits": (good, _sha256(good)),
                                            "b.fits": (good, "")}  # no checksum header

    def storage(request: httpx.Request) -> httpx.Response:
        data, sha = served[request.url.path.removeprefix("/files/")]
        return httpx.Response(200, content=data,
                              headers={"x-checksum-sha256": sha} if sha else {})

    other = _sha256(b"other")
    async with AsyncStorageClient("http://storage", transport=httpx.MockTransport(storage)
                                  ) as client:
        assert await client.get("a.fits", sha256=_sha256(good), size=len(good)) == good
        with pytest.raises(ChecksumMismatch) as caught:
            await client.get("a.fits", sha256=other)
        assert (caught.value.expected, caught.value.actual) == (other, _sha256(good))
        with pytest.raises(ChecksumMismatch, match="sha256"):
            await client.get("b.fits", sha256=other)
        with pytest.raises(ChecksumMismatch, match="size"):
            await client.get("b.fits", size=len(good) + 1)

    night = Night()

    class Client:  # what CatalogPorts uses of the async catalogue client: look-ups
        def __init__(self, batches: bool) -> None:
            self.batches = batches  # a catalogue with POST /calibrations/best
            self.asked: list[str] = []

        async def best(self, cls: str, chip: str, time: dt.datetime,
                       filter: str | None = None) -> ObjectOut:
            self.asked.append("GET")
            found = night.catalog.best_one(Calibration(cls, chip, time, filter))
            if found is None:
                raise NotFound("none")
            return found

        async def request(self, method: str, path: str, **kwargs: Any) -> Any:
            self.asked.append(method)
            if method == "POST" and not self.batches:
                raise NotFound("no such route")  # as an older catalogue answers
            return answer(night.catalog, method, path, **kwargs)

    plan = await night.reduced(night.science)
    await night.maker().make(plan)
    when = night_window(NIGHT)[0] + dt.timedelta(hours=12)
    for batches, asked in ((True, ["POST"]), (False, ["POST", "GET", "GET"])):
        fake = Client(batches)
        bias, none = await CatalogPorts(fake).best(  # type: ignore[arg-type]
            [Calibration("BiasFrame", CHIP, when), Calibration("BiasFrame", "ccd99", when)])
        assert bias is not None and bias.type == "BiasFrame" and none is None
        assert fake.asked == asked  # one request for both, where the catalogue can


# -- validity drives selection ---------------------------------------------------------
LATER = NIGHT + dt.timedelta(days=1)  # a night with science frames only


def within_windows(plan: Plan, catalog: FakeCatalog) -> None:
    """A calibration is never used outside its window: every calibration a node uses (or
    will be given, when made) covers the node's moment."""
    for node in plan.nodes.values():
        for key in node.input_keys():
            dep = plan.nodes[key]
            if not calibrates(dep.cls) or dep.action == "refuse":
                continue
            if dep.action == "use":
                record = catalog.objects[str(dep.oid)]
                window = (record.timestamp_start, record.timestamp_end)
            else:
                assert dep.window is not None, dep.describe()
                window = dep.window
            assert node.time is not None and window[0] is not None and window[1] is not None
            assert window[0] <= node.time <= window[1], (node.describe(), dep.describe())


async def test_a_science_only_night_uses_the_calibrations_of_another() -> None:
    night = Night()
    await night.maker().make(await night.reduced(night.science))
    later = night.raw("RawScienceFrame", 500.0, LATER)
    night.catalog.calls.clear()
    plan = await night.reduced(later, LATER)
    # the catalogue is asked in batches: a look-up per step of the recipe, not per node
    calls = dict(night.catalog.calls)
    assert calls["best"] <= 6 and calls["find"] <= 8, calls
    assert [n.cls for n in plan.to_make] == ["ReducedScienceFrame"], plan.describe()
    root = plan.nodes[plan.root]
    for ref in ("bias", "flat", "hot", "cold"):
        dep = plan.nodes[root.inputs[ref]]  # type: ignore[index]
        assert dep.action == "use" and dep.night == NIGHT, dep.describe()
    within_windows(plan, night.catalog)
    oid = await night.maker().make(plan)
    made = night.catalog.objects[oid]
    first = night.catalog.objects[str(night.catalog.of_type("ReducedScienceFrame")[0].oid)]
    assert made.refs["bias"] == first.refs["bias"] and made.refs["flat"] == first.refs["flat"]


async def test_made_from_the_nearest_night_within_the_distance() -> None:
    night = Night()
    night.calibrations(NIGHT + dt.timedelta(days=5))
    # nothing made yet: a frame two nights on is reduced with calibrations made from the
    # first night (2 away, not the one 3 away), and each node says which night and why
    frame = night.raw("RawScienceFrame", 500.0, NIGHT + dt.timedelta(days=2))
    plan = await night.reduced(frame, NIGHT + dt.timedelta(days=2))
    bias = next(n for n in plan.to_make if n.cls == "BiasFrame")
    when = night.catalog.objects[frame].attributes["date_obs"]
    stamp = dt.datetime.fromisoformat(when).strftime("%Y-%m-%d %H:%M UTC")
    assert bias.night == NIGHT and bias.reasons == [
        f"no BiasFrame covers {stamp}; made from {NIGHT}, 2 nights away, 3 RawBiasFrame"]
    assert bias.raws["raw_bias_frames"] == sorted(night.bias[:3])
    hot = next(n for n in plan.to_make if n.cls == "HotPixelMap")
    assert hot.night == NIGHT and "where its bias (to be made) is from" in hot.reasons[0]
    within_windows(plan, night.catalog)
    # a frame three nights on: the night 2 away is nearer than the first, 3 away
    frame = night.raw("RawScienceFrame", 500.0, NIGHT + dt.timedelta(days=3))
    plan = await night.reduced(frame, NIGHT + dt.timedelta(days=3))
    assert {n.night for n in plan.to_make if n.cls != "ReducedScienceFrame"} == {
        NIGHT + dt.timedelta(days=5)}
    within_windows(plan, night.catalog)
    # made, the calibrations get their class's default window around their own night
    await night.maker().make(plan)
    start, end = night_window(NIGHT + dt.timedelta(days=5))
    for cls, days in (("BiasFrame", 3), ("DomeFlatFrame", 7), ("TwilightFlatFrame", 21),
                      ("MasterFlatFrame", 7), ("HotPixelMap", 3), ("ColdPixelMap", 7)):
        (made,) = night.catalog.of_type(cls)
        assert (made.timestamp_start, made.timestamp_end) == (
            start - dt.timedelta(days=days), end + dt.timedelta(days=days)), cls


async def test_refused_beyond_the_distance_naming_the_candidates() -> None:
    night = Night()
    await night.maker().make(await night.planner().plan("HotPixelMap", CHIP, NIGHT))
    (bias,) = night.catalog.of_type("BiasFrame")
    far = NIGHT + dt.timedelta(days=10)
    frame = night.raw("RawScienceFrame", 500.0, far)
    with pytest.raises(NotFound) as caught:
        await night.planner().plan("HotPixelMap", CHIP, far)
    text = str(caught.value)
    assert text.startswith(f"no BiasFrame for {CHIP} covers {far + dt.timedelta(days=1)} "
                           "00:00 UTC, and none can be made on 2006-06-16: "), text
    assert "0 RawBiasFrame that night, 2 needed; and none from a night within 3 nights" \
        in text
    assert f"nearest nights with raw frames: {NIGHT} with 3 RawBiasFrame, 10 nights away" \
        in text
    assert f"nearest BiasFrame: {bias.oid} from {NIGHT} (valid 2006-06-03 12:00 UTC .. " \
        "2006-06-10 12:00 UTC)" in text
    # the rules of a site allow biases from further away, for this camera only
    rules = CalibrationRules.model_validate(
        {"instruments": {"FAKECAM": {"BiasFrame": {"max_distance": 10, "window": 10},
                                     "ReadNoise": {"max_distance": 10, "window": 10},
                                     "HotPixelMap": {"max_distance": 10, "window": 10}}}})
    with pytest.raises(NotFound, match="0 RawBiasFrame that night"):
        await night.reduced(frame, far, rules)  # the chip has no instrument: no override
    camera = night.catalog.add("Instrument", attributes={"name": "FAKECAM"})
    night.catalog.curate(night.chip, refs={"instrument": camera})
    with pytest.raises(NotFound) as caught:  # flats are 7 nights at most, still
        await night.reduced(frame, far, rules)
    assert str(caught.value).startswith("no DomeFlatFrame for ccd50/841 covers")
    # the first night's bias (valid 3 nights: the rules of its day) does not cover it; a
    # twin is made from its raw frames with today's window (its read noise serves as it is)
    plan = await night.planner(rules=rules).plan("HotPixelMap", CHIP, far)
    assert [n.cls for n in plan.to_make] == ["BiasFrame", "HotPixelMap"], plan.describe()
    assert plan.nodes[plan.root].night == NIGHT
    assert plan.to_make[0].window == (night_window(NIGHT)[0] - dt.timedelta(days=10),
                                      night_window(NIGHT)[1] + dt.timedelta(days=10))
    assert "made from 2006-06-06, 10 nights away, where its bias " in \
        plan.nodes[plan.root].reasons[0]


def test_calibration_rules_are_checked_and_read_from_the_environment() -> None:
    rules = CalibrationRules.from_env(
        {"AWE_CALIBRATION_RULES": '{"classes": {"BiasFrame": {"max_distance": 5, '
                                  '"window": 6}}, "instruments": {"WIDECAM": '
                                  '{"BiasFrame": {"window": 9}}}}'})
    assert rules.rule("BiasFrame").max_distance == 5 and rules.rule("BiasFrame").window == 6
    assert rules.rule("BiasFrame", "WIDECAM").window == 9
    assert rules.rule("TwilightFlatFrame").max_distance == 21
    assert rules.rule("SkyBackground").max_distance == 0  # a class without a rule
    assert CalibrationRules.from_env({}) == CalibrationRules()
    with pytest.raises(InvalidRequest, match="AWE_CALIBRATION_RULES is not JSON"):
        CalibrationRules.from_env({"AWE_CALIBRATION_RULES": "{"})
    with pytest.raises(InvalidRequest, match="would not cover the observation"):
        CalibrationRules.from_env(
            {"AWE_CALIBRATION_RULES": '{"classes": {"BiasFrame": {"max_distance": 9}}}'})
    with pytest.raises(InvalidRequest, match="Extra inputs"):
        CalibrationRules.parse('{"classes": {"BiasFrame": {"distance": 1}}}')


async def test_window_changes_drive_the_choice_and_say_why() -> None:
    night = Night()
    night.calibrations(NIGHT + dt.timedelta(days=3))
    frame = night.raw("RawScienceFrame", 500.0, LATER)
    plan = await night.reduced(frame, LATER)
    reduced = night.catalog.objects[await night.maker().make(plan)]
    b0 = night.catalog.objects[str(reduced.refs["bias"])]
    assert plan.nodes[plan.root].time is not None
    moment = dt.datetime.fromisoformat(reduced.attributes.get("date_obs") or
                                       night.catalog.objects[frame].attributes["date_obs"])
    stamp = moment.strftime("%Y-%m-%d %H:%M UTC")
    # shortened to its own night by a calibration scientist: it no longer covers the frame
    start, end = night_window(NIGHT)
    night.catalog.curate(b0.oid, by="alice", reason="amplifier drift",
                         timestamp_start=start, timestamp_end=end)
    plan = await night.reduced(frame, LATER)
    within_windows(plan, night.catalog)
    root = plan.nodes[plan.root]
    bias = plan.nodes[root.inputs["bias"]]  # type: ignore[index]
    assert bias.action == "make" and bias.night == NIGHT + dt.timedelta(days=3)
    assert bias.reasons == [f"no BiasFrame covers {stamp}; made from 2006-06-09, 2 nights "
                            "away, 3 RawBiasFrame"], bias.reasons
    change = f"shortened by alice at {night.catalog.histories[b0.oid][-1].at:%Y-%m-%d %H:%M} " \
        "UTC (amplifier drift)"
    assert root.action == "make" and root.reasons[0] == (
        f"its bias {b0.oid} no longer covers {stamp} since it was {change}; the best is a "
        "BiasFrame to be made from 2006-06-09")
    client = SyncCatalog(night.catalog)
    obj = DBObject.from_record(reduced)
    verdict = targets.uptodate(obj, catalog=client)  # type: ignore[arg-type]
    assert not verdict and verdict.reasons[0] == root.reasons[0], verdict.reasons
    # and the maps made from it: the hot-pixel map of its night does not cover the frame
    # any more either (it is valid 3 nights), but it is still its night's: up to date
    hot = night.catalog.objects[str(reduced.refs["hot"])]
    assert targets.uptodate(DBObject.from_record(hot), catalog=client)  # type: ignore[arg-type]
    # extended again: the first night's bias serves, and the frame is up to date
    night.catalog.curate(b0.oid, by="alice", timestamp_start=start - dt.timedelta(days=2),
                         timestamp_end=end + dt.timedelta(days=2))
    assert targets.uptodate(obj, catalog=client)  # type: ignore[arg-type]
    plan = await night.reduced(frame, LATER)
    assert plan.to_make == [] and plan.nodes[plan.root].oid == reduced.oid
    # invalidated: one is made anew from its night (the nearest), and the reasons say who
    night.catalog.curate(b0.oid, by="bob", reason="bad column", is_valid=0)
    plan = await night.reduced(frame, LATER)
    within_windows(plan, night.catalog)
    bias = next(n for n in plan.to_make if n.cls == "BiasFrame")
    assert bias.night == NIGHT and bias.reasons[0].startswith("no BiasFrame covers")
    verdict = targets.uptodate(obj, catalog=client)  # type: ignore[arg-type]
    at = night.catalog.histories[b0.oid][-1].at
    assert verdict.reasons[0] == (f"its bias {b0.oid} was invalidated by bob at "
                                  f"{at:%Y-%m-%d %H:%M} UTC (bad column)"), verdict.reasons


async def test_a_calibration_changed_after_the_plan_is_not_used() -> None:
    """Between plan and make (a job waiting in the queue) a calibration scientist shortens
    the chosen bias's window, or invalidates it: the product is not made with it, and the
    refusal says so; planned again, the product is made from one that covers it."""
    night = Night()
    night.calibrations(NIGHT + dt.timedelta(days=3))
    await night.maker().make(await night.reduced(night.science))
    frame = night.raw("RawScienceFrame", 500.0, LATER)
    for change in ({"timestamp_end": night_window(NIGHT)[1]}, {"is_valid": 0}):
        plan = await night.reduced(frame, LATER)
        root = plan.nodes[plan.root]
        bias = plan.nodes[root.inputs["bias"]]  # type: ignore[index]
        assert root.action == "make" and bias.action == "use" and bias.oid is not None
        before = len(night.catalog.objects)
        night.catalog.curate(bias.oid, by="alice", **change)
        maker = night.maker()
        with pytest.raises(CalibrationChanged, match=f"its bias {bias.oid} "
                           + ("no longer covers" if "is_valid" not in change
                              else "was invalidated")):
            await maker.make(plan)
        made = [o for o in list(night.catalog.objects.values())[before:]]
        assert all(o.type != "ReducedScienceFrame" for o in made), made
        again = await night.reduced(frame, LATER)
        within_windows(again, night.catalog)
        oid = await night.maker().make(again)
        used = night.catalog.objects[oid].refs["bias"]
        assert used != bias.oid
        record = night.catalog.objects[str(used)]
        assert record.is_valid != 0 and record.timestamp_start is not None
        assert record.timestamp_start <= root.time <= record.timestamp_end  # type: ignore


@pytest.mark.parametrize("seed", [1, 3])
async def test_a_calibration_is_never_used_outside_its_window(seed: int) -> None:
    """Whatever windows and verdicts a calibration scientist sets, each plan uses only
    calibrations that cover the moment of what is made with them, or makes ones that will
    (random windows and invalidations, plans made every other round)."""
    night = Night()
    night.calibrations(NIGHT + dt.timedelta(days=2))
    frames = {d: night.raw("RawScienceFrame", 500.0, NIGHT + dt.timedelta(days=d))
              for d in range(5)}
    wanted = [Target("ReducedScienceFrame", CHIP, NIGHT + dt.timedelta(days=d), FILTER, raw)
              for d, raw in frames.items()]
    plan = await night.planner().plan_many(wanted)
    within_windows(plan, night.catalog)
    await night.maker().make(plan)
    start, _ = night_window(NIGHT)
    rng = np.random.default_rng(seed)
    planned = 0
    for round in range(8):
        for record in [o for o in night.catalog.objects.values() if calibrates(o.type)]:
            if rng.random() < 0.5:
                a, b = sorted(rng.integers(-72, 6 * 24, 2))
                night.catalog.curate(record.oid,
                                     timestamp_start=start + dt.timedelta(hours=int(a)),
                                     timestamp_end=start + dt.timedelta(hours=int(b)))
            if rng.random() < 0.1:
                night.catalog.curate(record.oid, is_valid=int(rng.integers(0, 2)))
        try:
            plan = await night.planner().plan_many(wanted)
        except NotFound as exc:
            assert "covers" in str(exc) and "nearest" in str(exc)
            continue
        within_windows(plan, night.catalog)
        planned += 1
        if round % 2:
            await night.maker().make(plan)
    assert planned >= 4


# -- data IDs ----------------------------------------------------------------------------
def test_data_ids_key_the_plan_and_name_the_targets() -> None:
    a = DataId(chip="ccd50", night=NIGHT, filter=None)
    assert a == DataId({"night": "2006-06-06", "chip": "ccd50"}) and hash(a) == hash(
        DataId(night="2006-06-06", chip="ccd50"))
    assert list(a) == ["chip", "night"] and str(a) == "chip=ccd50 night=2006-06-06"
    assert a.but(filter="841") == {"chip": "ccd50", "filter": "841", "night": "2006-06-06"}
    assert parse_data_id(["chip=ccd50", "night=2006-06-06"]) == {"chip": "ccd50",
                                                                  "night": "2006-06-06"}
    for bad, why in ((["chip"], "give key=value"), (["ccd=1"], "unknown dimension 'ccd'")):
        with pytest.raises(InvalidRequest, match=why):
            parse_data_id(bad)
    # every class's dimensions are of the universe; the recipes agree with them
    for cls in registry:
        assert set(cls.dimensions) <= set(DIMENSIONS), cls
    for name, recipe in RECIPES.items():
        dims = registry.get(name).dimensions
        assert ("filter" in dims) == recipe.needs_filter, name
        assert ("raw" in dims) == (recipe.raw_path is not None), name
    # positional or by dimension, the same target; a value twice, or a wrong one, refused
    assert target_values("HotPixelMap", ("instrument", "chip", "night"), None, None, None,
                         None, {"night": "2006-06-06", "chip": "ccd50"}) == (
        "2006-06-06", "ccd50", None, None, {})
    # a product across chips and nights is given by filter and tile, without chip or night
    assert target_values("CoaddedRegriddedFrame", ("instrument", "filter", "tile"), None,
                         None, None, None, {"filter": "841", "tile": "MINI_150.00_2.00"}) == (
        None, None, "841", None, {"tile": "MINI_150.00_2.00"})
    with pytest.raises(InvalidRequest, match="across chips and nights"):
        target_values("CoaddedRegriddedFrame", ("instrument", "filter", "tile"), NIGHT,
                      "ccd50", "841", None, {"tile": "MINI_150.00_2.00"})
    assert target_values("HotPixelMap", (), NIGHT, "ccd50", None, None,
                         {"chip": "ccd50"})[1] == "ccd50"
    for data_id, why in (({"chip": "ccd51"}, "chip is given twice: ccd50 and ccd51"),
                         ({"raw": "x"}, "HotPixelMap has no dimension raw"),
                         ({"tile": "T1"}, "not a dimension|no dimension tile"),
                         ({"colour": "red"}, "colour: not a dimension")):
        with pytest.raises(InvalidRequest, match=why):
            target_values("HotPixelMap", ("instrument", "chip", "night"), NIGHT, "ccd50",
                          None, None, data_id)
    with pytest.raises(InvalidRequest, match="give the night and the chip"):
        target_values("HotPixelMap", (), None, "ccd50", None, None, {})
    # the job API takes a data ID too
    ref = TargetRef(cls="ReducedScienceFrame", data_id={
        "night": "2006-06-06", "chip": "ccd50", "filter": "841", "raw": "r1"})
    assert (ref.date, ref.chip, ref.filter, ref.raw) == (NIGHT, "ccd50", "841", "r1")
    for body, why in (({"data_id": {"chip": "ccd50"}}, "give the night and the chip"),
                      ({"date": "2006-06-07", "chip": "c", "data_id": {"night": "2006-06-06"}},
                       "night is given twice"),
                      ({"data_id": {"night": "June", "chip": "c"}}, "not YYYY-MM-DD"),
                      ({"data_id": {"exposure": "1", "chip": "c"}}, "not a dimension")):
        with pytest.raises(ValidationError, match=why):
            TargetRef.model_validate({"cls": "HotPixelMap", **body})


async def test_nodes_are_keyed_by_class_and_data_id() -> None:
    night = Night()
    plan = await night.reduced(night.science)
    root = plan.nodes[plan.root]
    assert plan.root == ("ReducedScienceFrame", DataId(chip=CHIP, filter=FILTER, night=NIGHT,
                                                       raw=night.science))
    assert root.data_id == plan.root[1] and root.key == plan.root
    bias = plan.nodes[root.inputs["bias"]]  # type: ignore[index]
    assert bias.key == ("BiasFrame", DataId(chip=CHIP, night=NIGHT)) == key_of(
        "BiasFrame", CHIP, None, NIGHT)
    assert all(key == node.key for key, node in plan.nodes.items())


async def test_a_recipe_selects_its_inputs_by_data_id() -> None:
    """A product made from inputs of several nights (a survey product's shape: the
    planner's core knows nothing of it): its recipe's selector finds their data IDs."""
    night = Night()
    later = night.raw("RawScienceFrame", 500.0, LATER)

    async def frames_of_any_night(catalog: Any, data_id: DataId) -> list[DataId]:
        spec = QuerySpec(cls="RawScienceFrame", where=And(items=(
            Compare(op="eq", path=("chip", "name"), value=data_id["chip"]),
            Compare(op="eq", path=("filter", "name"), value=data_id["filter"]),
            Compare(op="eq", path=("type",), value="RawScienceFrame"))))
        return [DataId(chip=data_id["chip"], filter=data_id["filter"], raw=r.oid,
                       night=targets.night_of(dt.datetime.fromisoformat(
                           str(r.attributes["date_obs"]))))
                for r in await catalog.find(spec)]

    RECIPES["AnyNightStack"] = Recipe(
        "AnyNightStack", (Input("frames", "ReducedScienceFrame", select=frames_of_any_night,
                                least=2),), lambda _i, _p: Made(None), needs_filter=True)
    try:
        plan = await night.planner().plan("AnyNightStack", CHIP, LATER, FILTER)
        root = plan.nodes[plan.root]
        frames = [plan.nodes[k] for k in root.inputs["frames"]]  # type: ignore[index]
        assert sorted(str(f.raw) for f in frames) == sorted([night.science, later])
        assert {f.night for f in frames} == {NIGHT, LATER} and inputs_first(plan)
        within_windows(plan, night.catalog)
        # both frames use the first night's calibrations, planned once
        assert len([n for n in plan.nodes.values() if n.cls == "BiasFrame"]) == 1
    finally:
        del RECIPES["AnyNightStack"]
