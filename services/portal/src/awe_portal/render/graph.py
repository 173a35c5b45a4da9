"""The lineage graph of an object as SVG: where it came from on the left, what was made
from it on the right, one column per step, each node a link to its object.

The layout is computed here (columns by depth, rows by class and data ID) rather than by
a graph-drawing program, because a provenance graph is layered by construction: a node's
depth from the object is its column. Wide columns (hundreds of raw frames) are cut at
``max_per_column`` with a "+N more" box, so a page stays readable and fast.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from markupsafe import Markup

from awecore.lineage import Graph, Node

from ._svg import FLAG_COLOUR, SVG_OPEN, VALIDITY_COLOUR, esc, validity_label
from .series import object_href

__all__ = ["lineage_svg", "node_label"]

_BOX_W, _BOX_H, _GAP_X, _GAP_Y, _PAD = 178, 38, 56, 10, 12


@dataclass
class _Placed:
    node: Node
    column: int
    row: int = 0


def node_label(node: Node) -> str:
    """What a node is for, in a few words: its data ID without the instrument (chip,
    filter, night, tile, the end of its raw frame's oid), or the end of its own oid when
    it has none."""
    data = dict(node.data_id or {})
    data.pop("instrument", None)
    words = [data[k] for k in ("chip", "filter", "night", "tile") if data.get(k)]
    if data.get("raw"):  # the frames of one night differ by their raw frame only
        words.append("…" + data["raw"][-6:])
    # an oid starts with its time, so objects made together share a start: show its end
    return " ".join(words) if words else "…" + node.oid[-8:]


def _columns(root: str, upstream: Graph | None, downstream: Graph | None
             ) -> dict[str, _Placed]:
    """Each node's column: minus its depth upstream, plus its depth downstream; an
    object met both ways (not possible in a DAG, but cheap to guard) keeps the first."""
    placed: dict[str, _Placed] = {}
    for graph, sign in ((upstream, -1), (downstream, 1)):
        if graph is None:
            continue
        for node in graph.nodes:
            column = 0 if node.oid == root else sign * max(node.depth, 1)
            placed.setdefault(node.oid, _Placed(node, column))
    return placed


def lineage_svg(root: str, upstream: Graph | None = None, downstream: Graph | None = None,
                *, href: Callable[[str], str] = object_href,
                max_per_column: int = 25) -> Markup:
    """The graph around ``root`` as inline SVG (safe to put in a page).

    ``upstream`` and ``downstream`` are the lineage service's answers to
    ``GET /lineage/{oid}/upstream`` and ``/downstream`` (either may be None). Edges point
    from an input to what was made from it and carry the reference's name as a tooltip."""
    placed = _columns(root, upstream, downstream)
    if root not in placed:
        return Markup(SVG_OPEN + 'class="awe-lineage" '
                      'width="320" height="40"><text x="8" y="24" font-size="12" '
                      'fill="#666">no lineage recorded</text></svg>')
    by_column: dict[int, list[_Placed]] = {}
    for p in placed.values():
        by_column.setdefault(p.column, []).append(p)
    hidden: dict[int, list[_Placed]] = {}
    for column, items in by_column.items():
        items.sort(key=lambda p: (p.node.type, node_label(p.node), p.node.oid))
        if len(items) > max_per_column:
            hidden[column] = items[max_per_column - 1:]
            del items[max_per_column - 1:]
        for row, p in enumerate(items):
            p.row = row
    shown = {p.node.oid: p for items in by_column.values() for p in items}
    first = min(by_column)
    rows = max(len(items) + (1 if c in hidden else 0) for c, items in by_column.items())
    width = _PAD * 2 + (max(by_column) - first + 1) * (_BOX_W + _GAP_X) - _GAP_X
    height = _PAD * 2 + rows * (_BOX_H + _GAP_Y) - _GAP_Y

    def box_xy(p: _Placed) -> tuple[float, float]:
        count = len(by_column[p.column]) + (1 if p.column in hidden else 0)
        offset = (rows - count) * (_BOX_H + _GAP_Y) / 2  # centre each column
        return (_PAD + (p.column - first) * (_BOX_W + _GAP_X),
                _PAD + offset + p.row * (_BOX_H + _GAP_Y))

    parts = [SVG_OPEN + f'class="awe-lineage" width="{width}" '
             f'height="{height}" viewBox="0 0 {width} {height}" role="img" '
             'aria-label="lineage graph">',
             '<defs><marker id="awe-arrow" viewBox="0 0 10 10" refX="10" refY="5" '
             'markerWidth="7" markerHeight="7" orient="auto-start-reverse">'
             '<path d="M0,0L10,5L0,10z" fill="#888"/></marker></defs>']
    edges = _edges(upstream, downstream)
    for src, name, dst in edges:  # src was made from dst: the arrow goes dst -> src
        a, b = shown.get(dst), shown.get(src)
        if a is None or b is None:
            continue
        (ax, ay), (bx, by) = box_xy(a), box_xy(b)
        x1, y1 = ax + _BOX_W, ay + _BOX_H / 2
        x2, y2 = bx, by + _BOX_H / 2
        mid = (x1 + x2) / 2
        parts.append(f'<path class="edge" d="M{x1:.1f},{y1:.1f}C{mid:.1f},{y1:.1f} '
                     f'{mid:.1f},{y2:.1f} {x2:.1f},{y2:.1f}" fill="none" stroke="#aaa" '
                     f'marker-end="url(#awe-arrow)"><title>{esc(name)}</title></path>')
    for p in shown.values():
        parts.append(_box(p, *box_xy(p), p.node.oid == root, href(p.node.oid)))
    for column, rest in hidden.items():
        x, y = box_xy(_Placed(rest[0].node, column, len(by_column[column])))
        types = sorted({p.node.type for p in rest})
        parts.append(f'<g class="more"><rect x="{x}" y="{y:.1f}" width="{_BOX_W}" '
                     f'height="{_BOX_H}" rx="5" fill="#fff" stroke="#bbb" '
                     f'stroke-dasharray="4 3"/><text x="{x + _BOX_W / 2}" y="{y + 23:.1f}" '
                     f'font-size="11" text-anchor="middle">+{len(rest)} more '
                     f'{esc(", ".join(types)[:24])}</text></g>')
    parts.append("</svg>")
    return Markup("".join(parts))


def _edges(*graphs: Graph | None) -> list[tuple[str, str, str]]:
    seen: dict[tuple[str, str, str], None] = {}
    for graph in graphs:
        if graph is not None:
            for e in graph.edges:
                seen.setdefault((e.src, e.name, e.dst), None)
    return list(seen)


def _box(p: _Placed, x: float, y: float, is_root: bool, link: str) -> str:
    node = p.node
    colour = VALIDITY_COLOUR.get(node.is_valid, "#333")
    stroke = "#111" if is_root else colour
    fill = "#fff4d6" if is_root else "#fff"
    tip = f"{node.type} {node.oid}\n{node_label(node)}\nis_valid {node.is_valid} " \
          f"({validity_label(node.is_valid)}), made by {node.owner}"
    classes = "node root" if is_root else "node"
    bad = (f'<line x1="{x + 4}" y1="{y + _BOX_H - 4}" x2="{x + _BOX_W - 4}" y2="{y + 4}" '
           f'stroke="{FLAG_COLOUR}" stroke-opacity="0.35"/>' if node.is_valid == 0 else "")
    return (f'<a href="{esc(link)}" class="{classes}" data-oid="{esc(node.oid)}" '
            f'data-type="{esc(node.type)}" data-valid="{node.is_valid}">'
            f'<title>{esc(tip)}</title><rect x="{x}" y="{y:.1f}" width="{_BOX_W}" '
            f'height="{_BOX_H}" rx="5" fill="{fill}" stroke="{stroke}" '
            f'stroke-width="{2.5 if is_root else 1.5}"/>{bad}'
            f'<text x="{x + 8}" y="{y + 16:.1f}" font-size="12" font-weight="bold">'
            f'{esc(node.type[:24])}</text><text x="{x + 8}" y="{y + 31:.1f}" font-size="11" '
            f'fill="#444">{esc(node_label(node)[:30])}</text></a>')


