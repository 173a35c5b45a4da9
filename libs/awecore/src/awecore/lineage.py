"""The lineage API's models, shared by the lineage service and the client."""

from __future__ import annotations

import datetime as dt

from pydantic import BaseModel, Field, computed_field

from .users import qualify

__all__ = ["Edge", "Graph", "Impact", "Node", "Path", "StaleEdge", "Staleness"]


class Node(BaseModel):
    """An object in the graph. Its curation fields are as they are now, or in a graph ``at``
    a past time as they were then (None: not known, or never set)."""

    oid: str
    type: str
    site: str
    creation_date: dt.datetime
    creator: str
    is_valid: int
    privileges: int | None = None
    timestamp_start: dt.datetime | None = None
    timestamp_end: dt.datetime | None = None
    software_version: str | None = None
    filename: str | None = None
    #: what it is for: the values of its class's dimensions (instrument, chip, filter, night,
    #: raw frame), e.g. {"instrument": "AWECAM", "chip": "ccd53", "night": "2003-02-14"}
    data_id: dict[str, str] | None = None
    depth: int = 0

    @computed_field(description="who made it across sites: name@site")  # type: ignore[prop-decorator]
    @property
    def owner(self) -> str:
        return qualify(self.creator, self.site)


class Edge(BaseModel):
    """``src`` was made from ``dst`` (through its reference ``name``)."""

    src: str
    name: str
    dst: str


class Graph(BaseModel):
    root: str
    direction: str
    nodes: list[Node]
    edges: list[Edge]
    at: dt.datetime | None = Field(default=None, description="the graph as it was then")


class Impact(BaseModel):
    root: str
    total: int
    by_class: dict[str, list[str]]


class Path(BaseModel):
    src: str
    dst: str
    nodes: list[str]
    names: list[str]


class StaleEdge(BaseModel):
    name: str
    input: str
    input_type: str
    reasons: list[str]
    upstream: list[StaleEdge] = []


class Staleness(BaseModel):
    oid: str
    type: str
    stale: bool
    reasons: list[str] = Field(description="why the object itself is stale (software version)")
    edges: list[StaleEdge] = Field(description="each input, and why it makes this stale")
