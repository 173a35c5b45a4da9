"""Federation settings, from AWE_FEDERATION_* environment variables (AWE_SITE is shared)."""

from __future__ import annotations

from pydantic import AliasChoices, BaseModel, Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

__all__ = ["FederationSettings", "PeerSite"]


class PeerSite(BaseModel):
    """A site whose catalog changes this site follows."""

    site: str
    catalog_url: str
    token: SecretStr = Field(description="a service token of the peer's catalog")
    kafka_bootstrap_servers: str | None = Field(
        default=None, description="the peer's broker; without one, HTTP only")


class FederationSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="AWE_FEDERATION_", extra="ignore",
                                      populate_by_name=True)

    site: str = Field(default="local", validation_alias=AliasChoices("AWE_FEDERATION_SITE",
                                                                     "AWE_SITE"))
    database_url: SecretStr = SecretStr("postgresql://awe@127.0.0.1:5432/awe_federation")
    catalog_url: str = "http://127.0.0.1:8000"
    service_token: SecretStr | None = None
    peers: list[PeerSite] = []
    follow: bool = True
    catch_up_seconds: float = 5.0
    batch: int = 1000
    session_timeout_ms: int = 6000
    auth_cache_seconds: float = 60.0
    log_level: str = "INFO"
