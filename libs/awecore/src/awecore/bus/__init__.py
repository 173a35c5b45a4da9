"""Kafka helpers: settings that produce client parameters, producers, consumers, topics."""

from ._kafka import KafkaSettings, ensure_topics, make_consumer, make_producer

__all__ = ["KafkaSettings", "ensure_topics", "make_consumer", "make_producer"]
