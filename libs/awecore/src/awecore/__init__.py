"""AWE core library: ``import awecore as awe``.

After ``awe.connect()`` the classes of the object model query the catalog::

    q = (ReducedScienceFrame.chip.name == 'ccd53') & (ReducedScienceFrame.filter.name == '841')
    x = [k.imstat.stdev for k in q]
    y = [k.flat.imstat.stdev for k in q]

The library is built in layers, each importing only those below it (checked by
``make lint``; see docs/architecture.md): contracts (ids, errors, files, records, query,
model, events, jobs, lineage, sources) -> client -> science (pipelines, then targets,
ingest, verify) -> server (the service kit) -> developer tools (stack, sim, cli, demo).
This module stands above them all: it assembles the library, binding the client's
connection and the planner into the model, which cannot import them.
"""

from . import model as _model
from . import targets as _targets
from .client import CatalogClient, connect, current
from .errors import (
    AweError,
    ChecksumMismatch,
    Conflict,
    Forbidden,
    InvalidObject,
    InvalidQuery,
    InvalidRequest,
    NotFound,
    PayloadTooLarge,
    QCRefused,
    ServiceUnavailable,
    Unauthorized,
)
from .model import *  # noqa: F403
from .model import Query
from .model import __all__ as _model_all
from .sources import Source

_model.bind(current, _targets)

__version__ = "0.1.0"

__all__ = [
    "AweError", "CatalogClient", "ChecksumMismatch", "Conflict", "Forbidden", "InvalidObject",
    "InvalidQuery", "InvalidRequest", "NotFound", "PayloadTooLarge", "QCRefused", "Query",
    "ServiceUnavailable", "Source", "Unauthorized", "connect", "current", *_model_all,
]
