"""AWE core library: ``import awecore as awe``.

After ``awe.connect()`` the classes of the object model query the catalog::

    q = (ReducedScienceFrame.chip.name == 'ccd53') & (ReducedScienceFrame.filter.name == '841')
    x = [k.imstat.stdev for k in q]
    y = [k.flat.imstat.stdev for k in q]
"""

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
from .model import __all__ as _model_all
from .query import Query
from .sources import Source

__version__ = "0.1.0"

__all__ = [
    "AweError", "CatalogClient", "ChecksumMismatch", "Conflict", "Forbidden", "InvalidObject",
    "InvalidQuery", "InvalidRequest", "NotFound", "PayloadTooLarge", "QCRefused", "Query",
    "ServiceUnavailable", "Source", "Unauthorized", "connect", "current", *_model_all,
]
