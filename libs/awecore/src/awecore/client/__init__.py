"""The Python client: ``awe.connect()``, then queries and objects work at the prompt."""

from ._async import AsyncCatalogClient
from ._async_storage import AsyncStorageClient
from ._compute import ComputeClient, JobFailed
from ._http import CatalogClient
from ._lineage import LineageClient
from ._problem import raise_for_problem
from ._request_id import (
    REQUEST_ID_HEADER,
    async_request_id_hooks,
    current_request_id,
    using_request_id,
)
from ._session import connect, current, read_env_file, settings_from_env
from ._storage import StorageClient

__all__ = ["REQUEST_ID_HEADER", "AsyncCatalogClient", "AsyncStorageClient",
           "CatalogClient", "ComputeClient",
           "JobFailed", "LineageClient", "StorageClient", "async_request_id_hooks", "connect",
           "current",
           "current_request_id", "raise_for_problem", "read_env_file", "settings_from_env",
           "using_request_id"]
