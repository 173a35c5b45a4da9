"""``awe federation status``: per peer, how far this site has followed it."""

from __future__ import annotations

import httpx
import typer
from rich.console import Console

from ._output import Format, FormatOption, emit, show_table

console = Console()
federation_app = typer.Typer(no_args_is_help=True, help="Replication between sites.")


@federation_app.command("status")
def status(format: FormatOption = Format.table) -> None:
    """Last applied sequence, lag in changes and seconds, waiting changes, errors, digest.

    JSON and CSV: one object per peer, as the federation service reports it."""
    from ..client import settings_from_env
    from ..client._problem import raise_for_problem
    from ..errors import ServiceUnavailable

    env = settings_from_env()
    url = env.get("AWE_FEDERATION_URL")
    if not url:
        raise ServiceUnavailable("no federation address: set AWE_FEDERATION_URL or `awe up`")
    try:
        r = httpx.get(f"{url}/federation/status", timeout=30,
                      headers={"Authorization": f"Bearer {env.get('AWE_TOKEN', '')}"})
    except httpx.TransportError as exc:
        raise ServiceUnavailable(f"cannot reach federation at {url}: {exc}") from None
    raise_for_problem(r)
    body = r.json()
    if format is not Format.table:
        emit(body["peers"], format)
        return
    show_table(f"site {body['site']}: following {len(body['peers'])} peer(s)",
               ("peer", "applied", "peer's last", "lag (changes)", "lag (s)", "waiting",
                "last error"),
               [(p["site"], p["applied_sequence"], p["peer_sequence"], p["lag_changes"],
                 f"{p['lag_seconds'] or 0:.1f}", p["waiting"], p["last_error"])
                for p in body["peers"]])
    d = body["digest"]
    console.print(f"digest of the {d['objects']} shared objects here: {d['digest']}")


def register(app: typer.Typer) -> None:
    app.add_typer(federation_app, name="federation")
