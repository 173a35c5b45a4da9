"""Event envelopes: CloudEvents attributes around pydantic payloads, JSON on the wire.

The same envelope travels on Kafka and through the catalog's HTTP changelog, so a consumer
that catches up over HTTP applies exactly what it would have read from the topic.
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_serializer

from .model import CurationUpdate, ObjectOut
from .records import CurationChange, FieldChange

__all__ = [
    "OBJECT_CREATED",
    "OBJECT_CURATED",
    "CatalogEvent",
    "ChangePage",
    "ObjectCreated",
    "ObjectCurated",
    "catalog_changes_topic",
    "hlc_time",
    "topic",
]

OBJECT_CREATED = "awe.catalog.object.created.v1"
OBJECT_CURATED = "awe.catalog.object.curated.v1"


def topic(site: str, name: str) -> str:
    """Per-site topic names: ``awe.<site>.<name>``."""
    return f"awe.{site}.{name}"


def catalog_changes_topic(site: str) -> str:
    return topic(site, "catalog.changes")


class ObjectCreated(BaseModel):
    model_config = ConfigDict(extra="forbid")
    kind: Literal["created"] = "created"
    object: ObjectOut
    #: the object's curation history so far, when it reaches a site after it was curated
    #: (federation's snapshot of an object that became shared); None for a new object
    history: list[CurationChange] | None = None


class ObjectCurated(BaseModel):
    """A curation as it happened at its origin site: what changed, and enough for every
    other site to record the same history row (who, when, why, the values before).

    ``by``, ``at``, ``reason`` and ``old`` are absent from events recorded before curation
    history was kept; a site then records what it knows (its own values before)."""

    model_config = ConfigDict(extra="forbid")
    kind: Literal["curated"] = "curated"
    oid: str
    changes: CurationUpdate
    hlc: int
    site: str
    #: the user who curated, at the origin site
    by: str | None = None
    #: when, by the origin site's clock
    at: dt.datetime | None = None
    #: why, as the curator said (CurationUpdate.reason)
    reason: str | None = None
    #: each changed field's value before the change, at the origin site
    old: dict[str, Any] = Field(default_factory=dict)

    @field_serializer("changes")
    def _only_changed(self, changes: CurationUpdate) -> dict[str, Any]:
        """Carry only the fields that changed (a null comment is a change; absent is not);
        the reason travels beside them, not as a field."""
        return changes.model_dump(mode="json", exclude_unset=True, exclude={"reason"})

    def history(self) -> CurationChange:
        """The history row this curation makes, at its origin and at every other site."""
        new = self.changes.model_dump(mode="json", exclude_unset=True, exclude={"reason"})
        old = CurationUpdate.model_validate(
            {k: v for k, v in self.old.items() if k in new}).model_dump(mode="json")
        return CurationChange(
            oid=self.oid, at=self.at or hlc_time(self.hlc), by=self.by or "unknown",
            site=self.site, reason=self.reason,
            changes={k: FieldChange(old=old.get(k), new=v) for k, v in new.items()})


def hlc_time(hlc: int) -> dt.datetime:
    """The wall-clock time in a hybrid logical clock value (``awecore.clock``)."""
    return dt.datetime.fromtimestamp((hlc >> 16) / 1000, dt.UTC)


ChangeData = Annotated[ObjectCreated | ObjectCurated, Field(discriminator="kind")]


class CatalogEvent(BaseModel):
    """A CloudEvents 1.0 envelope; ``sequence`` is the origin catalog's changelog number."""

    model_config = ConfigDict(extra="forbid")

    specversion: Literal["1.0"] = "1.0"
    id: str
    source: str
    type: str
    time: dt.datetime
    subject: str
    datacontenttype: Literal["application/json"] = "application/json"
    sequence: int
    data: ChangeData

    def key(self) -> bytes:
        return self.subject.encode()

    def headers(self) -> list[tuple[str, bytes]]:
        return [("ce_id", self.id.encode()), ("ce_type", self.type.encode()),
                ("ce_sequence", str(self.sequence).encode())]

    def to_bytes(self) -> bytes:
        return self.model_dump_json().encode()

    @classmethod
    def from_bytes(cls, raw: bytes | str) -> CatalogEvent:
        return cls.model_validate_json(raw)


class ChangePage(BaseModel):
    events: list[CatalogEvent]
    last_sequence: int = Field(description="highest sequence in the changelog now")
    next_after: int | None = Field(description="pass as ?after= for the next page; None at the end")


def source_for(site: str, service: str = "catalog") -> str:
    return f"/awe/{site}/{service}"
