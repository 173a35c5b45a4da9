"""What the object viewer shows, gathered from the catalog and lineage as the user.

Kept apart from the HTTP handlers so each page is one function of the APIs' answers: the
classes with their counts, a page of a DSL query with the columns a person wants first, and
everything about one object (its references both ways, the flags it inherits from its
inputs, why it is stale).
"""

from __future__ import annotations

import asyncio
import re
from dataclasses import dataclass, field
from typing import Any

from awecore.errors import AweError, InvalidQuery, NotFound, Unauthorized
from awecore.ids import parse_oid
from awecore.lineage import Graph, Node, StaleEdge, Staleness
from awecore.model import (
    ClassInfo,
    Query,
    class_from_schema,
    parse_query,
    registry,
)
from awecore.pipelines import QC
from awecore.records import CurationChange, ObjectOut

from ..deps import Portal

__all__ = ["ClassRow", "ObjectView", "RefLink", "checked_oid", "class_rows",
           "flag_names", "label", "learn_class", "lineage_view", "object_view", "parse",
           "read_record",
           "resolve_refs", "row_values"]

#: how many objects of one reference list are named on the page (the rest are counted)
REF_LIST_SHOWN = 200
#: how many of an object's upstream inputs are read for the flags they pass on
UPSTREAM_READ = 1000
RECORD_FIELDS = ("oid", "type", "project", "site", "privileges", "is_valid", "quality_flags",
                 "timestamp_start", "timestamp_end", "filename", "creator", "creation_date",
                 "software_version")


def flag_names(flags: int) -> list[str]:
    """The names of the QC bits set in ``flags`` (an unknown bit by its value)."""
    names = [f.name or str(f.value) for f in QC if flags & f.value]
    known = sum(f.value for f in QC)
    if flags & ~known:
        names.append(f"bits {flags & ~known:#x}")
    return names


@dataclass
class ClassRow:
    name: str
    bases: list[str]
    abstract: bool
    count: int | None
    error: str | None = None


async def class_rows(p: Portal, counted: bool = True) -> list[ClassRow]:
    """Every class of the catalogue's model, with how many objects of it (subclasses
    included) this user may see when ``counted``.

    Each object is counted once, by its own class (the catalogue's ``GET /counts``: one
    statement), and a class's figure is the sum over itself and its subclasses: counting
    every class with its subclasses would count an object once per ancestor."""
    classes: dict[str, Any] = await p.catalog_api.get("/classes")
    if not counted:
        return [ClassRow(name, list(info.get("bases") or [])[:1], bool(info.get("abstract")),
                         None) for name, info in classes.items()]
    got: dict[str, int] = await p.catalog_api.get("/counts")
    rows = []
    for name, info in classes.items():
        mine = [n for n, i in classes.items() if n == name or name in (i.get("bases") or [])]
        rows.append(ClassRow(name, list(info.get("bases") or [])[:1],
                             bool(info.get("abstract")), sum(got.get(n, 0) for n in mine)))
    return rows


_UNKNOWN = re.compile(r"unknown class '([A-Za-z_][A-Za-z0-9_]*)'")


async def learn_class(p: Portal, name: str) -> bool:
    """Build a class someone registered with the catalogue (``POST /classes``) that this
    process has not imported, with its registered bases, as the Python client does; False
    when the catalogue does not know it either."""
    if name in registry:
        return True
    try:
        info = ClassInfo.model_validate(await p.catalog_api.get(f"/classes/{name}"))
    except NotFound:
        return False
    for base in info.spec.bases:
        if base not in registry and not await learn_class(p, base):
            return False
    class_from_schema(info.spec)
    return True


async def parse(p: Portal, text: str) -> Query[Any]:
    """A DSL expression as ``awe query`` reads it; a registered class this process has not
    met yet is learnt from the catalogue first."""
    for _ in range(4):  # a query names few classes
        try:
            return parse_query(text)
        except InvalidQuery as exc:
            unknown = _UNKNOWN.search(exc.detail)
            if unknown is None or not await learn_class(p, unknown.group(1)):
                raise
        except (ValueError, TypeError, AttributeError) as exc:
            # what the parser does not word itself (a call it does not take on a class...)
            raise InvalidQuery(f"not a query this language takes: {exc}") from None
    return parse_query(text)


