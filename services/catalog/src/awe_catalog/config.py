"""Catalog settings, from AWE_CATALOG_* environment variables (AWE_SITE is shared)."""

from __future__ import annotations

import re
from pathlib import Path

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import SettingsConfigDict

from awecore.server import ServiceSettings

__all__ = ["ADMIN_TOKEN_MIN_LENGTH", "CatalogSettings", "weak_admin_token"]

#: the shortest admin token the catalog starts with
ADMIN_TOKEN_MIN_LENGTH = 24
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

    Refused: shorter than 24 characters, a known default or placeholder ("change-me",
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


class CatalogSettings(ServiceSettings):
    """The catalog's settings; the outbox relay (``python -m awe_catalog.relay``) reads the
    same ones. The shared ones (site, database, Kafka, log level) are in ServiceSettings."""

    # a refused setting is reported without its value: these settings hold secrets
    model_config = SettingsConfigDict(env_prefix="AWE_CATALOG_")

    database_url: SecretStr | None = SecretStr("postgresql://awe@127.0.0.1:5432/awe_catalog")
    kafka_bootstrap_servers: str | None = "127.0.0.1:9092"
    session_timeout_ms: int = 10_000
    admin_token: SecretStr | None = Field(
        default=None, description="token of the bootstrap admin, created on first start; "
        f"{ADMIN_TOKEN_MIN_LENGTH} characters or more and no default (else refused)")
    max_batch: int = Field(default=10_000, description="objects per batch request")
    max_body_bytes: int = Field(default=64 * 1024 * 1024, description="request body limit")
    changes_partitions: int = 1
    relay_batch: int = 500
    relay_lag_limit: int = Field(
        default=10_000, ge=0, description="changes the outbox relay may leave unpublished "
        "before the catalog's /readyz fails (check 'relay'); 0: not checked (a catalog "
        "that runs without a relay)")
    relay_poll_seconds: float = 1.0
    relay_metrics_host: str = Field(default="127.0.0.1", description="where the relay "
                                    "serves /metrics, /livez and /readyz")
    relay_metrics_port: int = Field(default=0, ge=0, le=65535,
                                    description="0: a free port, written to the heartbeat")
    relay_heartbeat_file: Path | None = Field(
        default=None, description="a JSON file the relay rewrites at each turn of its loop "
        "(pid, metrics port, cursor, time)")

    @field_validator("admin_token")
    @classmethod
    def _strong_admin_token(cls, value: SecretStr | None) -> SecretStr | None:
        """The catalog refuses to start with a weak admin token (see weak_admin_token)."""
        if value is not None and (why := weak_admin_token(value.get_secret_value())):
            raise ValueError(why)
        return value

