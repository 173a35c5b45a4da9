"""Request and response bodies of the catalog API (objects themselves live in awecore)."""

from __future__ import annotations

import datetime as dt
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from awecore.events import CatalogEvent
from awecore.model import ObjectIn, ObjectOut
from awecore.server import Identity

__all__ = [
    "BATCH_BODY", "BatchIn", "BatchOut", "Caller", "CountOut", "Digest", "GetManyIn", "GetManyOut",
    "MemberIn", "ProjectIn", "ProjectOut", "ReplicateIn", "ReplicateOut", "TokenIn",
    "TokenInfo", "TokenOut", "UserIn", "UserOut",
]


class Caller(Identity):
    """Who is asking (as every service sees callers), with the project new objects go to
    and when the token used expires (None: never)."""

    default_project: str
    expires: dt.datetime | None = None
    #: the projects in which the caller is a calibration scientist (curates the project's
    #: products; their approval makes a calibration anybody's best)
    curates: list[str] = []


class BatchIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    objects: list[ObjectIn] = Field(min_length=1)


#: the request body of ``POST /objects/batch`` in the OpenAPI document: BatchIn's schema,
#: its objects referring to the ObjectIn of the components (the handler reads the body
#: itself, so FastAPI does not derive this from a parameter)
BATCH_BODY: dict[str, Any] = {
    "required": True,
    "content": {"application/json": {"schema": {
        k: v for k, v in BatchIn.model_json_schema(
            ref_template="#/components/schemas/{model}").items() if k != "$defs"}}},
}


class BatchOut(BaseModel):
    oids: list[str]


class GetManyIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    oids: list[str] = Field(min_length=1, max_length=1000)


class GetManyOut(BaseModel):
    objects: list[ObjectOut]
    missing: list[str] = Field(description="oids not found or not visible to you")


class ReplicateIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    events: list[CatalogEvent] = Field(min_length=1, max_length=5000)


class ReplicateOut(BaseModel):
    """Event ids by outcome; 'waiting' ones reference objects this site does not have yet."""

    applied: list[str]
    skipped: list[str]
    waiting: list[str]


class Digest(BaseModel):
    site: str
    objects: int
    digest: str
    min_privileges: int


class CountOut(BaseModel):
    count: int


_NAME = r"^[A-Za-z0-9][A-Za-z0-9_.@-]{0,63}$"


class UserIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(pattern=_NAME)
    is_admin: bool = False
    is_service: bool = False
    project: str | None = Field(default=None, pattern=_NAME,
                                description="default project; a personal one if absent")


class UserOut(BaseModel):
    name: str = Field(description="as this site keeps the user: the bare name of its own "
                      "users, name@site for a user of another site (a guest)")
    site: str | None = Field(default=None, description="the site whose account this is "
                             "(the site that answers)")
    user: str | None = Field(default=None, description="who this is across sites: "
                             "name@site (a same-named user of another site is someone else)")
    is_admin: bool
    is_service: bool
    default_project: str
    projects: list[str]
    created: dt.datetime
    scope: Literal["all", "read", "make"] | None = Field(
        default=None, description="/whoami: the scope of the token that asked")
    expires: dt.datetime | None = Field(
        default=None, description="/whoami: when the token that asked expires (None: never)")


class ProjectIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(pattern=_NAME)
    description: str = Field(default="", max_length=1000)


class ProjectOut(ProjectIn):
    members: list[str]
    calibration_scientists: list[str] = Field(
        default_factory=list, description="members who curate the project's products and "
        "whose approval makes a calibration everybody's best")


class MemberIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    user: str = Field(pattern=_NAME, description="a user of this site (bob) or of another "
                      "(bob@other-site: made a guest here on first mention)")
    role: Literal["member", "calibration"] = Field(
        default="member", description="'calibration': a calibration scientist, who curates "
        "the project's products and approves its calibrations (given again, the role "
        "changes)")


class TokenIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    user: str | None = Field(default=None, description="admins may create tokens for others "
                             "(bob: this site's user; bob@other-site: a guest)")
    label: str = Field(default="", max_length=200)
    scope: Literal["all", "read", "make"] = Field(
        default="all", description="'read': the token may only read (403 on any write); "
        "'make': it may read, store files and register objects, nothing else (what the "
        "compute service is delegated to make products on its user's behalf)")
    expires: dt.datetime | None = Field(
        default=None, description="when the token stops working (401 after; with a time "
        "zone, in the future); None: never")


class TokenOut(BaseModel):
    token: str = Field(description="shown once; only its hash is stored")
    id: str = Field(description="the token's public id (`awe token list`, revoke)")
    user: str = Field(description="whose: name@site")
    label: str
    scope: str = "all"
    expires: dt.datetime | None = None


class TokenInfo(BaseModel):
    """A token as its owner sees it in a listing: never the secret, nor its hash."""

    id: str
    user: str = Field(description="whose: name@site")
    label: str
    created: dt.datetime
    last_used: dt.datetime | None = Field(description="to the minute; None: never used")
    revoked: bool
    revoked_at: dt.datetime | None
    scope: str = "all"
    expires: dt.datetime | None = None
