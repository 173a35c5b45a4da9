"""The ``awe`` command: the local stack, queries, users, projects, tokens and a shell."""

from __future__ import annotations

import typer
from rich.console import Console

from ..errors import AweError
from . import _admin, _data, _federation, _lineage, _query, _stack, _targets, _verify

__all__ = ["app", "main"]

app = typer.Typer(no_args_is_help=True, add_completion=False,
                  help="AWE: the Astro-WISE successor. Start with `awe up`.")
console = Console()
err = Console(stderr=True)


_stack.register(app)
_query.register(app)
_admin.register(app)
_data.register(app)
_lineage.register(app)
_federation.register(app)
_targets.register(app)
_verify.register(app)


def main() -> None:
    try:
        app()
    except AweError as exc:
        err.print(f"[bold red]{type(exc).__name__}[/]: {exc.detail}")
        raise SystemExit(2) from None