async def resolve_refs(p: Portal, records: list[ObjectOut],
                       names: tuple[str, ...] = ("chip", "filter")) -> dict[str, ObjectOut]:
    """The records the single references ``names`` of ``records`` point to, in one call."""
    oids = {r.refs[n] for r in records for n in names if isinstance(r.refs.get(n), str)}
    return await p.catalog.get_records(sorted(oids)) if oids else {}  # type: ignore[arg-type]


def _value(record: ObjectOut, path: str, linked: dict[str, ObjectOut]) -> Any:
    if "." in path:
        ref, sub = path.split(".", 1)
        target = record.refs.get(ref)
        got = linked.get(target) if isinstance(target, str) else None
        return None if got is None else got.attributes.get(sub)
    if path in RECORD_FIELDS:
        return getattr(record, path)
    return record.attributes.get(path)


def row_values(records: list[ObjectOut], columns: list[str],
               linked: dict[str, ObjectOut]) -> list[dict[str, Any]]:
    return [{c: _value(r, c, linked) for c in columns} for r in records]


def label(record: ObjectOut | Node | None, oid: str) -> str:
    """How an object is named in a link: its name or file, else its class and oid."""
    if record is None:
        return oid
    if isinstance(record, ObjectOut):
        name = record.attributes.get("name") or record.filename
    else:
        name = record.filename
    if name and "/" in str(name):
        name = str(name).rsplit("/", 1)[-1]  # the file, not the folders named by class
    return f"{record.type} {name}" if name else f"{record.type} {oid[:13]}…"


@dataclass
class RefLink:
    oid: str
    name: str  # the reference's name (bias, raw, frames...)
    label: str
    type: str | None
    is_valid: int | None


@dataclass
class StaleLine:
    depth: int
    text: str
    oid: str | None = None


@dataclass
class ObjectView:
    """The object page proper: what the catalog says of the object and its neighbours."""

    record: ObjectOut
    attributes: list[tuple[str, Any]]
    refs_out: list[tuple[str, list[RefLink], int]]  # name, links shown, how many in all
    refs_in: list[RefLink]  # at most REF_LIST_SHOWN of them
    refs_in_total: int
    own_flags: list[str]
    history: list[CurationChange]
    problems: list[str] = field(default_factory=list)  # parts that could not be shown


@dataclass
class LineageView:
    """The object's lineage part (loaded after the page: walking the whole graph and
    judging staleness costs more than the rest of the page together)."""

    record: ObjectOut
    inherited: list[tuple[ObjectOut, list[str]]]  # inputs with flags or not valid
    inherited_flags: int
    upstream: Graph | None
    downstream: Graph | None
    staleness: Staleness | None
    stale_lines: list[StaleLine]
    problems: list[str] = field(default_factory=list)


def _stale_lines(edges: list[StaleEdge], depth: int = 0) -> list[StaleLine]:
    out: list[StaleLine] = []
    for edge in edges:
        if not edge.reasons:
            continue  # an input that is fine: only those that make it stale are listed
        out.append(StaleLine(depth, f"input {edge.name} ({edge.input_type}): "
                             + "; ".join(edge.reasons), edge.input))
        out.extend(_stale_lines(edge.upstream, depth + 1))
    return out


async def _maybe(what: str, problems: list[str], call: Any) -> Any:
    """One part of the page: its answer, or None with a line saying why it is missing
    (lineage may not have followed a new object yet; the rest of the page still shows)."""
    try:
        return await call
    except AweError as exc:
        problems.append(f"{what}: {exc.detail}")
        return None


def checked_oid(text: str) -> str:
    """An oid from a URL in its canonical form: anything else is a 404 here, as it is at
    the catalog (and never becomes another path of the catalog's)."""
    try:
        return str(parse_oid(text))
    except ValueError as exc:
        raise NotFound(f"no object {text[:100]!r}: {exc}") from None


async def read_record(p: Portal, oid: str) -> ObjectOut:
    """One object as the user may see it (NotFound otherwise, as the catalog says)."""
    return ObjectOut.model_validate(await p.catalog_api.get(f"/objects/{checked_oid(oid)}"))


