"""One JSON log format for everything a service process prints.

structlog renders our own events; the stdlib root logger gets a handler with the same JSON
formatter, so the lines of uvicorn, aiokafka, httpx, asyncio and Python warnings come out
alike (one JSON object per line, on stderr), with the bound context (service, request id,
job) merged into each. uvicorn's own handlers are removed: its loggers propagate to the
root instead (its access log is left off above DEBUG: the kit's request middleware logs
requests with their id and duration). httpx logs each call a service makes at INFO, with
the request id it serves.
"""

from __future__ import annotations

import logging
import sys

import structlog
from structlog.types import EventDict, Processor, WrappedLogger

__all__ = ["configure_logging"]

#: loggers that bring handlers of their own (uvicorn's dictConfig): made to propagate
_OWN_HANDLERS = ("uvicorn", "uvicorn.error", "uvicorn.access", "uvicorn.asgi")
#: one line per request, which the kit's middleware logs already (with id and duration)
_QUIET = {"uvicorn.access": logging.WARNING}


def _service(name: str) -> Processor:
    def add(_: WrappedLogger, __: str, event: EventDict) -> EventDict:
        event.setdefault("service", name)
        return event
    return add


def configure_logging(service: str, level: str = "INFO") -> None:
    """JSON lines on stderr for ``service`` at ``level``, for every logger of the process."""
    numeric = logging.getLevelName(level.upper())
    if not isinstance(numeric, int):
        raise ValueError(f"unknown log level {level!r}: use DEBUG, INFO, WARNING or ERROR")
    shared: list[Processor] = [
        structlog.contextvars.merge_contextvars,
        _service(service),
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=[*shared, structlog.stdlib.ExtraAdder()],
        processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                    structlog.processors.format_exc_info,
                    structlog.processors.JSONRenderer()])
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(formatter)
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(numeric)
    for name in _OWN_HANDLERS:
        own = logging.getLogger(name)
        own.handlers.clear()
        own.propagate = True
        own.setLevel(logging.NOTSET)
    if numeric > logging.DEBUG:  # at DEBUG, everything
        for name, quiet in _QUIET.items():
            logging.getLogger(name).setLevel(max(quiet, numeric))
    else:
        for name in _QUIET:
            logging.getLogger(name).setLevel(logging.NOTSET)
    logging.captureWarnings(True)
    structlog.configure(
        processors=[*shared, structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        wrapper_class=structlog.make_filtering_bound_logger(numeric),
        logger_factory=structlog.stdlib.LoggerFactory(),
        cache_logger_on_first_use=False,
    )
