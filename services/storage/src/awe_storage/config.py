"""Storage settings, from AWE_STORAGE_* environment variables (AWE_SITE is shared)."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, Field, SecretStr
from pydantic_settings import SettingsConfigDict

from awecore.server import ServiceSettings

__all__ = ["Peer", "S3Settings", "StorageSettings"]


class Peer(BaseModel):
    """Another site's storage service, asked for files this site does not hold."""

    site: str
    url: str
    token: SecretStr


class S3Settings(BaseModel):
    endpoint: str = "127.0.0.1:9000"
    access_key: SecretStr = SecretStr("minioadmin")
    secret_key: SecretStr = SecretStr("minioadmin")
    bucket: str = "awe"
    secure: bool = False
    region: str | None = None

    def client_kwargs(self) -> dict[str, object]:
        return {"endpoint": self.endpoint, "access_key": self.access_key.get_secret_value(),
                "secret_key": self.secret_key.get_secret_value(), "secure": self.secure,
                "region": self.region}


class StorageSettings(ServiceSettings):
    """The shared settings (site, catalog URL and token, Kafka, log level) are in
    ServiceSettings; storage has no database."""

    model_config = SettingsConfigDict(env_prefix="AWE_STORAGE_", env_nested_delimiter="__")

    backend: Literal["local", "s3"] = "local"
    root: Path = Field(default=Path(".awe/files"), description="local backend folder")
    s3: S3Settings = S3Settings()
    max_upload_bytes: int = 2 * 1024**3
    peers: list[Peer] = []
    owners_cache_seconds: float = Field(
        default=5.0, ge=0, description="how long the owners of a file name (the catalogue "
        "objects that decide who may read it) are kept before the catalogue is asked again")
