"""Event envelopes: CloudEvents attributes around pydantic payloads, JSON on the wire.

The same envelope travels on Kafka and through the catalog's HTTP changelog, so a consumer
that catches up over HTTP applies exactly what it would have read from the topic.
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_serializer

from .model import CurationUpdate, ObjectOut

__all__ = [
    "OBJECT_CREATED",
    "OBJECT_CURATED",
    "CatalogEvent",
    "ChangePage",
    "ObjectCreated",
    "ObjectCurated",
    "catalog_changes_topic",
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


class ObjectCurated(BaseModel):
    model_config = ConfigDict(extra="forbid")
    kind: Literal["curated"] = "curated"
    oid: str
    changes: CurationUpdate
    hlc: int
    site: str

    @field_serializer("changes")
    def _only_changed(self, changes: CurationUpdate) -> dict[str, Any]:
        """Carry only the fields that changed (a null comment is a change; absent is not)."""
        return changes.model_dump(mode="json", exclude_unset=True)


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
