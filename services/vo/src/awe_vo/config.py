"""VO settings, from AWE_VO_* environment variables (AWE_SITE is shared)."""

from __future__ import annotations

from pydantic import Field, SecretStr
from pydantic_settings import SettingsConfigDict

from awecore.server import ServiceSettings

__all__ = ["VOSettings"]


class VOSettings(ServiceSettings):
    """``database_url`` is the CATALOG's database: the VO service reads it directly (every
    statement in a READ ONLY transaction, bounded by ``statement_timeout_ms``) because
    ADQL compiles to SQL over its tables; it never writes there."""

    model_config = SettingsConfigDict(env_prefix="AWE_VO_")

    database_url: SecretStr | None = SecretStr("postgresql://awe@127.0.0.1:5432/awe_catalog")
    storage_url: str = Field(default="http://127.0.0.1:8001",
                             description="the storage service (files for SODA cutouts)")
    public_url: str | None = Field(
        default=None, description="this service's URL as clients reach it (access URLs, "
        "capabilities); None: taken from each request")
    statement_timeout_ms: int = Field(
        default=60_000, ge=100, description="the longest one statement may run")
    default_maxrec: int = Field(default=10_000, ge=1,
                                description="rows returned when a query says no MAXREC")
    hard_maxrec: int = Field(default=1_000_000, ge=1,
                             description="the most rows any query returns")
    max_jobs: int = Field(default=1000, ge=1,
                          description="async (UWS) jobs kept in memory; the oldest go first")
    job_seconds: float = Field(default=3600.0, gt=0,
                               description="how long a finished async job's result is kept")
