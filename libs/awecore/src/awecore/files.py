"""Files in storage: unique names, their checks, and the wire model shared by all parts."""

from __future__ import annotations

import datetime as dt
import re
from typing import Literal

from pydantic import BaseModel

from .errors import InvalidRequest

__all__ = ["RAW_PREFIX", "FileDeleted", "FileEntry", "FileInfo", "FilePage", "FileStored",
           "Verification", "check_name"]

#: Raw data is sacred: files under this prefix are never deleted.
RAW_PREFIX = "raw/"
MAX_NAME = 512
_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.,:+=@#-]*(/[A-Za-z0-9_][A-Za-z0-9_.,:+=@#-]*)*$")


def check_name(name: str) -> str:
    """A storage name: relative, '/'-separated, no '..', no control characters, bounded."""
    if not name or len(name) > MAX_NAME:
        raise InvalidRequest(f"a file name has 1 to {MAX_NAME} characters; got {len(name)}")
    if any(ord(c) < 32 or ord(c) == 127 for c in name):
        raise InvalidRequest("a file name cannot contain control characters")
    if not _NAME.match(name) or any(part in (".", "..") for part in name.split("/")):
        raise InvalidRequest(
            f"invalid file name {name!r}: use letters, digits and _.,:+=@#- in '/'-separated "
            "parts, each starting with a letter, digit or _ (no '..', no leading '/')")
    return name


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
