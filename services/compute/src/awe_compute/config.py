"""Compute settings, from AWE_COMPUTE_* environment variables (AWE_SITE is shared)."""

from __future__ import annotations

from pathlib import Path

from pydantic import AliasChoices, Field, SecretStr
from pydantic_settings import SettingsConfigDict

from awecore.server import ServiceSettings
from awecore.targets import CalibrationRules

__all__ = ["ComputeSettings"]


class ComputeSettings(ServiceSettings):
    """The API's and the workers' settings. The shared ones (site, database, catalog URL
    and token, Kafka, log level) are in ServiceSettings."""

    model_config = SettingsConfigDict(env_prefix="AWE_COMPUTE_")

    database_url: SecretStr | None = SecretStr("postgresql://awe@127.0.0.1:5432/awe_compute")
    kafka_bootstrap_servers: str | None = "127.0.0.1:9092"
    storage_url: str = "http://127.0.0.1:8001"
    lease_seconds: float = Field(default=120.0, gt=0, description="a running job's worker "
                                 "renews its lease every third of this; a job whose lease "
                                 "runs out (its worker died) is redone by another worker")
    reap_seconds: float = 2.0
    job_partitions: int = Field(default=8, ge=1, description="partitions of the jobs topic "
                                "(made so on first start): at most this many workers share "
                                "a burst of ready jobs")
    cache_bytes: int = Field(default=1 << 30, ge=0, description="stored files a worker keeps "
                             "decoded between jobs (calibrations are read by many jobs)")
    worker_metrics_host: str = Field(default="127.0.0.1", description="where a worker serves "
                                     "/metrics, /livez and /readyz")
    worker_metrics_port: int = Field(default=0, ge=0, le=65535,
                                     description="0: a free port, written to the heartbeat")
    calibration_rules: CalibrationRules = Field(
        default_factory=CalibrationRules,
        validation_alias=AliasChoices("AWE_CALIBRATION_RULES", "AWE_COMPUTE_CALIBRATION_RULES",
                                      "calibration_rules"),
        description="per calibration class (and instrument): from how many nights away one "
        "may be made, and how many nights either side a made one is valid (JSON, see "
        "awecore.targets.CalibrationRules; AWE_CALIBRATION_RULES, as the library reads it)")
    credential_key: SecretStr | None = Field(
        default=None, description="the key that seals the credentials submitters delegate "
        "to the workers (the API and the workers need the same; None: derived from the "
        "service token, so changing that token makes queued jobs' credentials unreadable)")
    delegation_seconds: float = Field(
        default=7 * 86400, gt=0, description="how long a credential delegated for a "
        "submission lives (a retry by the submitter delegates a new one)")
    worker_heartbeat_file: Path | None = Field(
        default=None, description="a JSON file a worker rewrites at each turn of its loop "
        "(pid, worker name, metrics port, the job in hand, time)")

    def sealing_key(self) -> str:
        """The key of the delegated credentials (``credential_key``, else one derived from
        the service token)."""
        if self.credential_key is not None:
            return self.credential_key.get_secret_value()
        return "awe-compute-delegation:" + (self.token() or "")
