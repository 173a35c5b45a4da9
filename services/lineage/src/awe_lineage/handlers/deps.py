"""Request dependencies: the factory and the caller (both the kit's, generic).

The lineage of public objects (privilege 5) is read without a token: a read without an
Authorization header is the anonymous caller, and the walk shows it only objects at 5
(anything else on the way is ``HIDDEN_OID``)."""

from __future__ import annotations

from awecore.server import get_factory, get_reader

__all__ = ["get_caller", "get_factory"]

get_caller = get_reader
