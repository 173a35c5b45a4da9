"""``awe.connect()``: one default client for the prompt and 5-line scripts.

Settings come from AWE_CATALOG_URL and AWE_TOKEN, or from the ``awe.env`` file that
``awe up`` writes: in $AWE_STATE_DIR if set, else in the ``.awe`` folder of the current
directory or of its nearest parent that has one (a script in ``project/notebooks/`` finds
``project/.awe``, as git finds ``.git``), else in ~/.awe.
"""

from __future__ import annotations

import os
from pathlib import Path

from ..errors import ServiceUnavailable
from ._http import CatalogClient
from ._lineage import LineageClient
from ._storage import StorageClient

__all__ = ["connect", "current", "find_env_file", "read_env_file", "settings_from_env"]

_current: CatalogClient | None = None


def read_env_file(path: Path) -> dict[str, str]:
    out: dict[str, str] = {}
    for line in path.read_text().splitlines():
        line = line.strip()
        if line and not line.startswith("#") and "=" in line:
            key, value = line.split("=", 1)
            out[key.strip()] = value.strip()
    return out


def find_env_file(start: Path | None = None) -> Path | None:
    """``.awe/awe.env`` in ``start`` (the current directory) or its nearest parent that
    has one."""
    here = (start or Path.cwd()).resolve()
    for folder in (here, *here.parents):
        candidate = folder / ".awe" / "awe.env"
        if candidate.is_file():
            return candidate
    return None


def _env_files() -> list[Path]:
    if "AWE_STATE_DIR" in os.environ:  # an explicit state folder: that one only
        return [Path(os.environ["AWE_STATE_DIR"]) / "awe.env"]
    found = find_env_file()
    return ([found] if found else []) + [Path.home() / ".awe" / "awe.env"]


def settings_from_env() -> dict[str, str]:
    """AWE_* settings: the environment wins over the first awe.env found."""
    merged: dict[str, str] = {}
    for path in _env_files():
        if path.is_file():
            merged = read_env_file(path)
            break
    merged.update({k: v for k, v in os.environ.items() if k.startswith("AWE_")})
    return merged


def connect(url: str | None = None, token: str | None = None) -> CatalogClient:
    """Connect the default session (used by queries, ``Class.select()`` and friends)."""
    global _current
    env = settings_from_env()
    url = url or env.get("AWE_CATALOG_URL")
    if not url:
        raise ServiceUnavailable(
            "no catalog address: set AWE_CATALOG_URL, or start the local stack with `awe up`")
    if _current is not None:
        _current.close()
    token = token or env.get("AWE_TOKEN")
    _current = CatalogClient(url, token)
    if env.get("AWE_LINEAGE_URL"):
        _current.lineage = LineageClient(env["AWE_LINEAGE_URL"], token)
    if env.get("AWE_STORAGE_URL"):
        _current.storage = StorageClient(env["AWE_STORAGE_URL"], token)
    return _current


def current() -> CatalogClient:
    if _current is None:
        return connect()
    return _current
