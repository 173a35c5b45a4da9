"""The service kit: what every AWE service process is built from.

Settings (:class:`ServiceSettings`), the app builder (:func:`service_app`, with the
operations routes ``/livez``, ``/readyz``, ``/health``, ``/metrics``, request ids, JSON
logs and problem documents), the generic :func:`get_factory` dependency, who calls
(:class:`Identity`), PostgreSQL (:mod:`.pg`), Kafka (:mod:`.kafka`), background loops and
their retries (:mod:`.loops`), the Kafka consumer loop (:func:`consume`), metrics, and the
status server and heartbeat of the processes that serve no API (relay, workers).

Layer: above the contracts and the client; it imports no science and no developer tool.
"""

from .app import VERSION, Kit, ServiceContext, get_factory, service_app
from .auth import (
    MAKES,
    READS,
    Identity,
    TokenAuthenticator,
    get_identity,
    get_reader,
    is_anonymous_read,
    refuse_writes,
)
from .follow import Records, consume
from .kafka import (
    BrokerProbe,
    KafkaSettings,
    TopicSettings,
    WrongPartitions,
    close_quietly,
    ensure_topics,
    make_consumer,
    make_producer,
)
from .logs import configure_logging
from .loops import Loops, every, keep_running, pause, run_until
from .metrics import Metrics
from .middleware import BodyLimit, RequestContext
from .problems import PROBLEM, install_error_handlers, problem_response
from .settings import SITE_PATTERN, ServiceSettings
from .status import Heartbeat, StatusServer

__all__ = [
    "MAKES", "PROBLEM", "READS", "SITE_PATTERN", "VERSION", "BodyLimit", "BrokerProbe", "Heartbeat",
    "Identity", "KafkaSettings", "Kit", "Loops", "Metrics", "Records", "RequestContext",
    "ServiceContext", "ServiceSettings", "StatusServer", "TokenAuthenticator", "TopicSettings",
    "WrongPartitions", "close_quietly", "configure_logging", "consume", "ensure_topics", "every",
    "get_factory",
    "get_identity", "get_reader", "install_error_handlers", "is_anonymous_read",
    "keep_running", "make_consumer", "make_producer",
    "pause", "problem_response", "refuse_writes", "run_until", "service_app",
]
