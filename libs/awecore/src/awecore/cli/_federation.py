"""``awe federation status``: per peer, how far this site has followed it."""

from __future__ import annotations

import httpx
import typer
from rich.console import Console
from rich.table import Table

console = Console()
federation_app = typer.Typer(no_args_is_help=True, help="Replication between sites.")


@federation_app.command("status")
def status() -> None:
    """Last applied sequence, lag in changes and seconds, waiting changes, errors, digest."""
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
    table = Table(title=f"site {body['site']}: following {len(body['peers'])} peer(s)")
    for col in ("peer", "applied", "peer's last", "lag (changes)", "lag (s)", "waiting",
                "last error"):
        table.add_column(col)
    for p in body["peers"]:
        table.add_row(p["site"], str(p["applied_sequence"]), str(p["peer_sequence"]),
                      str(p["lag_changes"]), f"{p['lag_seconds'] or 0:.1f}", str(p["waiting"]),
                      p["last_error"] or "")
    console.print(table)
    d = body["digest"]
    console.print(f"digest of the {d['objects']} shared objects here: {d['digest']}")


def register(app: typer.Typer) -> None:
    app.add_typer(federation_app, name="federation")
