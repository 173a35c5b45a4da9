"""``awe verify``: is every file the catalogue describes the one in storage?"""

from __future__ import annotations

from typing import Annotated, Any

import typer
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from ._output import Format, emit, show_table

console = Console()


def verify(
    cls: Annotated[str, typer.Option("--class", help="objects of this class and its "
                                     "subclasses")] = "DataObject",
    where: Annotated[str | None, typer.Option(
        help="only the objects of a DSL expression, e.g. \"ReducedScienceFrame.chip.name "
             "== 'ccd53'\" (its class must be --class or one beneath it)")] = None,
    mine: Annotated[bool, typer.Option("--mine", help="only the objects I made")] = False,
    limit: Annotated[int | None, typer.Option(min=0, help="at most this many objects")] = None,
    workers: Annotated[int, typer.Option(min=1, max=64, help="files checked at once")] = 8,
    format: Annotated[Format, typer.Option(
        "--format", case_sensitive=False,
        help="how the mismatches are listed: table, json (a list of objects, [] if all is "
             "good) or csv; with json and csv the progress and summary go to stderr")] =
    Format.table,
) -> None:
    """Check the file of every catalogue object that has one, against the catalogue.

    It is in storage, storage re-hashes it, its size and sha256 are the recorded file_size
    and checksum, and the AWEOID of its FITS header is the object's oid. Exit code 1 if
    anything is wrong."""
    from ..client import StorageClient, current, settings_from_env
    from ..errors import InvalidQuery, ServiceUnavailable
    from ..model import Query, parse_query, registry
    from ..verify import Mismatch, files_spec, verify_catalogue

    env = settings_from_env()
    if "AWE_STORAGE_URL" not in env:
        raise ServiceUnavailable("no storage address: set AWE_STORAGE_URL or run `awe up`")
    base = registry.get(cls)
    query: Query[Any] = Query(base)
    if where is not None:
        query = parse_query(where)
        if not (isinstance(query.root, type) and issubclass(query.root, base)):
            raise InvalidQuery(f"--where queries {query.root.__name__}, which is not {cls} "
                               "or beneath it")
    if mine:
        query = query.user_only()
    catalog = current()
    spec = files_spec(query)
    total = catalog.count(spec)
    if limit is not None:
        total = min(total, limit)
    hashed = 0
    # a program reading the listing gets nothing else on stdout
    out = console if format is Format.table else Console(stderr=True)
    with StorageClient(env["AWE_STORAGE_URL"], env.get("AWE_TOKEN")) as storage, Progress(
            TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
            TextColumn("{task.fields[mb]:.1f} MB hashed"), TimeElapsedColumn(),
            TimeRemainingColumn(), console=out, transient=True) as bar:
        task = bar.add_task(f"verifying {spec.cls}", total=total, mb=0.0)

        def advance(record: object, size: int) -> None:
            nonlocal hashed
            hashed += size
            bar.update(task, advance=1, mb=hashed / 1e6)

        report = verify_catalogue(catalog, storage, query, limit=limit, workers=workers,
                                  progress=advance)
    mb = report.bytes / 1e6
    rate = report.objects / report.seconds if report.seconds > 0 else 0.0
    out.print(f"{report.objects} {report.cls} objects, {report.files} files, "
              f"{mb:.1f} MB in {report.seconds:.1f} s ({report.bytes_per_second / 1e6:.1f}"
              f" MB/s, {rate:.1f} objects/s): "
              + ("[green]all good[/]" if report.ok
                 else f"[red]{len(report.mismatches)} mismatches[/]"))
    if format is not Format.table:
        emit([m.model_dump() for m in report.mismatches], format,
             columns=list(Mismatch.model_fields))
    elif not report.ok:
        show_table("mismatches", list(Mismatch.model_fields),
                   [list(m.model_dump().values()) for m in report.mismatches])
    if not report.ok:
        raise typer.Exit(1)


def register(app: typer.Typer) -> None:
    app.command()(verify)
