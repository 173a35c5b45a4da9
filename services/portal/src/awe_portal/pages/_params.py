"""Reading what a person typed into the QC and timeline forms: dates, oids, verdicts.

Each refuses bad input with ``InvalidRequest`` (a 400 page saying what is wrong), so a
typo never reaches a service as a malformed request or the portal as a 500.
"""

from __future__ import annotations

import datetime as dt
import re

from awecore.errors import InvalidRequest
from awecore.ids import parse_oid

__all__ = ["MAX_REASON", "NAME", "check_name", "oid", "optional_time", "reason", "verdict"]

#: a chip, filter or class name as the forms accept it
NAME = re.compile(r"^[A-Za-z0-9_.#%/ +-]{1,100}$")
#: characters of a curation's reason (the catalog's limit)
MAX_REASON = 2000


def check_name(value: str | None, what: str) -> str | None:
    """A chip, filter or class name, or None when empty."""
    text = (value or "").strip()
    if not text:
        return None
    if not NAME.match(text):
        raise InvalidRequest(f"{what} {text[:60]!r} is not a name (letters, digits, _ . # "
                             "% / + - and spaces, at most 100)")
    return text


def optional_time(value: str | None, what: str, end_of_day: bool = False) -> dt.datetime | None:
    """A date (YYYY-MM-DD: its start, or with ``end_of_day`` its end) or a date and time
    (ISO 8601, as a datetime-local input sends it; UTC when no zone is given)."""
    text = (value or "").strip()
    if not text:
        return None
    try:
        if len(text) == 10:
            day = dt.date.fromisoformat(text)
            when = dt.datetime.combine(day, dt.time(0), tzinfo=dt.UTC)
            return when + dt.timedelta(days=1) - dt.timedelta(microseconds=1) \
                if end_of_day else when
        when = dt.datetime.fromisoformat(text)
    except ValueError:
        raise InvalidRequest(f"{what}: {text[:40]!r} is not a date (YYYY-MM-DD) or a time "
                             "(YYYY-MM-DDTHH:MM)") from None
    return when if when.tzinfo else when.replace(tzinfo=dt.UTC)


def oid(value: str | None, what: str = "oid") -> str:
    try:
        return str(parse_oid((value or "").strip()))
    except ValueError as exc:
        raise InvalidRequest(f"{what}: {exc}") from None


def verdict(value: str | None) -> int:
    """is_valid as the form sends it: 0 bad, 1 good, 2 proposed."""
    text = (value or "").strip()
    if text not in ("0", "1", "2"):
        raise InvalidRequest("is_valid must be 0 (bad), 1 (good) or 2 (proposed)")
    return int(text)


def reason(value: str | None, required: bool = True) -> str | None:
    text = (value or "").strip()
    if not text:
        if required:
            raise InvalidRequest("say why (a comment is kept in the object's history)")
        return None
    if len(text) > MAX_REASON:
        raise InvalidRequest(f"the comment is longer than {MAX_REASON} characters")
    return text
