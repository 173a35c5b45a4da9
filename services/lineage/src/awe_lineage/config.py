"""Lineage settings, from AWE_LINEAGE_* environment variables (AWE_SITE is shared)."""

from __future__ import annotations

from pydantic import Field, SecretStr
from pydantic_settings import SettingsConfigDict

from awecore.server import ServiceSettings

__all__ = ["LineageSettings"]


class LineageSettings(ServiceSettings):
    """The shared settings (site, database, catalog URL and token, Kafka, log level) are in
    ServiceSettings; the service token reads the whole changelog."""

    model_config = SettingsConfigDict(env_prefix="AWE_LINEAGE_")

    database_url: SecretStr | None = SecretStr("postgresql://awe@127.0.0.1:5432/awe_lineage")
    follow: bool = Field(default=True, description="follow the catalog's changes")
    catch_up_seconds: float = Field(
        default=5.0, description="how often the changelog is checked over HTTP for a gap")
