"""Reading the catalog's database: read-only sessions only."""

from .session import read_only

__all__ = ["read_only"]
