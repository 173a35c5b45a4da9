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

from awecore import targets
from awecore.client import AsyncStorageClient
from awecore.errors import ChecksumMismatch, Conflict, InvalidRequest, NotFound, QCRefused
from awecore.files import FileInfo
from awecore.ids import new_oid
from awecore.model import registry
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
from awecore.records import ObjectIn, ObjectOut
from awecore.targets import (
    RECIPES,
    AsyncMaker,
    AsyncPlanner,
    Calibration,
    CatalogPorts,
    Node,
    Plan,
    Target,
    night_window,
    product_name,
)
from awecore.targets._loop import run

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

    def curate(self, oid: str, **changes: Any) -> None:
        self.objects[oid] = self.objects[oid].model_copy(update=changes)

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
    async def get_records(self, oids: Sequence[str]) -> dict[str, ObjectOut]:
        return {o: self.objects[o] for o in oids if o in self.objects}

    async def find(self, spec: QuerySpec, limit: int | None = None) -> list[ObjectOut]:
        return self.select(spec, limit)

    async def best(self, wanted: Sequence[Calibration]) -> list[ObjectOut | None]:
        return [self.best_one(c) for c in wanted]

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
        assert method == "GET" and path.startswith("/calibrations/"), path
        p = kwargs["params"]
        best = self.fake.best_one(Calibration(path.split("/")[2], p["chip"],
                                              dt.datetime.fromisoformat(p["time"]),
                                              p.get("filter")))
        if best is None:
            raise NotFound("no calibration")
        return best.model_dump(mode="json")

    def count_sources(self, spec: QuerySpec) -> int:
        raise AssertionError("not used by planning")


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

    def raw(self, cls: str, level: float) -> str:
        image = (300.0 + level + self.rng.normal(0, 5, SHAPE)).astype(np.float32)
        buf = io.BytesIO()
        fits.PrimaryHDU(image).writeto(buf)
        data = buf.getvalue()
        name = f"raw/{cls}/{len(self.files.files)}.fits"
        self.files.files[name] = data
        refs = {"chip": self.chip} | ({} if cls == "RawBiasFrame" else {"filter": self.filter})
        start = night_window(NIGHT)[0]
        when = start + dt.timedelta(hours=6, minutes=len(self.files.files))
        return self.catalog.add(cls, refs, {"date_obs": when.isoformat(), "exptime": 10.0,
                                            "ra": 150.0, "dec": -30.0},
                                filename=name, file_size=len(data), checksum=_sha256(data))

    def planner(self, params: dict[str, dict[str, Any]] | None = None) -> AsyncPlanner:
        return AsyncPlanner(self.catalog, params)

    def maker(self) -> AsyncMaker:
        return AsyncMaker(self.catalog, self.catalog, self.files)

    async def reduced(self, raw: str) -> Plan:
        return await self.planner().plan("ReducedScienceFrame", CHIP, NIGHT, FILTER, raw)


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
    with pytest.raises(NotFound, match="0 RawBiasFrame that night"):
        await night.planner().plan("HotPixelMap", CHIP, NIGHT + dt.timedelta(days=3))


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
    assert (bias.timestamp_start, bias.timestamp_end) == night_window(NIGHT)
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

    class Client:  # what CatalogPorts uses of the async catalogue client, best only
        async def best(self, cls: str, chip: str, time: dt.datetime,
                       filter: str | None = None) -> ObjectOut:
            found = night.catalog.best_one(Calibration(cls, chip, time, filter))
            if found is None:
                raise NotFound("none")
            return found

    plan = await night.reduced(night.science)
    await night.maker().make(plan)
    when = night_window(NIGHT)[0] + dt.timedelta(hours=12)
    bias, none = await CatalogPorts(Client()).best(  # type: ignore[arg-type]
        [Calibration("BiasFrame", CHIP, when), Calibration("BiasFrame", "ccd99", when)])
    assert bias is not None and bias.type == "BiasFrame" and none is None
