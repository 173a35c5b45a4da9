"""Federation settings, from AWE_FEDERATION_* environment variables (AWE_SITE is shared)."""

from __future__ import annotations

from pydantic import BaseModel, Field, SecretStr
from pydantic_settings import SettingsConfigDict

from awecore.server import ServiceSettings

__all__ = ["FederationSettings", "PeerSite"]


class PeerSite(BaseModel):
    """A site whose catalog changes this site follows."""

    site: str
    catalog_url: str
    token: SecretStr = Field(description="a service token of the peer's catalog")
    kafka_bootstrap_servers: str | None = Field(
        default=None, description="the peer's broker; without one, HTTP only")


class FederationSettings(ServiceSettings):
    """The shared settings (site, database, local catalog URL and token, log level) are in
    ServiceSettings; each peer names its own catalog and broker."""

    model_config = SettingsConfigDict(env_prefix="AWE_FEDERATION_")

    database_url: SecretStr | None = SecretStr(
        "postgresql://awe@127.0.0.1:5432/awe_federation")
    peers: list[PeerSite] = []
    follow: bool = True
    catch_up_seconds: float = 5.0
    batch: int = 1000
