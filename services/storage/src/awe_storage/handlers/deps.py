"""Request dependencies: the factory and the caller (both the kit's, generic)."""

from __future__ import annotations

from awecore.server import get_factory, get_identity

__all__ = ["get_caller", "get_factory"]

get_caller = get_identity
