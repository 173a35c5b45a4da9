"""The compute service's models, shared with the client."""

from __future__ import annotations

import datetime as dt
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, computed_field, model_validator

from .dimensions import DIMENSIONS, target_values
from .errors import InvalidRequest
from .users import qualify

__all__ = ["MAX_LOOKUP", "MAX_TARGETS", "JobOut", "JobPage", "JobsIn", "Ownership", "PlanIn",
           "Submitted", "TargetIn", "TargetRef"]

MAX_TARGETS = 20_000
MAX_LOOKUP = 10_000  # job ids per lookup

Status = Literal["waiting", "ready", "running", "done", "failed", "cancelled"]


class TargetRef(BaseModel):
    """What to make: a class for a night and chip (and filter; and raw frame for what is
    made from one), given as fields or as a data ID (``{"night": ..., "chip": ...}``: the
    values of the class's dimensions, see ``awecore.dimensions``), or both where they
    agree."""

    model_config = ConfigDict(extra="forbid")

    cls: str = Field(max_length=100)
    date: dt.date | None = Field(default=None, description="the night (or data_id's night)")
    chip: str | None = Field(default=None, max_length=100)
    filter: str | None = Field(default=None, max_length=100)
    raw: str | None = Field(default=None, max_length=40)
    data_id: dict[str, str] | None = Field(
        default=None, max_length=len(DIMENSIONS),
        description="dimension -> value: night (YYYY-MM-DD), chip, filter, raw (an oid), "
        "tile (a sky tile: a product across chips and nights); instrument is named by the "
        "chip, or by itself for a product over a tile")

    @property
    def extra(self) -> dict[str, str]:
        """The data ID's dimensions beyond night, chip, filter and raw frame (a tile)."""
        return {k: str(v) for k, v in (self.data_id or {}).items()
                if k not in ("night", "date", "chip", "filter", "raw")}

    @model_validator(mode="after")
    def _merge_data_id(self) -> TargetRef:
        """Fill the fields from the data ID; refuse an unknown dimension, a value given
        twice differently, or a target without night or chip."""
        try:
            night, self.chip, self.filter, self.raw, extra = target_values(
                self.cls, (), self.date, self.chip, self.filter, self.raw, self.data_id)
            self.date = night if isinstance(night, dt.date) or night is None else \
                dt.date.fromisoformat(str(night))
            if extra:
                self.data_id = {**(self.data_id or {}), **extra}
        except InvalidRequest as exc:
            raise ValueError(exc.detail) from None
        except ValueError:
            raise ValueError(f"night {night!r} is not YYYY-MM-DD") from None
        return self


class Ownership(BaseModel):
    """Who the products made for a submission belong to: the submitter, in the project
    they name, at the privilege level they ask for (default 1: only them, Astro-WISE's
    MyDB). A user shares a product later by raising its level. The workers make them with
    a credential delegated by the submitter (scope ``make``), never as an all-powerful
    account, so the catalogue records the submitter as their creator."""

    project: str | None = Field(default=None, max_length=100,
                                description="the products' project (one of the submitter's; "
                                "None: their default project)")
    privileges: int = Field(default=1, ge=1, le=5,
                            description="who may see the products: 1 me, 2 my project, "
                            "3 this site, 4 every site, 5 the world")


class TargetIn(TargetRef, Ownership):
    """One target; parameters tune it into a separate product."""

    params: dict[str, Any] | None = None
    dry_run: bool = False
    anew: bool = Field(default=False, description="make the target even if an up-to-date "
                       "one exists (what lies beneath is made only if missing or stale)")


class PlanIn(Ownership):
    """Many targets planned as one DAG: what they share is made once. Parameters tune a
    class (every target of it, and every use of it beneath the others)."""

    model_config = ConfigDict(extra="forbid")

    targets: list[TargetRef] = Field(min_length=1, max_length=MAX_TARGETS)
    params: dict[str, dict[str, Any]] | None = None
    dry_run: bool = False


class JobsIn(BaseModel):
    ids: list[str] = Field(min_length=1, max_length=MAX_LOOKUP)


class JobOut(BaseModel):
    id: str
    cls: str
    chip: str | None
    filter: str | None
    night: dt.date | None
    raw: str | None
    dims: dict[str, str] = Field(default_factory=dict, description="dimensions beyond chip, "
                                 "filter, night and raw frame: a sky tile")
    params: dict[str, Any]
    reasons: list[str]
    product: str
    deps: list[str]
    status: Status
    worker: str | None
    attempts: int
    error: str | None
    submitted_by: str = Field(description="who, as the site that runs the job keeps users "
                              "(see submitter)")
    site: str | None = Field(default=None, description="the site that runs the job")
    project: str | None = Field(default=None, description="the product's project (None: "
                                "the submitter's default)")
    privileges: int = Field(default=1, description="the product's privilege level")
    created: dt.datetime
    started: dt.datetime | None
    finished: dt.datetime | None

    @computed_field(description="who submitted it across sites: name@site")  # type: ignore[prop-decorator]
    @property
    def submitter(self) -> str:
        return self.submitted_by if self.site is None else qualify(self.submitted_by, self.site)

    @computed_field  # type: ignore[prop-decorator]
    @property
    def data_id(self) -> dict[str, str]:
        """What the job makes, as a data ID: the dimensions a job knows (chip, filter,
        night, raw frame), those its product has."""
        values = {"chip": self.chip, "filter": self.filter,
                  "night": self.night.isoformat() if self.night else None, "raw": self.raw,
                  **self.dims}
        return {d: v for d, v in values.items() if v is not None}


class Submitted(BaseModel):
    """The plan, and the jobs that make what it lacks (inputs first)."""

    plan: list[str]
    target: str | None = Field(description="oid of the (first) target, known before it is made")
    targets: list[str | None] = Field(default_factory=list,
                                      description="oids of every target, in the order asked")
    jobs: list[JobOut]


class JobPage(BaseModel):
    jobs: list[JobOut]
    next_offset: int | None
