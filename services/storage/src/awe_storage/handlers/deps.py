"""Request dependencies: the factory and the caller (both the kit's, generic).

Files of public objects (privilege 5) are read without a token: a read without an
Authorization header is the anonymous caller, whom ``services.access`` lets read only the
files of objects at 5; every write still needs a token (401)."""

from __future__ import annotations

from awecore.server import get_factory, get_reader

__all__ = ["get_caller", "get_factory"]

get_caller = get_reader
