"""Kafka helpers: settings that produce client parameters, producers, consumers, topics."""

from ._kafka import KafkaSettings, TopicSettings, ensure_topics, make_consumer, make_producer
from ._loops import every, run_until

__all__ = ["KafkaSettings", "TopicSettings", "ensure_topics", "every", "make_consumer",
           "make_producer", "run_until"]
