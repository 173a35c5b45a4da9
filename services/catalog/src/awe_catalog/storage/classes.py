"""Registered classes: one row per version of a user's class schema (``object_classes``)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import asyncpg

from awecore.model import ClassSchema

__all__ = ["CHANNEL", "ClassStore", "StoredClass"]

#: where a registration is announced to every catalog process of the database
CHANNEL = "awe_classes"
#: registrations take turns (one transaction at a time decides what a name's next version is)
_LOCK = 7_031_007


@dataclass(frozen=True)
class StoredClass:
    schema: ClassSchema
    registered_by: str
    registered_at: dt.datetime


def _stored(row: asyncpg.Record) -> StoredClass:
    return StoredClass(ClassSchema.model_validate(row["schema"]), row["registered_by"],
                       row["registered_at"])


class ClassStore:
    def __init__(self, conn: asyncpg.Connection) -> None:
        self.conn = conn

    async def lock(self) -> None:
        """Hold the registrations' lock until the transaction ends."""
        await self.conn.execute("SELECT pg_advisory_xact_lock($1)", _LOCK)

    async def versions(self, name: str) -> list[StoredClass]:
        """Every version of a class, oldest first."""
        rows = await self.conn.fetch(
            "SELECT schema, registered_by, registered_at FROM object_classes WHERE name = $1 "
            "ORDER BY version", name)
        return [_stored(r) for r in rows]

    async def latest(self) -> list[ClassSchema]:
        """The latest version of every registered class, in the order first registered (a
        class registered after its bases comes after them)."""
        rows = await self.conn.fetch(
            "SELECT DISTINCT ON (name) name, schema, "
            "  min(registered_at) OVER (PARTITION BY name) AS first "
            "FROM object_classes ORDER BY name, version DESC")
        ordered = sorted(rows, key=lambda r: (r["first"], r["name"]))
        return [ClassSchema.model_validate(r["schema"]) for r in ordered]

    async def insert(self, schema: ClassSchema, by: str) -> dt.datetime:
        at: dt.datetime = await self.conn.fetchval(
            "INSERT INTO object_classes (name, version, schema, registered_by) "
            "VALUES ($1, $2, $3, $4) RETURNING registered_at",
            schema.name, schema.version, schema.model_dump(mode="json"), by)
        return at

    async def notify(self, payload: str) -> None:
        """Tell every catalog process on this database (at commit)."""
        await self.conn.execute("SELECT pg_notify($1, $2)", CHANNEL, payload)
