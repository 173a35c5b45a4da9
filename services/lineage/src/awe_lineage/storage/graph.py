"""The graph tables: applying catalog events once and in order, and walking the graph."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

import asyncpg

from awecore.events import CatalogEvent, ObjectCreated, ObjectCurated
from awecore.lineage import Edge, Node
from awecore.model import registry
from awecore.records import ObjectOut
from awecore.server import Identity as Caller
from awecore.visibility import Columns, Viewer, visibility_clause

__all__ = ["GraphStore", "OutOfOrder"]

_NODE_COLS = ("n.oid::text AS oid, n.type, n.site, n.creation_date, n.creator, "
              "n.software_version, n.filename, n.data_id")


#: the curation fields a past view shows as they were: (column, its value at creation, type)
_CURATED = (("is_valid", "created_valid", "smallint"),
            ("privileges", "created_privileges", "smallint"),
            ("timestamp_start", "created_timestamp_start", "timestamptz"),
            ("timestamp_end", "created_timestamp_end", "timestamptz"))


def _state_at(at: dt.datetime | None) -> tuple[str, str]:
    """The select list of the curation fields of node ``n`` at time ``$3``, and the joins
    it needs: the last curation of each field made by then, else the value it was made with
    (a curation may set a field to null, hence the array around its value)."""
    if at is None:
        return ", ".join(f"n.{name}" for name, _, _ in _CURATED), ""
    columns, joins = [], []
    for name, created, kind in _CURATED:
        columns.append(f"CASE WHEN h_{name}.v IS NULL THEN n.{created} "
                       f"ELSE (h_{name}.v ->> 0)::{kind} END AS {name}")
        joins.append(f"LEFT JOIN LATERAL (SELECT jsonb_build_array(c.changes -> '{name}') AS v"
                     f" FROM curations c WHERE c.oid = n.oid AND c.time <= $3"
                     f" AND c.changes ? '{name}' ORDER BY c.time DESC, c.seq DESC LIMIT 1)"
                     f" h_{name} ON TRUE")
    return ", ".join(columns), " ".join(joins)


class OutOfOrder(Exception):
    """An event arrived before the ones preceding it: catch up first."""

    def __init__(self, last: int, got: int) -> None:
        super().__init__(f"applied up to {last}, got {got}")
        self.last = last


def _when(value: Any) -> dt.datetime | None:
    if isinstance(value, str):
        when = dt.datetime.fromisoformat(value)
        return when if when.tzinfo else when.replace(tzinfo=dt.UTC)
    return None


class GraphStore:
    def __init__(self, conn: asyncpg.Connection) -> None:
        self.conn = conn

    # -- applying events -----------------------------------------------------------------
    async def last_applied(self) -> int:
        return int(await self.conn.fetchval("SELECT last_seq FROM cursor WHERE name = 'catalog'"))

    async def apply(self, event: CatalogEvent) -> bool:
        """Apply one event in its own transaction; False if it was applied before."""
        async with self.conn.transaction():
            last = int(await self.conn.fetchval(
                "SELECT last_seq FROM cursor WHERE name = 'catalog' FOR UPDATE"))
            if event.sequence <= last:
                return False
            if event.sequence != last + 1:
                raise OutOfOrder(last, event.sequence)
            if isinstance(event.data, ObjectCreated):
                await self._created(event)
            else:
                await self._curated(event)
            await self.conn.execute("UPDATE cursor SET last_seq = $1 WHERE name = 'catalog'",
                                    event.sequence)
        return True

    async def _created(self, event: CatalogEvent) -> None:
        assert isinstance(event.data, ObjectCreated)
        o = event.data.object
        oid = uuid.UUID(o.oid)
        refs = o.refs
        chip = refs.get("chip")
        filt = refs.get("filter")
        name = o.attributes.get("name")
        await self.conn.execute(
            "INSERT INTO nodes (oid, type, site, creation_date, creator, project, privileges, "
            " is_valid, created_valid, software_version, timestamp_start, timestamp_end, "
            " date_obs, chip, filter, filename, seq, created_privileges, "
            " created_timestamp_start, created_timestamp_end, object_name, data_id) "
            "VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$8,$9,$10,$11,$12,$13,$14,$15,$16,$7,$10,$11,"
            " $17,$18) ON CONFLICT (oid) DO NOTHING",
            oid, o.type, o.site, o.creation_date, o.creator, o.project, o.privileges,
            o.is_valid, o.software_version, o.timestamp_start, o.timestamp_end,
            _when(o.attributes.get("date_obs")),
            uuid.UUID(chip) if isinstance(chip, str) else None,
            uuid.UUID(filt) if isinstance(filt, str) else None, o.filename, event.sequence,
            name if isinstance(name, str) else None, await self._data_id(o))
        rows: list[tuple[uuid.UUID, str, int, uuid.UUID]] = []
        for name, value in refs.items():
            targets = value if isinstance(value, list) else [value]
            rows.extend((oid, name, pos, uuid.UUID(t)) for pos, t in enumerate(targets))
        if rows:
            await self.conn.executemany(
                "INSERT INTO edges (src, name, pos, dst) VALUES ($1, $2, $3, $4) "
                "ON CONFLICT DO NOTHING", rows)

    async def _data_id(self, o: ObjectOut) -> dict[str, str] | None:
        """What the object is for, by its class's dimensions: the names of its instrument,
        chip and filter (nodes made before it), its night (of its exposure, or the middle
        of a calibration's window), its raw frame. None for a class without dimensions."""
        dimensions: tuple[str, ...] = getattr(
            registry.get(o.type) if o.type in registry else None, "dimensions", ())
        if not dimensions:
            return None
        refs: dict[str, str] = {d: v for d in ("instrument", "chip", "filter", "raw")
                                if d in dimensions and isinstance(v := o.refs.get(d), str)}
        known = {str(r["oid"]): r for r in await self.conn.fetch(
            "SELECT oid, object_name, date_obs, data_id FROM nodes WHERE oid = ANY($1::uuid[])",
            [uuid.UUID(v) for v in refs.values()])} if refs else {}
        out: dict[str, str] = {}
        for d in dimensions:
            if d in ("instrument", "chip", "filter") and d in refs:
                row = known.get(refs[d])
                out[d] = row["object_name"] if row is not None and row["object_name"] else refs[d]
            elif d == o.type.lower() and isinstance(o.attributes.get("name"), str):
                out[d] = str(o.attributes["name"])  # a chip's own name is its chip
            elif d == "night":
                raw = known.get(refs.get("raw", ""))
                night = _night(o, raw["date_obs"] if raw is not None else None)
                if night is not None:
                    out[d] = night.isoformat()
            elif d in refs:
                out[d] = refs[d]
            elif isinstance(o.attributes.get(d), str):
                out[d] = str(o.attributes[d])
        raw_row = known.get(refs.get("raw", ""))
        inherited = (raw_row["data_id"] or {}) if raw_row is not None else {}
        for d in dimensions:  # what a product of one raw frame lacks, its raw frame says
            if d not in out and isinstance(inherited.get(d), str):
                out[d] = inherited[d]
        return out

    async def _curated(self, event: CatalogEvent) -> None:
        assert isinstance(event.data, ObjectCurated)
        changes = event.data.changes.changed()
        oid = uuid.UUID(event.data.oid)
        await self.conn.execute(
            "INSERT INTO curations (seq, oid, time, changes) VALUES ($1, $2, $3, $4) "
            "ON CONFLICT DO NOTHING", event.sequence, oid, event.time,
            event.data.changes.model_dump(mode="json", exclude_unset=True))
        for name in ("is_valid", "privileges", "timestamp_start", "timestamp_end"):
            if name in changes:
                await self.conn.execute(f"UPDATE nodes SET {name} = $2 WHERE oid = $1",
                                        oid, changes[name])

    # -- walking -------------------------------------------------------------------------
    @staticmethod
    def _visible(caller: Caller, alias: str, first: int) -> tuple[str, list[Any]]:
        """Whether the caller may see node ``alias`` by its privileges now (the rule is
        awecore.visibility's, as in the catalogue); parameters from ``$first``."""
        return visibility_clause(Viewer.of(caller), Columns.at(alias), first)

    async def node(self, oid: str, caller: Caller) -> asyncpg.Record | None:
        vis, params = self._visible(caller, "n", 2)
        return await self.conn.fetchrow(
            f"SELECT n.*, n.oid::text AS oid_text FROM nodes n WHERE n.oid = $1 AND {vis}",
            uuid.UUID(oid), *params)

    async def walk(self, oid: str, caller: Caller, down: bool, depth: int,
                   at: dt.datetime | None) -> tuple[list[Node], list[Edge]]:
        """Upstream (what it was made from) or downstream (what was made from it); with
        ``at``, only what existed then, each with its curation fields as they were then."""
        here, there = ("dst", "src") if down else ("src", "dst")
        vis, params = self._visible(caller, "n", 4)
        state, history = _state_at(at)
        rows = await self.conn.fetch(
            f"WITH RECURSIVE walk(oid, depth) AS ("
            f"  SELECT $1::uuid, 0"
            f"  UNION"
            f"  SELECT e.{there}, w.depth + 1 FROM walk w"
            f"  JOIN edges e ON e.{here} = w.oid"
            f"  JOIN nodes n ON n.oid = e.{there}"
            f"  WHERE w.depth < $2 AND ($3::timestamptz IS NULL OR n.creation_date <= $3)"
            f"    AND {vis}"
            f"), reached AS (SELECT oid, min(depth) AS depth FROM walk GROUP BY oid)"
            f" SELECT {_NODE_COLS}, {state}, r.depth"
            f"  FROM reached r JOIN nodes n ON n.oid = r.oid {history}"
            f"  WHERE ($3::timestamptz IS NULL OR n.creation_date <= $3)"
            f"  ORDER BY r.depth, n.creation_date",
            uuid.UUID(oid), depth, at, *params)
        nodes = [Node(**dict(r)) for r in rows]
        ids = [uuid.UUID(n.oid) for n in nodes]
        edges = await self.conn.fetch(
            "SELECT src::text AS src, name, dst::text AS dst FROM edges "
            "WHERE src = ANY($1::uuid[]) AND dst = ANY($1::uuid[]) ORDER BY src, name, pos", ids)
        return nodes, [Edge(**dict(e)) for e in edges]

    async def path(self, src: str, dst: str, caller: Caller) -> list[tuple[str, str]] | None:
        """The shortest chain of references from ``src`` up to ``dst``, as (oid, name)."""
        vis, params = self._visible(caller, "n", 3)
        row = await self.conn.fetchrow(
            f"WITH RECURSIVE walk(oid, trail, names) AS ("
            f"  SELECT $1::uuid, ARRAY[$1::uuid], ARRAY[]::text[]"
            f"  UNION ALL"
            f"  SELECT e.dst, w.trail || e.dst, w.names || e.name FROM walk w"
            f"  JOIN edges e ON e.src = w.oid JOIN nodes n ON n.oid = e.dst"
            f"  WHERE NOT e.dst = ANY(w.trail) AND cardinality(w.trail) < 64 AND {vis}"
            f") SELECT trail::text[] AS trail, names FROM walk WHERE oid = $2"
            f"  ORDER BY cardinality(trail) LIMIT 1",
            uuid.UUID(src), uuid.UUID(dst), *params)
        if row is None:
            return None
        return list(zip(row["trail"], ["", *row["names"]], strict=True))

    async def inputs(self, oid: str, caller: Caller) -> list[asyncpg.Record]:
        """The inputs of ``oid``; one the caller may not see comes as its edge's name alone
        (every node column NULL, ``oid_text`` too)."""
        vis, params = self._visible(caller, "v", 2)
        return list(await self.conn.fetch(
            f"SELECT e.name, n.*, n.oid::text AS oid_text FROM edges e "
            f"JOIN nodes v ON v.oid = e.dst LEFT JOIN nodes n ON n.oid = e.dst AND {vis} "
            f"WHERE e.src = $1 ORDER BY e.name, e.pos",
            uuid.UUID(oid), *params))

    async def newer_calibration(self, input_: asyncpg.Record, when: dt.datetime,
                                caller: Caller) -> str | None:
        """A valid calibration of the same kind, chip and filter for ``when``, made later,
        that the caller may see."""
        vis, params = self._visible(caller, "n", 7)
        row = await self.conn.fetchrow(
            f"SELECT oid::text FROM nodes n WHERE type = $1 AND chip IS NOT DISTINCT FROM $2 "
            f"AND filter IS NOT DISTINCT FROM $3 AND is_valid = 1 AND timestamp_start <= $4 "
            f"AND timestamp_end >= $4 AND (creation_date, oid) > ($5, $6) AND {vis} "
            f"ORDER BY creation_date DESC LIMIT 1",
            input_["type"], input_["chip"], input_["filter"], when, input_["creation_date"],
            input_["oid"], *params)
        return None if row is None else str(row[0])

    async def newest_version(self, type_: str) -> str | None:
        value = await self.conn.fetchval(
            "SELECT software_version FROM nodes WHERE type = $1 AND software_version IS NOT NULL "
            "ORDER BY creation_date DESC LIMIT 1", type_)
        return None if value is None else str(value)

    async def observation_time(self, node: asyncpg.Record) -> dt.datetime:
        """When the data behind a node was taken: its own, or its raw inputs' (not through
        the calibrations it used: those may be of another night)."""
        if node["date_obs"] is not None:
            return node["date_obs"]  # type: ignore[no-any-return]
        value = await self.conn.fetchval(
            "WITH RECURSIVE up(oid) AS (SELECT $1::uuid UNION "
            " SELECT e.dst FROM up JOIN edges e ON e.src = up.oid "
            " JOIN nodes d ON d.oid = e.dst WHERE d.timestamp_start IS NULL) "
            "SELECT min(n.date_obs) FROM up JOIN nodes n ON n.oid = up.oid", node["oid"])
        if value is not None:
            return value  # type: ignore[no-any-return]
        if node["timestamp_start"] is not None:
            return node["timestamp_start"] + (node["timestamp_end"] - node["timestamp_start"]) / 2  # type: ignore[no-any-return]
        return node["creation_date"]  # type: ignore[no-any-return]


def _night(o: ObjectOut, raw_time: dt.datetime | None) -> dt.date | None:
    """The night (noon to noon UTC) of an exposure, its raw frame's, or the middle of a
    validity window."""
    when = _when(o.attributes.get("date_obs")) or raw_time
    if when is None and o.timestamp_start is not None and o.timestamp_end is not None:
        when = o.timestamp_start + (o.timestamp_end - o.timestamp_start) / 2
    if when is None:
        return None
    return (when.astimezone(dt.UTC) - dt.timedelta(hours=12)).date()
