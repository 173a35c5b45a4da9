"""Where the bytes live: one interface, a local-filesystem and an S3 (minio) backend."""

from ._base import Backend, Stored
from ._local import LocalBackend
from ._s3 import S3Backend

__all__ = ["Backend", "LocalBackend", "S3Backend", "Stored"]
