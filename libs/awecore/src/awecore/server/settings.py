"""The settings every service shares, from the environment.

A service subclasses :class:`ServiceSettings` with its prefix (``AWE_CATALOG_``, ...) and its
own fields. A few settings are one value for every service of a site and may be given once,
without a service's prefix: ``AWE_SITE``, ``AWE_LOG_LEVEL`` and
``AWE_KAFKA_REPLICATION_FACTOR``; a service's own variable (``AWE_CATALOG_SITE``) wins.
Secrets are :class:`SecretStr`, and a refused value is reported without itself.
"""

from __future__ import annotations

import logging
import os
from typing import Any

from pydantic import Field, SecretStr, field_validator
from pydantic.fields import FieldInfo
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from ..users import SITE_PATTERN
from .kafka import KafkaSettings

__all__ = ["SITE_PATTERN", "SITE_WIDE", "ServiceSettings"]

#: settings one variable gives every service of a site: field -> variable
SITE_WIDE = {"site": "AWE_SITE", "log_level": "AWE_LOG_LEVEL",
             "kafka_replication_factor": "AWE_KAFKA_REPLICATION_FACTOR"}


class _SiteWide(PydanticBaseSettingsSource):
    """The site-wide variables, below a service's own ones."""

    def get_field_value(self, field: FieldInfo, field_name: str) -> tuple[Any, str, bool]:
        return None, field_name, False

    def __call__(self) -> dict[str, Any]:
        fields = self.settings_cls.model_fields
        return {name: os.environ[var] for name, var in SITE_WIDE.items()
                if name in fields and var in os.environ}


class ServiceSettings(BaseSettings):
    model_config = SettingsConfigDict(extra="ignore", populate_by_name=True,
                                      hide_input_in_errors=True)

    site: str = Field(default="local", pattern=SITE_PATTERN,
                      description="this site's name (AWE_SITE for every service)")
    log_level: str = Field(default="INFO", description="DEBUG, INFO, WARNING or ERROR")
    # PostgreSQL (services with a database override the default)
    database_url: SecretStr | None = None
    pool_min_size: int = Field(default=2, ge=0)
    pool_max_size: int = Field(default=10, ge=1)
    # the catalog, as this service's account (the catalog itself leaves these unset)
    catalog_url: str = "http://127.0.0.1:8000"
    service_token: SecretStr | None = Field(
        default=None, description="this service's catalog token")
    auth_cache_seconds: float = Field(
        default=5.0, ge=0, description="how long a caller's identity is cached: a revoked "
        "token still works here for at most this long (0: ask the catalog every time)")
    # Kafka
    kafka_bootstrap_servers: str | None = None
    kafka_replication_factor: int = Field(
        default=1, ge=1, description="copies of each partition of the topics this service "
        "creates: 1 for the local broker, 3 for a cluster of three brokers or more")
    session_timeout_ms: int = Field(default=6000, ge=1000)
    # HTTP
    body_timeout_seconds: float = Field(
        default=60.0, gt=0, description="how long a request body may pause before the "
        "request fails with 408 and its connection is closed")

    @classmethod
    def settings_customise_sources(
            cls, settings_cls: type[BaseSettings], init_settings: PydanticBaseSettingsSource,
            env_settings: PydanticBaseSettingsSource,
            dotenv_settings: PydanticBaseSettingsSource,
            file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return (init_settings, env_settings, _SiteWide(settings_cls), dotenv_settings,
                file_secret_settings)

    @field_validator("log_level")
    @classmethod
    def _known_level(cls, value: str) -> str:
        if not isinstance(logging.getLevelName(value.upper()), int):
            raise ValueError(f"unknown log level {value!r}: use DEBUG, INFO, WARNING or ERROR")
        return value.upper()

    def token(self) -> str | None:
        return self.service_token.get_secret_value() if self.service_token else None

    def database(self) -> str:
        if self.database_url is None:
            raise ValueError(f"{self._prefix()}DATABASE_URL is not set")
        return self.database_url.get_secret_value()

    def kafka(self, client_id: str) -> KafkaSettings:
        """Client settings for this service's broker (which must be set)."""
        if not self.kafka_bootstrap_servers:
            raise ValueError(f"{self._prefix()}KAFKA_BOOTSTRAP_SERVERS is not set")
        return KafkaSettings(bootstrap_servers=self.kafka_bootstrap_servers,
                             client_id=client_id, session_timeout_ms=self.session_timeout_ms,
                             replication_factor=self.kafka_replication_factor)

    def kafka_or_none(self, client_id: str) -> KafkaSettings | None:
        """As :meth:`kafka`, or None without a broker (followers then use HTTP only)."""
        return self.kafka(client_id) if self.kafka_bootstrap_servers else None

    def _prefix(self) -> str:
        return str(self.model_config.get("env_prefix") or "AWE_")
