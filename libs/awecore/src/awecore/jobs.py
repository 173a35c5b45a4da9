"""The compute service's models, shared with the client."""

from __future__ import annotations

import datetime as dt
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

__all__ = ["JobOut", "JobPage", "Submitted", "TargetIn"]

Status = Literal["waiting", "ready", "running", "done", "failed", "cancelled"]


class TargetIn(BaseModel):
    """What to make: a class for a night and chip (and filter; and raw frame for a reduced
    frame); parameters tune it into a separate product."""

    model_config = ConfigDict(extra="forbid")

    cls: str = Field(max_length=100)
    date: dt.date
    chip: str = Field(max_length=100)
    filter: str | None = Field(default=None, max_length=100)
    raw: str | None = Field(default=None, max_length=40)
    params: dict[str, Any] | None = None
    dry_run: bool = False


class JobOut(BaseModel):
    id: str
    cls: str
    chip: str
    filter: str | None
    night: dt.date
    raw: str | None
    params: dict[str, Any]
    reasons: list[str]
    product: str
    deps: list[str]
    status: Status
    worker: str | None
    attempts: int
    error: str | None
    submitted_by: str
    created: dt.datetime
    started: dt.datetime | None
    finished: dt.datetime | None


class Submitted(BaseModel):
    """The plan, and the jobs that make what it lacks (the root job last)."""

    plan: list[str]
    target: str | None = Field(description="oid of the target, known before it is made")
    jobs: list[JobOut]


class JobPage(BaseModel):
    jobs: list[JobOut]
    next_offset: int | None
