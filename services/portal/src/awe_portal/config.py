"""Portal settings, from AWE_PORTAL_* environment variables (AWE_SITE is shared)."""

from __future__ import annotations

import tempfile
from pathlib import Path

from pydantic import Field, SecretStr
from pydantic_settings import SettingsConfigDict

from awecore.server import ServiceSettings

__all__ = ["PortalSettings"]


class PortalSettings(ServiceSettings):
    """Where the services are (the portal holds no data: every page is built from their
    APIs) and how the session cookie is sealed. ``catalog_url`` is in ServiceSettings."""

    model_config = SettingsConfigDict(env_prefix="AWE_PORTAL_")

    storage_url: str = "http://127.0.0.1:8001"
    lineage_url: str = "http://127.0.0.1:8002"
    compute_url: str = "http://127.0.0.1:8004"
    secret_key: SecretStr | None = Field(
        default=None, description="seals the session cookie; unset: a random key per "
        "process (sessions end when it restarts, and replicas do not share them)")
    session_hours: float = Field(default=12.0, gt=0, description="how long a sign-in lasts")
    secure_cookies: bool = Field(
        default=False, description="mark cookies Secure (set it when served over https)")
    cache_dir: Path = Field(
        default=Path(tempfile.gettempdir()) / "awe-portal-cache",
        description="rendered previews, by oid and checksum")
    api_timeout_seconds: float = Field(default=60.0, gt=0)
