"""Object ids: UUIDv7, time-ordered and globally unique, so sites never collide."""

from __future__ import annotations

import uuid

import uuid6

__all__ = ["new_oid", "parse_oid"]


def new_oid() -> str:
    return str(uuid6.uuid7())


def parse_oid(value: str) -> uuid.UUID:
    """Parse an oid, raising ValueError with a readable message."""
    try:
        return uuid.UUID(str(value))
    except (ValueError, AttributeError, TypeError):
        raise ValueError(f"{value!r} is not an object id (a UUID)") from None
