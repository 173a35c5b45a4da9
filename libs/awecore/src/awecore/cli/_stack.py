"""``awe up``, ``awe down``, ``awe status``."""

from __future__ import annotations

import typer
from rich.console import Console
from rich.table import Table

from ..stack import Stack

console = Console()


def up() -> None:
    """Start PostgreSQL, the broker and the services (those not running yet)."""
    stack = Stack()
    with console.status("starting the local stack..."):
        env = stack.up()
    status()
    console.print(f"Client settings written to [bold]{stack.env_file}[/] "
                  f"(catalog at {env['AWE_CATALOG_URL']}). `awe shell` and "
                  "`import awecore as awe; awe.connect()` read them.")


def down() -> None:
    """Stop every part of the local stack (data stays in the state folder)."""
    Stack().down()
    console.print("local stack stopped")


def status() -> None:
    """Show each part: pid, state, address and log file."""
    table = Table(title="AWE local stack")
    for col in ("part", "pid", "state", "address", "log"):
        table.add_column(col)
    for part in Stack().status():
        state = "[green]running[/]" if part.running else "[red]stopped[/]"
        table.add_row(part.name, str(part.pid or "-"), state, part.address, part.log)
    console.print(table)


def register(app: typer.Typer) -> None:
    app.command()(up)
    app.command()(down)
    app.command()(status)
