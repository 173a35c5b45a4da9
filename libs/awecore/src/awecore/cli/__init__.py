"""The ``awe`` command: the local stack, queries, jobs, curation, users, tokens and a shell.

Conventions every command keeps: listings take ``--format table|json|csv``; ids are shown
in full and may be typed as any unique start of them; the exit code is 0 when all went
well, 1 when something failed (a refused request, an object not found, a failed check) and
2 only for a command line that is wrong (typer's usage errors). Shell completion:
``awe --install-completion`` (or ``awe --show-completion bash`` to see the script).
"""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape

from ..errors import AweError
from . import (
    _admin,
    _calib,
    _classes,
    _curate,
    _data,
    _federation,
    _lineage,
    _query,
    _stack,
    _targets,
    _tiles,
    _verify,
)

__all__ = ["app", "main"]

app = typer.Typer(no_args_is_help=True, add_completion=True,
                  help="AWE: the Astro-WISE successor. Start with `awe up`.")
err = Console(stderr=True)


def _version() -> str:
    try:
        return version("awecore")
    except PackageNotFoundError:  # run from a source tree that was never installed
        return "unknown"


def _print_version(value: bool) -> None:
    if value:
        typer.echo(f"awe {_version()}")
        raise typer.Exit()


@app.callback()
def _root(
    show_version: Annotated[bool, typer.Option(
        "--version", callback=_print_version, is_eager=True,
        help="Print the version of awe (the awecore library) and exit.")] = False,
) -> None:
    """AWE: the Astro-WISE successor. Start with `awe up`."""


_stack.register(app)
_query.register(app)
_admin.register(app)
_curate.register(app)
_calib.register(app)
_classes.register(app)
_data.register(app)
_lineage.register(app)
_federation.register(app)
_targets.register(app)
_tiles.register(app)
_verify.register(app)


def main() -> None:
    """The ``awe`` entry point: an error of AWE (refused, not found, unreachable) is one
    line on stderr and exit code 1; 2 stays typer's, for a wrong command line."""
    try:
        _classes.load_products()  # users' own product classes and recipes
        app(prog_name="awe")
    except AweError as exc:
        err.print(f"[bold red]{type(exc).__name__}[/]: {escape(exc.detail)}", soft_wrap=True)
        raise SystemExit(1) from None
