"""``awe lineage OID``: where an object came from, or what was made from it."""

from __future__ import annotations

import json
from enum import StrEnum
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.tree import Tree

from ..dimensions import DIMENSIONS
from ..lineage import Graph
from . import _output
from ._output import emit

console = Console()


class Format(StrEnum):
    tree = "tree"
    json = "json"
    csv = "csv"
    prov = "prov"
    openlineage = "openlineage"


def node_rows(graph: Graph) -> list[dict[str, Any]]:
    """The graph as a listing: one row per object, with what it was made from (reference
    name and oid), the root first."""
    made_from: dict[str, list[dict[str, str]]] = {}
    for e in graph.edges:
        made_from.setdefault(e.src, []).append({"name": e.name, "oid": e.dst})
    nodes = sorted(graph.nodes, key=lambda n: n.oid != graph.root)
    return [{**n.model_dump(), "made_from": made_from.get(n.oid, [])} for n in nodes]


#: data IDs shown in the order of the dimension universe
_ORDER = {d: i for i, d in enumerate(DIMENSIONS)}


def render_tree(graph: Graph) -> Tree:
    """The graph as a tree from its root; a node met again is shown once, then referred to."""
    nodes = {n.oid: n for n in graph.nodes}
    children: dict[str, list[tuple[str, str]]] = {}
    for e in graph.edges:
        parent, child = (e.dst, e.src) if graph.direction == "downstream" else (e.src, e.dst)
        children.setdefault(parent, []).append((e.name, child))

    def label(oid: str, via: str = "") -> str:
        n = nodes[oid]
        bad = " [red](invalid)[/]" if n.is_valid == 0 else ""
        file = f" [dim]{n.filename}[/]" if n.filename else ""
        # what it is for, but the raw frame (its oid is the child shown beneath)
        data_id = ", ".join(f"{k}={v}" for k, v in sorted(
            (n.data_id or {}).items(), key=lambda kv: _ORDER.get(kv[0], 99)) if k != "raw")
        what = f" [cyan]{{{data_id}}}[/]" if data_id else ""
        return f"{via}[bold]{n.type}[/]{what} {oid}{bad}{file}"

    when = f" [dim](as it was at {graph.at.isoformat()})[/]" if graph.at else ""
    root = Tree(label(graph.root) + when)
    seen = {graph.root}

    def grow(tree: Tree, oid: str) -> None:
        for name, child in children.get(oid, []):
            if child not in nodes:
                continue
            if child in seen:
                tree.add(label(child, f"{name}: ") + " [dim](shown above)[/]")
                continue
            seen.add(child)
            grow(tree.add(label(child, f"{name}: ")), child)

    grow(root, graph.root)
    return root


def lineage(
    oid: str,
    down: Annotated[bool, typer.Option("--down", help="what was made from it")] = False,
    depth: Annotated[int | None, typer.Option(help="steps to follow")] = None,
    format: Annotated[Format, typer.Option(
        case_sensitive=False, help="tree; json or csv (one object per row, with what it was "
        "made from); prov (PROV-JSON) or openlineage")] = Format.tree,
    at: Annotated[str | None, typer.Option(
        help="the tree as it was at this time (ISO 8601, UTC if no zone)")] = None,
) -> None:
    """The lineage of an object: upstream to the raw data (default) or downstream.

    OID may be a unique start of the oid (looked up in the catalog)."""
    from ..client import LineageClient, current, settings_from_env
    from ..errors import ServiceUnavailable

    env = settings_from_env()
    if "AWE_LINEAGE_URL" not in env:
        raise ServiceUnavailable("no lineage address: set AWE_LINEAGE_URL or run `awe up`")
    if at is not None and format in (Format.prov, Format.openlineage):
        raise typer.BadParameter("--at shows the graph as a tree, json or csv",
                                 param_hint="--at")
    if len(oid.replace("-", "")) < 32:  # the start of an oid: the catalog knows the rest
        oid = current().resolve_oid(oid)
    client = LineageClient(env["AWE_LINEAGE_URL"], env.get("AWE_TOKEN"))
    if format is Format.prov:
        typer.echo(json.dumps(client.prov(oid, down), indent=1))
    elif format is Format.openlineage:
        typer.echo(json.dumps(client.openlineage(oid), indent=1))
    else:
        graph = (client.downstream(oid, depth, at) if down
                 else client.upstream(oid, depth, at))
        if format is Format.tree:
            console.print(render_tree(graph))
        else:
            emit(node_rows(graph), _output.Format(format.value))


def register(app: typer.Typer) -> None:
    app.command()(lineage)
