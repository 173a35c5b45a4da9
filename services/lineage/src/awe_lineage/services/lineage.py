"""Questions asked of the graph: upstream, downstream, impact, staleness, paths, exports."""

from __future__ import annotations

import datetime as dt
from typing import Any

import asyncpg
from prov.model import ProvDocument

from awecore.errors import NotFound
from awecore.ids import parse_oid
from awecore.lineage import Graph, Impact, Path, StaleEdge, Staleness
from awecore.server import Identity as Caller
from awecore.staleness import InputState, covers, input_reasons, moment, own_reasons
from awecore.users import qualify
from awecore.visibility import HIDDEN_OID

from ..storage.graph import GraphStore

__all__ = ["LineageService", "openlineage_events", "prov_document"]

MAX_DEPTH = 100
AWE_NS = "urn:awe:object:"


def _oid(value: str) -> str:
    try:
        return str(parse_oid(value))
    except ValueError as exc:
        raise NotFound(str(exc)) from None


class LineageService:
    def __init__(self, pool: asyncpg.Pool, site: str) -> None:
        self.pool = pool
        self.site = site

    async def graph(self, oid: str, caller: Caller, down: bool, depth: int = MAX_DEPTH,
                    at: dt.datetime | None = None) -> Graph:
        """The graph from ``oid``; ``at`` a past time: what existed then, as it was then
        (who may see an object is decided by its privileges now, which only ever rise)."""
        oid = _oid(oid)
        if at is not None:
            if at.tzinfo is None:
                at = at.replace(tzinfo=dt.UTC)  # as everywhere in AWE: UTC if no zone
            at = min(at, dt.datetime.now(dt.UTC))  # the future is as now (and in range)
        async with self.pool.acquire() as conn:
            store = GraphStore(conn)
            node = await store.node(oid, caller)
            if node is None:
                raise NotFound(f"no object {oid} in the lineage graph (or not visible to you)")
            if at is not None and node["creation_date"] > at:
                raise NotFound(
                    f"{node['type']} {oid} did not exist at {at.isoformat()}: it was made at "
                    f"{node['creation_date'].isoformat()}")
            nodes, edges = await store.walk(oid, caller, down, min(depth, MAX_DEPTH), at)
        return Graph(root=oid, direction="downstream" if down else "upstream", nodes=nodes,
                     edges=edges, at=at)

    async def impact(self, oid: str, caller: Caller) -> Impact:
        """Everything made from ``oid``, directly or not: what invalidating it would remake."""
        graph = await self.graph(oid, caller, down=True)
        by_class: dict[str, list[str]] = {}
        for node in graph.nodes[1:]:
            by_class.setdefault(node.type, []).append(node.oid)
        return Impact(root=graph.root, total=len(graph.nodes) - 1, by_class=by_class)

    async def path(self, src: str, dst: str, caller: Caller) -> Path:
        """The chain between two objects, only if the caller may see both ends (the walk
        itself passes only through what the caller may see): the same 404 otherwise, so the
        answer never confirms an object the caller may not see."""
        src, dst = _oid(src), _oid(dst)
        async with self.pool.acquire() as conn:
            store = GraphStore(conn)
            if await store.node(src, caller) is None or await store.node(dst, caller) is None:
                raise NotFound(f"no chain of references between {src} and {dst}")
            chain = await store.path(src, dst, caller)
            if chain is None:
                back = await store.path(dst, src, caller)
                if back is None:
                    raise NotFound(f"no chain of references between {src} and {dst}")
                chain = list(reversed(back))
                names = [n for _, n in back][1:][::-1]
                return Path(src=src, dst=dst, nodes=[o for o, _ in chain], names=names)
        return Path(src=src, dst=dst, nodes=[o for o, _ in chain], names=[n for _, n in chain][1:])

    async def staleness(self, oid: str, caller: Caller) -> Staleness:
        """Whether ``oid`` is out of date, and why, input by input: the rule of
        :mod:`awecore.staleness` on the facts of the graph. An input the caller may not
        see is shown as ``HIDDEN_OID`` of type "hidden", neither walked through nor named
        (nor is a newer calibration the caller may not see)."""
        oid = _oid(oid)
        async with self.pool.acquire() as conn:
            store = GraphStore(conn)
            node = await store.node(oid, caller)
            if node is None:
                raise NotFound(f"no object {oid} in the lineage graph (or not visible to you)")
            newest = await store.newest_version(node["type"])
            reasons = own_reasons(node["type"], node["software_version"], newest,
                                  invalidated=node["is_valid"] == 0)
            edges = await self._edges(store, node, caller, depth=0)
        stale = bool(reasons) or any(e.reasons for e in edges)
        return Staleness(oid=oid, type=node["type"], stale=stale, reasons=reasons, edges=edges)

    async def _edges(self, store: GraphStore, node: asyncpg.Record, caller: Caller,
                     depth: int) -> list[StaleEdge]:
        when = await store.observation_time(node)
        out = []
        for inp in await store.inputs(node["oid_text"], caller):
            if inp["oid_text"] is None:  # an input the caller may not see
                out.append(StaleEdge(name=inp["name"], input=HIDDEN_OID, input_type="hidden",
                                     reasons=[]))
                continue
            # a calibration is no longer the best when a newer valid one covers the time
            newer = (await store.newer_calibration(inp, when, caller)
                     if inp["timestamp_start"] is not None else None)
            upstream = (await self._edges(store, inp, caller, depth + 1)
                        if depth < MAX_DEPTH and not inp["type"].startswith("Raw") else [])
            stale_up = [e for e in upstream if e.reasons]
            # a calibration is never used outside its window: one moved off the time is stale
            uncovered = inp["timestamp_start"] is not None and inp["is_valid"] != 0 and \
                not covers(inp["timestamp_start"], inp["timestamp_end"], when)
            reasons = input_reasons(InputState(
                inp["name"], inp["oid_text"], invalidated=inp["is_valid"] == 0, best=newer,
                stale=stale_up[0].reasons[0] if stale_up else None,
                uncovered=moment(when) if uncovered else None))
            out.append(StaleEdge(name=inp["name"], input=inp["oid_text"], input_type=inp["type"],
                                 reasons=reasons, upstream=stale_up))
        return out


