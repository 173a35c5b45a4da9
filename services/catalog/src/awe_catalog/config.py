"""Catalog settings, from AWE_CATALOG_* environment variables (AWE_SITE is shared)."""

from __future__ import annotations

from pydantic import AliasChoices, Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from awecore.bus import KafkaSettings

__all__ = ["CatalogSettings"]


class CatalogSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="AWE_CATALOG_", extra="ignore",
                                      populate_by_name=True)

    site: str = Field(default="local", pattern=r"^[a-z0-9][a-z0-9-]{0,39}$",
                      validation_alias=AliasChoices("AWE_CATALOG_SITE", "AWE_SITE"))
    database_url: SecretStr = SecretStr("postgresql://awe@127.0.0.1:5432/awe_catalog")
    kafka_bootstrap_servers: str = "127.0.0.1:9092"
    admin_token: SecretStr | None = Field(
        default=None, description="token of the bootstrap admin, created on first start")
    pool_min_size: int = 2
    pool_max_size: int = 10
    max_batch: int = Field(default=10_000, description="objects per batch request")
    max_body_bytes: int = Field(default=64 * 1024 * 1024, description="request body limit")
    changes_partitions: int = 1
    relay_batch: int = 500
    relay_poll_seconds: float = 1.0
    log_level: str = "INFO"

    def kafka(self, client_id: str) -> KafkaSettings:
        return KafkaSettings(bootstrap_servers=self.kafka_bootstrap_servers, client_id=client_id)
