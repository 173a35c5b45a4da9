"""``awe user|project|token ...`` and ``awe whoami``: administration through the catalog."""

from __future__ import annotations

import datetime as dt
import json
from enum import StrEnum
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


class Role(StrEnum):
    member = "member"
    calibration = "calibration"


@project_app.command("add-member")
def project_add_member(project: str, user: str, role: Annotated[Role, typer.Option(
        help="'calibration': a calibration scientist, who curates the project's products "
        "and whose approval (is_valid = 1) makes a calibration everybody's best")] =
        Role.member) -> None:
    """Make a user a member of a project (again: change their role)."""
    _show(_client().add_member(project, user, role.value))


class Scope(StrEnum):
    """A token's scope, as the catalog names it (``awecore.server.SCOPES``)."""

    all = "all"
    read = "read"
    make = "make"


def _days(value: float | None) -> float | None:
    """A token's lifetime: more than nothing, at most a century (a usage error, exit 2)."""
    if value is not None and not 0 < value <= 36500:
        raise typer.BadParameter("give the days the token lasts: more than 0, at most 36500")
    return value


@token_app.command("create")
def token_create(
    user: Annotated[str | None, typer.Option(help="for another user (admin)")] = None,
    label: Annotated[str, typer.Option()] = "",
    scope: Annotated[Scope, typer.Option(
        help="all: everything you may do; read: reading only (a script or a notebook that "
             "must change nothing); make: reading, storing files and registering objects "
             "(what compute is delegated)")] = Scope.all,
    expires: Annotated[float | None, typer.Option(
        callback=_days, metavar="DAYS",
        help="the token stops working after this many days (fractions allowed); never if "
             "not given")] = None,
) -> None:
    """Create an API token; it is printed once (alone on stdout) and only its hash is
    stored. Its scope and expiry go to stderr."""
    body: dict[str, Any] = {"user": user, "label": label, "scope": scope.value}
    if expires is not None:
        until = dt.datetime.now(dt.UTC) + dt.timedelta(days=expires)
        body["expires"] = until.isoformat()
    made = _client().request("POST", "/tokens", json=body)
    typer.echo(made["token"])
    until_text = made.get("expires") or "never"
    typer.echo(f"token {made.get('id', '')}: scope {made.get('scope', scope.value)}, "
               f"expires {until_text}", err=True)


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
