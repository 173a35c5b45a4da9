"""The Python client: ``awe.connect()``, then queries and objects work at the prompt."""

from ._async import AsyncCatalogClient
from ._compute import ComputeClient, JobFailed
from ._http import CatalogClient
from ._lineage import LineageClient
from ._session import connect, current, read_env_file, settings_from_env
from ._storage import StorageClient
from ._table import to_table

__all__ = ["AsyncCatalogClient", "CatalogClient", "ComputeClient", "JobFailed",
           "LineageClient", "StorageClient", "connect", "current", "read_env_file",
           "settings_from_env", "to_table"]
