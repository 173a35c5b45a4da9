"""``awe up``, ``awe down``, ``awe status``."""

from __future__ import annotations

from typing import TYPE_CHECKING

import typer
from rich.console import Console
from rich.table import Table

from ..errors import ServiceUnavailable
from ._output import Format, FormatOption, emit

if TYPE_CHECKING:
    from ..stack import Stack

console = Console()


def _stack() -> Stack:
    """The local stack, from the stack extra: a light client connects to a remote site."""
    try:
        from ..stack import Stack
    except ImportError:
        raise ServiceUnavailable("the local stack needs the stack extra: "
                                 "pip install 'awecore[stack]'") from None
    return Stack()


def up() -> None:
    """Start PostgreSQL, the broker and the services (those not running yet)."""
    stack = _stack()
    with console.status("starting the local stack..."):
        env = stack.up()
    status()
    console.print(f"Client settings written to [bold]{stack.env_file}[/] "
                  f"(catalog at {env['AWE_CATALOG_URL']}). `awe shell` and "
                  "`import awecore as awe; awe.connect()` read them.")
    if env.get("AWE_PORTAL_URL"):
        console.print(f"The portal: [bold]{env['AWE_PORTAL_URL']}[/] (sign in with AWE_TOKEN).")


def down() -> None:
    """Stop every part of the local stack (data stays in the state folder)."""
    _stack().down()
    console.print("local stack stopped")


def status(format: FormatOption = Format.table) -> None:
    """Show each part: pid, state, address and log file."""
    parts = [{"part": p.name, "pid": p.pid, "running": p.running, "address": p.address,
              "log": p.log} for p in _stack().status()]
    if format is not Format.table:
        emit(parts, format)
        return
    table = Table(title="AWE local stack")
    for col in ("part", "pid", "state", "address", "log"):
        table.add_column(col)
    for part in parts:
        state = "[green]running[/]" if part["running"] else "[red]stopped[/]"
        table.add_row(str(part["part"]), str(part["pid"] or "-"), state, str(part["address"]),
                      str(part["log"]))
    console.print(table)


def register(app: typer.Typer) -> None:
    app.command()(up)
    app.command()(down)
    app.command()(status)
