"""Files in storage: unique names, their checks, and the wire model shared by all parts."""

from __future__ import annotations

import datetime as dt
import re
from typing import Literal
from urllib.parse import quote

from pydantic import BaseModel

from .errors import InvalidRequest

__all__ = ["RAW_PREFIX", "FileDeleted", "FileEntry", "FileInfo", "FilePage", "FileStored",
           "Verification", "check_name", "name_part", "url_path"]

#: Raw data is sacred: files under this prefix are never deleted.
RAW_PREFIX = "raw/"
MAX_NAME = 512
#: The characters a part of a name may hold as they are; anything else is percent-encoded
#: by :func:`name_part` (``%`` itself included), so a part never holds a ``/``.
PART_SAFE = "_.,:+=@#-"
_PART = r"(?:[A-Za-z0-9_]|%[0-9A-F]{2})(?:[A-Za-z0-9_.,:+=@#-]|%[0-9A-F]{2})*"
_NAME = re.compile(rf"^{_PART}(?:/{_PART})*$")


def check_name(name: str) -> str:
    """The one grammar of storage names, used by every client and the server: relative,
    '/'-separated parts of letters, digits and ``_.,:+=@#-`` (a part starts with a letter,
    digit or ``_``), where anything else appears percent-encoded (``%20``, ``%2F``, ``%25``:
    what :func:`name_part` makes of a chip called ``CCD 1/A``); no '..', no control
    characters, bounded. On the wire a name is percent-encoded once more (:func:`url_path`)."""
    if not name or len(name) > MAX_NAME:
        raise InvalidRequest(f"a file name has 1 to {MAX_NAME} characters; got {len(name)}")
    if any(ord(c) < 32 or ord(c) == 127 for c in name):
        raise InvalidRequest("a file name cannot contain control characters")
    if not _NAME.match(name) or any(part in (".", "..") for part in name.split("/")):
        raise InvalidRequest(
            f"invalid file name {name!r}: use letters, digits, _.,:+=@#- and %XX escapes in "
            "'/'-separated parts, each starting with a letter, digit, _ or an escape (no '..', "
            "no leading '/'); awecore.files.name_part(text) makes a part of any text")
    return name


def name_part(text: str) -> str:
    """Any text (a chip, filter or instrument name) as one part of a storage name: the
    characters the grammar holds stay, the rest (``/``, spaces, ``%``, non-ASCII, a leading
    ``.`` or ``-``) are percent-encoded, so ``ESO_CCD_#65`` stays and ``CCD 1/A`` becomes
    ``CCD%201%2FA``. Distinct texts give distinct parts."""
    if not text:
        raise InvalidRequest("an empty name cannot be part of a file name")
    # quote() never escapes ``~``, which the grammar does not hold
    encoded = quote(text, safe=PART_SAFE).replace("~", "%7E")
    if not (encoded[0].isalnum() or encoded[0] in "_%"):
        encoded = f"%{ord(encoded[0]):02X}{encoded[1:]}"
    return encoded


def url_path(name: str) -> str:
    """A storage name as it travels in a URL path: every character outside letters,
    digits, ``_.-~`` and the separating ``/`` percent-encoded (``#`` would end the path,
    ``%`` start an escape)."""
    return quote(check_name(name), safe="/")


class FileInfo(BaseModel):
    name: str
    size: int
    sha256: str
    owner: str
    created: dt.datetime
    site: str


class FileEntry(BaseModel):
    name: str
    size: int


class FilePage(BaseModel):
    files: list[FileEntry]
    next_after: str | None


class Verification(BaseModel):
    name: str
    ok: bool
    expected_sha256: str
    actual_sha256: str
    size: int


class FileStored(BaseModel):
    kind: Literal["stored"] = "stored"
    file: FileInfo


class FileDeleted(BaseModel):
    kind: Literal["deleted"] = "deleted"
    name: str
    by: str
