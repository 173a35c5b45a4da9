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


def jobs(
    status: Annotated[str | None, typer.Option(help="waiting, ready, running, done, failed")]
    = None,
    limit: Annotated[int, typer.Option(help="at most this many")] = 50,
    log: Annotated[str | None, typer.Option(help="print the log of this job")] = None,
) -> None:
    """The compute service's jobs, newest first (or one job's log)."""
    from rich.table import Table

    from ..client import ComputeClient, settings_from_env
    from ..errors import ServiceUnavailable

    env = settings_from_env()
    if "AWE_COMPUTE_URL" not in env:
        raise ServiceUnavailable("no compute address: set AWE_COMPUTE_URL or run `awe up`")
    client = ComputeClient(env["AWE_COMPUTE_URL"], env.get("AWE_TOKEN"))
    if log:
        typer.echo(client.log(log))
        return
    page = client.jobs(status, 0, limit)
    table = Table(title=f"{len(page.jobs)} jobs" + (f" ({status})" if status else ""))
    for col in ("job", "target", "status", "tries", "product", "error"):
        table.add_column(col, overflow="fold")
    for j in page.jobs:
        what = f"{j.cls} {j.chip}" + (f"/{j.filter}" if j.filter else "") + f" {j.night}"
        table.add_row(j.id[:8], what, j.status, str(j.attempts), j.product, j.error or "")
    console.print(table)


def register(app: typer.Typer) -> None:
    app.command()(get)
    app.command()(jobs)
