"""Lineage settings, from AWE_LINEAGE_* environment variables (AWE_SITE is shared)."""

from __future__ import annotations

from pydantic import AliasChoices, Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

__all__ = ["LineageSettings"]


class LineageSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="AWE_LINEAGE_", extra="ignore",
                                      populate_by_name=True)

    site: str = Field(default="local", validation_alias=AliasChoices("AWE_LINEAGE_SITE",
                                                                     "AWE_SITE"))
    database_url: SecretStr = SecretStr("postgresql://awe@127.0.0.1:5432/awe_lineage")
    catalog_url: str = "http://127.0.0.1:8000"
    service_token: SecretStr | None = Field(
        default=None, description="catalog token of this service (reads the whole changelog)")
    kafka_bootstrap_servers: str | None = None
    follow: bool = Field(default=True, description="follow the catalog's changes")
    catch_up_seconds: float = Field(
        default=5.0, description="how often the changelog is checked over HTTP for a gap")
    session_timeout_ms: int = 6000
    auth_cache_seconds: float = 60.0
    log_level: str = "INFO"
