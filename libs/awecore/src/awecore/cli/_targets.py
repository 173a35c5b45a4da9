"""``awe get CLASS --date --chip [--filter] [--raw] [--dry-run] [--privileges N] [--project P]``
(or ``--data-id key=value`` ...): a target, made if needed (what is made is yours);
``awe jobs [log|cancel|retry]``: the jobs that make them."""

from __future__ import annotations

from enum import StrEnum
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console

from ..jobs import JobOut, Ownership
from ._output import Format, FormatOption, emit, show_table

if TYPE_CHECKING:
    from ..client import ComputeClient

console = Console()


class JobStatus(StrEnum):
    waiting = "waiting"
    ready = "ready"
    running = "running"
    done = "done"
    failed = "failed"
    cancelled = "cancelled"


def get(
    cls: Annotated[str, typer.Argument(help="e.g. HotPixelMap, MasterFlatFrame")],
    date: Annotated[str | None, typer.Option(help="the night, YYYY-MM-DD")] = None,
    chip: Annotated[str | None, typer.Option(help="chip name, e.g. ccd53")] = None,
    filter: Annotated[str | None, typer.Option(help="filter name, for flats and frames")] = None,
    raw: Annotated[str | None, typer.Option(help="the raw frame of a ReducedScienceFrame")] =
    None,
    data_id: Annotated[list[str] | None, typer.Option(
        "--data-id", help="the target by dimension, key=value (repeat): night, chip, "
        "filter, raw; e.g. --data-id night=2003-02-14 --data-id chip=ccd53")] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="only show the plan")] = False,
    privileges: Annotated[int, typer.Option(
        min=1, max=5, help="who may see what is made: 1 you (default), 2 your project, "
        "3 this site, 4 every site, 5 the world")] = 1,
    project: Annotated[str | None, typer.Option(
        help="the project of what is made (one of yours; default: your default project)")]
    = None,
) -> None:
    """The best up-to-date target: used if it is current, made if not.

    Give it by --date/--chip/--filter/--raw or by its data ID (--data-id key=value). What
    lies beneath it is made too where it is missing or stale; --dry-run shows the plan and
    why."""
    from .. import targets
    from ..dimensions import parse_data_id, target_values
    from ..model import registry

    dimensions = registry.get(cls).dimensions if cls in registry else ()
    night, chip, filter, raw, extra = target_values(cls, dimensions, date, chip, filter, raw,
                                                    parse_data_id(data_id or []))
    date = str(night) if night is not None else None
    plan = targets.plan(cls, date, chip, filter, raw, extra=extra)
    for node in plan.nodes.values():
        style = "green" if node.action == "use" else "yellow"
        console.print(f"[{style}]{node.describe()}[/]", highlight=False)
    if dry_run:
        console.print(f"{len(plan.to_make)} to make")
        return
    obj = targets.get(cls, date, chip, filter, raw, extra=extra,
                      owner=Ownership(privileges=privileges, project=project))
    assert obj.record is not None
    console.print(f"[bold]{cls}[/] {obj.record.oid} {obj.record.filename or ''}")


jobs_app = typer.Typer(help="The compute service's jobs: list them (newest first), "
                       "read a log, cancel, retry.")
#: what the table shows of a job; JSON and CSV carry every field
_JOB_COLUMNS = ("id", "target", "status", "tries", "created", "product", "error")


def _compute() -> ComputeClient:
    from ..client import ComputeClient, settings_from_env
    from ..errors import ServiceUnavailable

    env = settings_from_env()
    if "AWE_COMPUTE_URL" not in env:
        raise ServiceUnavailable("no compute address: set AWE_COMPUTE_URL or run `awe up`")
    return ComputeClient(env["AWE_COMPUTE_URL"], env.get("AWE_TOKEN"))


def _target(j: JobOut) -> str:
    return f"{j.cls} {j.chip}" + (f"/{j.filter}" if j.filter else "") + f" {j.night}"


def _show_jobs(found: list[JobOut], fmt: Format, title: str) -> None:
    if fmt is Format.table:
        show_table(title, _JOB_COLUMNS, [
            (j.id, _target(j), j.status, j.attempts, j.created, j.product, j.error)
            for j in found])
    else:
        emit([j.model_dump() for j in found], fmt)


@jobs_app.callback(invoke_without_command=True)
def jobs(
    ctx: typer.Context,
    status: Annotated[JobStatus | None, typer.Option(help="only the jobs in this state")]
    = None,
    limit: Annotated[int, typer.Option(min=1, max=1000, help="at most this many")] = 50,
    log: Annotated[str | None, typer.Option(
        help="print the log of this job instead (as `awe jobs log ID`)")] = None,
    format: FormatOption = Format.table,
) -> None:
    """The compute service's jobs, newest first, with full ids.

    Any unique start of an id works wherever one is asked for."""
    if ctx.invoked_subcommand is not None:
        return
    client = _compute()
    if log:
        typer.echo(client.log(log))
        return
    page = client.jobs(status.value if status else None, 0, limit)
    _show_jobs(page.jobs, format,
               f"{len(page.jobs)} jobs" + (f" ({status.value})" if status else ""))


@jobs_app.command("log")
def job_log(job: Annotated[str, typer.Argument(help="job id, or a unique start of it")]) \
        -> None:
    """What the workers wrote about a job, tracebacks included."""
    typer.echo(_compute().log(job))


@jobs_app.command("cancel")
def job_cancel(job: Annotated[str, typer.Argument(help="job id, or a unique start of it")],
               format: FormatOption = Format.table) -> None:
    """Cancel a job that has not finished, and the jobs waiting for it.

    A running job is marked at once; its worker's result is refused when it comes."""
    _show_jobs([_compute().cancel(job)], format, "cancelled")


@jobs_app.command("retry")
def job_retry(job: Annotated[str, typer.Argument(help="job id, or a unique start of it")],
              format: FormatOption = Format.table) -> None:
    """Requeue a failed or cancelled job, and the jobs that failed with it.

    An input that failed or was cancelled itself must be retried first."""
    _show_jobs([_compute().retry(job)], format, "requeued")


def register(app: typer.Typer) -> None:
    app.command()(get)
    app.add_typer(jobs_app, name="jobs")
