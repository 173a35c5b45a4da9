"""Wire format of objects: what the client sends, the catalog stores and events carry."""

from __future__ import annotations

import datetime as dt
import re
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, computed_field, field_validator, model_validator

from .ids import parse_oid
from .users import qualify

__all__ = ["CurationChange", "CurationUpdate", "FieldChange", "ObjectIn", "ObjectOut", "Privileges",
           "RefValue", "TimelineEntry", "TimelinePage", "Validity"]

#: 1 only me (MyDB), 2 my project, 3 every user of this site, 4 every user of every site,
#: 5 the world (anonymous readers and the Virtual Observatory).
Privileges = Literal[1, 2, 3, 4, 5]
#: 0 bad, 1 good, 2 proposed.
Validity = Literal[0, 1, 2]
RefValue = str | list[str]

MAX_REF_LIST = 10_000


#: an oid as the catalogue writes it (lowercase, dashed): taken as it is, without parsing
_CANONICAL = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


def _check_oid(value: str) -> str:
    """The canonical form of an oid (every record read has several: a plan reads 10^4)."""
    if isinstance(value, str) and _CANONICAL.fullmatch(value):
        return value
    return str(parse_oid(value))


class ObjectIn(BaseModel):
    """An object as a client submits it; identity and provenance fields are set by the catalog."""

    model_config = ConfigDict(extra="forbid")

    type: str = Field(min_length=1, max_length=100)
    oid: str | None = Field(default=None, description="UUIDv7; the catalog assigns one if absent")
    project: str | None = Field(default=None, max_length=100)
    privileges: Privileges = 1
    is_valid: Validity = 1
    quality_flags: int = Field(default=0, ge=0, le=2**62)
    timestamp_start: dt.datetime | None = None
    timestamp_end: dt.datetime | None = None
    filename: str | None = Field(default=None, max_length=1024)
    file_size: int | None = Field(default=None, ge=0)
    checksum: str | None = Field(default=None, max_length=200)
    process_params: dict[str, Any] | None = None
    software_version: str | None = Field(default=None, max_length=100)
    comments: str | None = Field(default=None, max_length=10_000)
    attributes: dict[str, Any] = Field(default_factory=dict)
    refs: dict[str, RefValue] = Field(default_factory=dict)

    @field_validator("oid")
    @classmethod
    def _oid(cls, value: str | None) -> str | None:
        return None if value is None else _check_oid(value)

    @field_validator("refs")
    @classmethod
    def _refs(cls, value: dict[str, RefValue]) -> dict[str, RefValue]:
        out: dict[str, RefValue] = {}
        for name, ref in value.items():
            if isinstance(ref, list):
                if len(ref) > MAX_REF_LIST:
                    raise ValueError(f"reference list {name!r} has more than {MAX_REF_LIST} items")
                out[name] = [_check_oid(r) for r in ref]
            else:
                out[name] = _check_oid(ref)
        return out

    @field_validator("timestamp_start", "timestamp_end")
    @classmethod
    def _aware(cls, value: dt.datetime | None) -> dt.datetime | None:
        if value is not None and value.tzinfo is None:
            return value.replace(tzinfo=dt.UTC)
        return value


def _without(data: Any, *derived: str) -> Any:
    """An input without the fields a model derives (``computed_field``s, which it writes
    but, with ``extra="forbid"``, would refuse to read back)."""
    if isinstance(data, dict) and any(k in data for k in derived):
        return {k: v for k, v in data.items() if k not in derived}
    return data


class ObjectOut(ObjectIn):
    """A stored object, as the catalog returns it and as change events carry it."""

    model_config = ConfigDict(extra="forbid")

    oid: str
    project: str
    site: str
    creation_date: dt.datetime
    creator: str = Field(description="who made it, as its site keeps users: a bare name for "
                         "a user of that site, name@site for another's (see owner)")
    hlc: int
    curation_hlc: int
    curation_site: str

    @model_validator(mode="before")
    @classmethod
    def _derived(cls, data: Any) -> Any:
        return _without(data, "owner")

    @computed_field(description="who made it across sites: name@site "  # type: ignore[prop-decorator]
                    "(a same-named user of another site is someone else)")
    @property
    def owner(self) -> str:
        return qualify(self.creator, self.site)


class CurationUpdate(BaseModel):
    """The only changes an object accepts after creation."""

    model_config = ConfigDict(extra="forbid")

    is_valid: Validity | None = None
    timestamp_start: dt.datetime | None = None
    timestamp_end: dt.datetime | None = None
    privileges: Privileges | None = None
    comments: str | None = Field(default=None, max_length=10_000)
    #: why (kept in the object's curation history, not a field of the object)
    reason: str | None = Field(default=None, max_length=2_000)

    def changed(self) -> dict[str, Any]:
        """The fields that change (``reason`` is not one: it goes into the history)."""
        return self.model_dump(exclude_unset=True, exclude={"reason"})


class FieldChange(BaseModel):
    """One field's value before and after a curation."""

    model_config = ConfigDict(extra="forbid")

    old: Any = None
    new: Any = None


class CurationChange(BaseModel):
    """One curation of an object as its history keeps it: who changed what, when, where,
    and why. Every site keeps the same history (it replicates with the object);
    ``GET /objects/{oid}/history`` answers it, oldest first."""

    model_config = ConfigDict(extra="forbid")

    oid: str
    at: dt.datetime
    by: str = Field(description="who, as the curating site keeps users (see who)")
    site: str
    reason: str | None = None
    changes: dict[str, FieldChange]

    @model_validator(mode="before")
    @classmethod
    def _derived(cls, data: Any) -> Any:
        return _without(data, "who")

    @computed_field(description="who curated it across sites: name@site")  # type: ignore[prop-decorator]
    @property
    def who(self) -> str:
        return qualify(self.by, self.site)


class TimelineEntry(BaseModel):
    """One calibration on a calibration timeline (``GET /calibrations/{cls}/timeline``):
    its validity window, verdict and flags, who made it, and its latest curation (who moved
    the window or changed the verdict last, when, and why), so a calibration scientist sees
    overlaps, gaps and who set them without reading every object's history."""

    model_config = ConfigDict(extra="forbid")

    oid: str
    type: str
    timestamp_start: dt.datetime | None
    timestamp_end: dt.datetime | None
    is_valid: Validity
    quality_flags: int
    creator: str
    creation_date: dt.datetime
    site: str
    chip: str | None = Field(default=None, description="the chip's name")
    filter: str | None = Field(default=None, description="the filter's name, if it has one")
    last_curation: CurationChange | None = None

    @model_validator(mode="before")
    @classmethod
    def _derived(cls, data: Any) -> Any:
        return _without(data, "owner")

    @computed_field(description="who made it across sites: name@site")  # type: ignore[prop-decorator]
    @property
    def owner(self) -> str:
        return qualify(self.creator, self.site)


class TimelinePage(BaseModel):
    """One page of a timeline, ordered by window start; ``next_offset`` None on the last."""

    entries: list[TimelineEntry]
    offset: int
    limit: int
    next_offset: int | None