async def object_view(p: Portal, oid: str) -> ObjectView:
    """The object page. The object itself must be visible to the user (NotFound otherwise,
    as the catalog says); what lineage adds is shown when it can be."""
    record = await read_record(p, oid)
    oid = record.oid
    problems: list[str] = []
    # the records to name: what it references (a page's worth per list)
    shown: dict[str, list[str]] = {}
    for name, ref in record.refs.items():
        shown[name] = [ref] if isinstance(ref, str) else ref[:REF_LIST_SHOWN]
    wanted = sorted({o for oids in shown.values() for o in oids})
    down_raw, history_raw, records = await asyncio.gather(
        _maybe("what was made from it", problems,
               p.lineage.get(f"/lineage/{oid}/downstream", depth=1)),
        _maybe("history", problems, _history(p, oid)),
        p.catalog.get_records(wanted) if wanted else _none())
    records = records or {}
    history = [CurationChange.model_validate(h) for h in history_raw or []]

    def link(target: str, name: str) -> RefLink:
        got = records.get(target)
        return RefLink(target, name, label(got, target), got.type if got else None,
                       got.is_valid if got else None)

    refs_out = [(name, [link(o, name) for o in oids],
                 1 if isinstance(record.refs[name], str) else len(record.refs[name]))
                for name, oids in shown.items()]
    refs_in: list[RefLink] = []
    if down_raw:
        downstream = Graph.model_validate(down_raw)
        nodes = {n.oid: n for n in downstream.nodes}
        for edge in downstream.edges:
            if edge.dst == oid and edge.src in nodes:
                node = nodes[edge.src]
                refs_in.append(RefLink(node.oid, edge.name, label(node, node.oid), node.type,
                                       node.is_valid))
    order = list(registry.get(record.type).fields) if record.type in registry else []
    attributes = sorted(record.attributes.items(),
                        key=lambda kv: (order.index(kv[0]) if kv[0] in order else len(order),
                                        kv[0]))
    return ObjectView(record=record, attributes=attributes, refs_out=refs_out,
                      refs_in=refs_in[:REF_LIST_SHOWN], refs_in_total=len(refs_in),
                      own_flags=flag_names(record.quality_flags), history=history,
                      problems=problems)


async def _none() -> None:
    return None


async def _history(p: Portal, oid: str) -> Any:
    """The object's curation history; none for an anonymous visitor when the catalog
    keeps it for signed-in users (a 401 there is no reason to send them to sign in)."""
    try:
        return await p.catalog_api.get(f"/objects/{oid}/history")
    except Unauthorized:
        if p.token is None:
            return []
        raise


async def lineage_view(p: Portal, oid: str) -> LineageView:
    """The lineage part of the object page: the graph up and down, why it is stale, and
    the QC flags and verdicts its inputs pass on."""
    record = await read_record(p, oid)
    oid = record.oid
    problems: list[str] = []
    up_raw, down_raw, stale_raw = await asyncio.gather(
        _maybe("upstream lineage", problems, p.lineage.get(f"/lineage/{oid}/upstream")),
        _maybe("downstream lineage", problems, p.lineage.get(f"/lineage/{oid}/downstream")),
        _maybe("staleness", problems, p.lineage.get(f"/lineage/{oid}/staleness")))
    upstream = Graph.model_validate(up_raw) if up_raw else None
    downstream = Graph.model_validate(down_raw) if down_raw else None
    staleness = Staleness.model_validate(stale_raw) if stale_raw else None
    inputs = [n.oid for n in (upstream.nodes if upstream else []) if n.oid != oid]
    records = await p.catalog.get_records(inputs[:UPSTREAM_READ]) if inputs else {}
    inherited = [(records[o], flag_names(records[o].quality_flags)) for o in inputs
                 if o in records and (records[o].quality_flags or records[o].is_valid == 0)]
    inherited_flags = 0
    for got, _ in inherited:
        inherited_flags |= got.quality_flags
    return LineageView(
        record=record, inherited=inherited, inherited_flags=inherited_flags,
        upstream=upstream, downstream=downstream, staleness=staleness,
        stale_lines=_stale_lines(staleness.edges) if staleness else [], problems=problems)
