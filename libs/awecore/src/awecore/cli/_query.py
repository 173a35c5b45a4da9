"""``awe query EXPR`` and ``awe shell``."""

from __future__ import annotations

from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from ..query import parse_query

console = Console()
#: matplotlib's backends that only write files (what it picks where there is no display)
_FILE_BACKENDS = frozenset({"agg", "cairo", "pdf", "pgf", "ps", "svg", "template"})


def query(
    expression: Annotated[str, typer.Argument(help="e.g. \"RawFrame.chip.name == 'ccd53'\"")],
    count: Annotated[bool, typer.Option("--count", help="print only the number")] = False,
    oids: Annotated[bool, typer.Option("--oids", help="print one oid per line")] = False,
    limit: Annotated[int, typer.Option(help="at most this many rows")] = 50,
    columns: Annotated[str | None, typer.Option(
        help="comma-separated columns; dotted paths follow references")] = None,
) -> None:
    """Run a DSL expression against the catalog and print the result."""
    from ..client import current, to_table
    from ..sources import Source

    q = parse_query(expression)
    q._session = current()
    if count:
        typer.echo(len(q))
        return
    if q.root is Source:
        if oids:
            raise typer.BadParameter("sources have no oids: leave out --oids")
        sources = q.limit(limit).to_table(columns.split(",") if columns else None)
        _print(sources, f"Source: {len(sources)} shown")
        return
    if oids:
        for obj in q.limit(limit) if limit else q:
            assert obj.record is not None
            typer.echo(obj.record.oid)
        return
    rows = list(q.limit(limit))
    table = to_table(rows, q.root, columns.split(",") if columns else None)
    _print(table, f"{q.root.__name__}: {len(rows)} shown")


def _print(table: Any, title: str) -> None:
    out = Table(title=title)
    for name in table.colnames:
        out.add_column(name, overflow="fold")
    for row in table:
        out.add_row(*(str(v) for v in row))
    console.print(out)


def shell() -> None:
    """An IPython prompt with `awe`, every class of the object model and `pylab` loaded."""
    try:
        import IPython
        from matplotlib import pylab
    except ImportError as exc:
        typer.echo(f"awe shell needs IPython and matplotlib ({exc}): "
                   "pip install 'awecore[shell]'", err=True)
        raise typer.Exit(1) from None

    import awecore as awe
    from awecore.model import registry

    namespace: dict[str, object] = {"awe": awe, "Source": awe.Source, "pylab": pylab,
                                    **{c.__name__: c for c in registry}}
    try:
        client = awe.connect()
        console.print(f"AWE shell, connected to {client.url}. Loaded: `awe`, `pylab` and the "
                      "object model. Try: len(RawFrame.select())", highlight=False)
    except awe.AweError as exc:
        console.print(f"AWE shell (not connected: {exc.detail})")
    # where there is a display, figures show as they are drawn and the prompt stays free
    # (IPython's --matplotlib); without one (Agg) pylab.savefig('plot.png') writes them
    gui = pylab.get_backend().lower() not in _FILE_BACKENDS
    IPython.start_ipython(argv=["--matplotlib"] if gui else [], user_ns=namespace)


def register(app: typer.Typer) -> None:
    app.command()(query)
    app.command()(shell)
