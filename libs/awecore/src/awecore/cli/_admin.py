"""``awe user|project|token ...`` and ``awe whoami``: administration through the catalog."""

from __future__ import annotations

import datetime as dt
import json
from typing import Annotated, Any

import typer
from rich.console import Console

from ._output import Format, FormatOption, emit

console = Console()
user_app = typer.Typer(no_args_is_help=True, help="Users (admin).")
project_app = typer.Typer(no_args_is_help=True, help="Projects (admin).")
token_app = typer.Typer(no_args_is_help=True, help="API tokens.")


def _client() -> Any:
    from ..client import current

    return current()


def _show(data: dict[str, Any]) -> None:
    console.print_json(json.dumps(data, default=str))


@user_app.command("add")
def user_add(
    name: str,
    project: Annotated[str | None, typer.Option(help="default project (must exist)")] = None,
    admin: Annotated[bool, typer.Option("--admin")] = False,
    service: Annotated[bool, typer.Option("--service", help="a service account")] = False,
) -> None:
    """Add a user; without --project they get a personal project of their own name."""
    _show(_client().add_user(name, project, admin, service))


@project_app.command("add")
def project_add(name: str, description: Annotated[str, typer.Option()] = "") -> None:
    """Add a project (you become its first member)."""
    _show(_client().add_project(name, description))


@project_app.command("add-member")
def project_add_member(project: str, user: str) -> None:
    """Make a user a member of a project."""
    _show(_client().add_member(project, user))


@token_app.command("create")
def token_create(
    user: Annotated[str | None, typer.Option(help="for another user (admin)")] = None,
    label: Annotated[str, typer.Option()] = "",
) -> None:
    """Create an API token; it is printed once and only its hash is stored."""
    typer.echo(_client().create_token(user, label))


_WHEN = frozenset({"created", "last_used", "revoked_at"})


def _when(value: Any) -> Any:
    return dt.datetime.fromisoformat(value) if isinstance(value, str) else value


@token_app.command("list")
def token_list(
    user: Annotated[str | None, typer.Option(
        help="another user's (admin); * for everyone's")] = None,
    format: FormatOption = Format.table,
) -> None:
    """Your tokens: id, label, when made and last used; never the secret."""
    rows = [{k: _when(v) if k in _WHEN else v for k, v in t.items()}
            for t in _client().tokens(user)]
    emit(rows, format, title=f"{len(rows)} tokens",
         columns=["id", "user", "label", "created", "last_used", "revoked"])


@token_app.command("revoke")
def token_revoke(
    token_id: Annotated[str, typer.Argument(metavar="ID",
                                            help="the token's id, or a unique start of it")],
) -> None:
    """Revoke a token (yours; an admin: anyone's): it is refused from now on."""
    got = _client().revoke_token(token_id)
    typer.echo(f"token {got['id']} of {got['user']} revoked")


def whoami() -> None:
    """Who the configured token belongs to."""
    _show(_client().whoami())


def register(app: typer.Typer) -> None:
    app.add_typer(user_app, name="user")
    app.add_typer(project_app, name="project")
    app.add_typer(token_app, name="token")
    app.command()(whoami)
