"""Topics are made with the replication factor the site configures (AWE_KAFKA_*)."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from awecore.server import KafkaSettings, TopicSettings, ensure_topics
from awecore.server import kafka as _kafka


def test_one_copy_by_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AWE_KAFKA_REPLICATION_FACTOR", raising=False)
    assert TopicSettings().replication_factor == 1
    assert KafkaSettings().replication_factor == 1  # the local stack's single broker


def test_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWE_KAFKA_REPLICATION_FACTOR", "3")
    assert KafkaSettings(bootstrap_servers="kafka:9092").replication_factor == 3
    assert KafkaSettings(replication_factor=2).replication_factor == 2  # explicit wins
    monkeypatch.setenv("AWE_KAFKA_REPLICATION_FACTOR", "0")
    with pytest.raises(ValidationError):
        KafkaSettings()


class FakeAdmin:
    made: list[Any] = []

    def __init__(self, **kwargs: Any) -> None:
        self.kwargs = kwargs

    async def start(self) -> None:
        pass

    async def close(self) -> None:
        pass

    async def list_topics(self) -> list[str]:
        return ["awe.x.there"]

    async def create_topics(self, topics: list[Any]) -> None:
        FakeAdmin.made.extend(topics)

    async def describe_topics(self, names: list[str]) -> list[dict[str, Any]]:
        return [{"topic": n, "error_code": 0, "partitions": [{}] * 8} for n in names]


async def test_ensure_topics_uses_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_kafka, "AIOKafkaAdminClient", FakeAdmin)
    monkeypatch.setenv("AWE_KAFKA_REPLICATION_FACTOR", "3")
    FakeAdmin.made = []
    await ensure_topics(KafkaSettings(), ["awe.x.there", "awe.x.jobs"], partitions=8)
    [topic] = FakeAdmin.made
    assert (topic.name, topic.num_partitions, topic.replication_factor) == ("awe.x.jobs", 8, 3)
    assert "replication_factor" not in KafkaSettings().common()  # not a client parameter
