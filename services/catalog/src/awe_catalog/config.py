"""Catalog settings, from AWE_CATALOG_* environment variables (AWE_SITE is shared)."""

from __future__ import annotations

import re

from pydantic import AliasChoices, Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from awecore.bus import KafkaSettings

__all__ = ["ADMIN_TOKEN_MIN_LENGTH", "CatalogSettings", "weak_admin_token"]

#: the shortest admin token the catalog starts with
ADMIN_TOKEN_MIN_LENGTH = 16
#: placeholders and defaults, compared without case and without anything but letters and
#: digits ("Change-Me", "change_me" and "CHANGEME" are one). A token that contains a
#: placeholder is one whatever surrounds it; they are 8 letters or more, so that a random
#: token holds one by chance about once in 10**10.
_PLACEHOLDERS = ("changeme", "replaceme", "changethis", "placeholder", "yourtoken",
                 "xxxxxxxx")
_DEFAULTS = frozenset({
    "admin", "password", "secret", "token", "default", "adminadminadminadmin",
    "passwordpassword", "adminpassword", "secretpassword", "supersecretpassword",
    "supersecrettoken", "administratorpassword", "1234567890123456", "0123456789abcdef",
    "abcdefghijklmnop",
})
_MIN_DISTINCT = 6


def weak_admin_token(token: str) -> str | None:
    """Why ``token`` must not be the admin token, or None if it may.

    Refused: shorter than 16 characters, a known default or placeholder ("change-me",
    "admin", "password", ...), or too few distinct characters ("aaaaaaaaaaaaaaaa").
    """
    how = (f"set AWE_CATALOG_ADMIN_TOKEN to a random token of at least "
           f"{ADMIN_TOKEN_MIN_LENGTH} characters, e.g. the output of "
           f"`python -c 'import secrets; print(secrets.token_urlsafe(32))'`")
    if len(token) < ADMIN_TOKEN_MIN_LENGTH:
        return (f"the admin token is {len(token)} characters long, shorter than "
                f"{ADMIN_TOKEN_MIN_LENGTH}: {how}")
    plain = re.sub(r"[^a-z0-9]", "", token.lower())
    if plain in _DEFAULTS or any(p in plain for p in _PLACEHOLDERS):
        return f"the admin token is a known default or placeholder: {how}"
    if len(set(token)) < _MIN_DISTINCT:
        return (f"the admin token has fewer than {_MIN_DISTINCT} distinct characters, "
                f"which no random token has: {how}")
    return None


class CatalogSettings(BaseSettings):
    # a refused setting is reported without its value: these settings hold secrets
    model_config = SettingsConfigDict(env_prefix="AWE_CATALOG_", extra="ignore",
                                      populate_by_name=True, hide_input_in_errors=True)

    site: str = Field(default="local", pattern=r"^[a-z0-9][a-z0-9-]{0,39}$",
                      validation_alias=AliasChoices("AWE_CATALOG_SITE", "AWE_SITE"))
    database_url: SecretStr = SecretStr("postgresql://awe@127.0.0.1:5432/awe_catalog")
    kafka_bootstrap_servers: str = "127.0.0.1:9092"
    admin_token: SecretStr | None = Field(
        default=None, description="token of the bootstrap admin, created on first start; "
        f"{ADMIN_TOKEN_MIN_LENGTH} characters or more and no default (else refused)")
    pool_min_size: int = 2
    pool_max_size: int = 10
    max_batch: int = Field(default=10_000, description="objects per batch request")
    max_body_bytes: int = Field(default=64 * 1024 * 1024, description="request body limit")
    changes_partitions: int = 1
    relay_batch: int = 500
    relay_poll_seconds: float = 1.0
    log_level: str = "INFO"

    @field_validator("admin_token")
    @classmethod
    def _strong_admin_token(cls, value: SecretStr | None) -> SecretStr | None:
        """The catalog refuses to start with a weak admin token (see weak_admin_token)."""
        if value is not None and (why := weak_admin_token(value.get_secret_value())):
            raise ValueError(why)
        return value

    def kafka(self, client_id: str) -> KafkaSettings:
        return KafkaSettings(bootstrap_servers=self.kafka_bootstrap_servers, client_id=client_id)
