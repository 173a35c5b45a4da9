"""Compute settings, from AWE_COMPUTE_* environment variables (AWE_SITE is shared)."""

from __future__ import annotations

from pydantic import AliasChoices, Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

__all__ = ["ComputeSettings"]


class ComputeSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="AWE_COMPUTE_", extra="ignore",
                                      populate_by_name=True)

    site: str = Field(default="local", validation_alias=AliasChoices("AWE_COMPUTE_SITE",
                                                                     "AWE_SITE"))
    database_url: SecretStr = SecretStr("postgresql://awe@127.0.0.1:5432/awe_compute")
    catalog_url: str = "http://127.0.0.1:8000"
    storage_url: str = "http://127.0.0.1:8001"
    service_token: SecretStr | None = None
    kafka_bootstrap_servers: str = "127.0.0.1:9092"
    lease_seconds: float = Field(default=120.0, description="a running job's worker must "
                                 "finish or renew within this, or another worker redoes it")
    reap_seconds: float = 2.0
    job_partitions: int = Field(default=8, ge=1, description="partitions of the jobs topic "
                                "(made so on first start): at most this many workers share "
                                "a burst of ready jobs")
    session_timeout_ms: int = 6000
    cache_bytes: int = Field(default=1 << 30, ge=0, description="stored files a worker keeps "
                             "decoded between jobs (calibrations are read by many jobs)")
    auth_cache_seconds: float = 60.0
    log_level: str = "INFO"

    def token(self) -> str | None:
        return self.service_token.get_secret_value() if self.service_token else None
