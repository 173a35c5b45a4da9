"""Object ids: UUIDv7, time-ordered and globally unique, so sites never collide."""

from __future__ import annotations

import uuid

import uuid6

__all__ = ["new_oid", "parse_oid", "prefix_range"]


def new_oid() -> str:
    return str(uuid6.uuid7())


def parse_oid(value: str) -> uuid.UUID:
    """Parse an oid, raising ValueError with a readable message."""
    try:
        return uuid.UUID(str(value))
    except (ValueError, AttributeError, TypeError):
        raise ValueError(f"{value!r} is not an object id (a UUID)") from None


def prefix_range(text: str) -> tuple[uuid.UUID, uuid.UUID] | None:
    """The ids that start with ``text`` (a prefix of the canonical form, dashes optional),
    as an inclusive range: ids are shown in full but typed short, and a range finds them by
    the primary key's index. None if ``text`` cannot start an id."""
    text = text.strip().lower()
    digits = text.replace("-", "")
    if not 0 < len(digits) <= 32 or any(c not in "0123456789abcdef" for c in digits):
        return None
    low = uuid.UUID(digits.ljust(32, "0"))
    if "-" in text and not str(low).startswith(text):
        return None  # dashes where a UUID has none
    return low, uuid.UUID(digits.ljust(32, "f"))