def prov_document(graph: Graph) -> ProvDocument:
    """W3C PROV: objects are entities; making one is an activity that used its inputs."""
    doc = ProvDocument()
    doc.add_namespace("awe", AWE_NS)
    made_from: dict[str, list[tuple[str, str]]] = {}
    for e in graph.edges:
        made_from.setdefault(e.src, []).append((e.name, e.dst))
    for n in graph.nodes:
        doc.entity(f"awe:{n.oid}", {"prov:type": f"awe:{n.type}", "awe:site": n.site,
                                    "awe:is_valid": n.is_valid,
                                    "awe:filename": n.filename or ""})
        # a user is name@site across sites: a same-named user of another site is
        # another agent
        agent = f"awe:user-{qualify(n.creator, n.site)}"
        doc.agent(agent)
        doc.wasAttributedTo(f"awe:{n.oid}", agent)
    for n in graph.nodes:
        if n.oid not in made_from:
            continue
        activity = doc.activity(f"awe:make-{n.oid}", endTime=n.creation_date,
                                other_attributes={"awe:software_version":
                                                  n.software_version or ""})
        doc.wasGeneratedBy(f"awe:{n.oid}", activity)
        for name, dst in made_from[n.oid]:
            doc.used(activity, f"awe:{dst}", other_attributes={"prov:role": name})
            doc.wasDerivedFrom(f"awe:{n.oid}", f"awe:{dst}")
    return doc


def openlineage_events(graph: Graph, site: str) -> list[dict[str, Any]]:
    """One OpenLineage COMPLETE run event per object that was made from others."""
    by_oid = {n.oid: n for n in graph.nodes}
    inputs: dict[str, list[str]] = {}
    for e in graph.edges:
        inputs.setdefault(e.src, []).append(e.dst)
    events = []
    for oid, used in inputs.items():
        n = by_oid[oid]
        events.append({
            "eventType": "COMPLETE",
            "eventTime": n.creation_date.isoformat(),
            "producer": "urn:awe:lineage",
            "schemaURL": "https://openlineage.io/spec/2-0-2/OpenLineage.json#/$defs/RunEvent",
            "run": {"runId": oid},
            "job": {"namespace": f"awe.{site}", "name": f"make-{n.type}"},
            "inputs": [{"namespace": f"awe.{by_oid[u].site if u in by_oid else site}",
                        "name": u, "facets": {}} for u in used],
            "outputs": [{"namespace": f"awe.{n.site}", "name": oid, "facets": {}}],
        })
    return events
