"""``awe get CLASS --date --chip [--filter] [--raw] [--dry-run]``: a target, made if needed."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.console import Console

console = Console()


def get(
    cls: Annotated[str, typer.Argument(help="e.g. HotPixelMap, MasterFlatFrame")],
    date: Annotated[str, typer.Option(help="the night, YYYY-MM-DD")],
    chip: Annotated[str, typer.Option(help="chip name, e.g. ccd53")],
    filter: Annotated[str | None, typer.Option(help="filter name, for flats and frames")] = None,
    raw: Annotated[str | None, typer.Option(help="the raw frame of a ReducedScienceFrame")] =
    None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="only show the plan")] = False,
) -> None:
    """The best up-to-date target: used if it exists and is current, made (with everything
    beneath it that is missing or stale) if not. --dry-run shows the plan and why."""
    from .. import targets

    plan = targets.plan(cls, date, chip, filter, raw)
    for node in plan.nodes.values():
        style = "green" if node.action == "use" else "yellow"
        console.print(f"[{style}]{node.describe()}[/]", highlight=False)
    if dry_run:
        console.print(f"{len(plan.to_make)} to make")
        return
    obj = targets.get(cls, date, chip, filter, raw)
    assert obj.record is not None
    console.print(f"[bold]{cls}[/] {obj.record.oid} {obj.record.filename or ''}")


def register(app: typer.Typer) -> None:
    app.command()(get)
