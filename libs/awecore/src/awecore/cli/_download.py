"""``awe download OID``: an object's file (and its weight map) on disk, in one step.

The bytes come from storage checked against the sha256 and size the catalogue recorded
(``StorageClient.download``); a file is written only once it is known whole, under a
temporary name first, so an interrupted or refused download leaves nothing that looks
like the product.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeRemainingColumn,
    TransferSpeedColumn,
)

__all__ = ["download"]

console = Console(stderr=True)


def _write(path: Path, data: bytes) -> None:
    partial = path.with_name(path.name + ".part")
    partial.write_bytes(data)
    os.replace(partial, path)


def download(
    oid: Annotated[str, typer.Argument(help="the object's oid (any unique start of it)")],
    out: Annotated[Path, typer.Option(help="folder to write the file(s) to")] = Path("."),
    weight: Annotated[bool, typer.Option(help="the weight map too, where there is one")] = True,
) -> None:
    """Download an object's file, checked against the catalogue's sha256 and size; with
    its weight map (``--no-weight`` to skip it). Prints each path written."""
    from ..client import StorageClient, current, settings_from_env
    from ..errors import InvalidRequest, ServiceUnavailable
    from ..records import ObjectOut

    env = settings_from_env()
    if "AWE_STORAGE_URL" not in env:
        raise ServiceUnavailable("no storage address: set AWE_STORAGE_URL or run `awe up`")
    catalog = current()
    full = catalog.resolve_oid(oid)
    record = catalog.get_records([full]).get(full)
    if record is None:
        raise InvalidRequest(f"object {full} is not visible to you")
    if not record.filename:
        raise InvalidRequest(f"{record.type} {record.oid} has no file (its values are in "
                             f"the catalogue: `awe query` shows them)")
    wanted: list[tuple[str, ObjectOut]] = [(record.filename, record)]
    weight_name = record.attributes.get("weight_filename")
    if weight and weight_name:
        # the weight map as its own record would describe it: the checksum the object keeps
        wanted.append((str(weight_name), record.model_copy(update={
            "filename": str(weight_name), "file_size": None,
            "checksum": record.attributes.get("weight_checksum")})))
    out.mkdir(parents=True, exist_ok=True)
    storage = StorageClient(env["AWE_STORAGE_URL"], env.get("AWE_TOKEN"))
    with storage, Progress(TextColumn("{task.description}"), BarColumn(), DownloadColumn(),
                           TransferSpeedColumn(), TimeRemainingColumn(),
                           console=console) as bar:
        for name, described in wanted:
            path = out / Path(name).name
            task = bar.add_task(path.name[:40], total=described.file_size)

            def advance(n: int, task: TaskID = task) -> None:
                bar.advance(task, n)

            data = storage.download(described, progress=advance)
            _write(path, data)
            bar.update(task, completed=len(data), total=len(data))
            typer.echo(str(path))
