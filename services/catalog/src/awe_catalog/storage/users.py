"""Users, projects, memberships and hashed API tokens."""

from __future__ import annotations

import datetime as dt
import hashlib

import asyncpg

from awecore.ids import prefix_range

from ..models import Caller, ProjectOut, TokenInfo, UserOut

__all__ = ["UserStore", "hash_token"]


_TOKEN_COLS = ("id::text AS id, user_name AS user, label, created, "
               "date_trunc('minute', last_used) AS last_used, revoked, revoked_at, scope, "
               "expires")


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


class UserStore:
    def __init__(self, conn: asyncpg.Connection) -> None:
        self.conn = conn

    async def caller_for_token(self, token: str) -> Caller | None:
        """Who a live token (not revoked, not expired) belongs to, with the token's scope
        and expiry; notes its use (at most once a minute, so a busy token does not write a
        row per request)."""
        return await self.caller_for_hash(hash_token(token))

    async def caller_for_hash(self, token_hash: str) -> Caller | None:
        """``caller_for_token`` for a token already hashed."""
        row = await self.conn.fetchrow(
            "WITH used AS (UPDATE tokens SET last_used = now() WHERE token_hash = $1 "
            "  AND NOT revoked AND (expires IS NULL OR expires > now()) "
            "  AND (last_used IS NULL OR last_used < now() - interval '1 minute') "
            "  RETURNING 1) "
            "SELECT u.name, u.is_admin, u.is_service, u.default_project, "
            "  array(SELECT project_name FROM memberships m WHERE m.user_name = u.name)"
            "  AS projects, array(SELECT project_name FROM memberships m "
            "  WHERE m.user_name = u.name AND m.role = 'calibration') AS curates, t.scope, "
            "  t.expires "
            "FROM tokens t JOIN users u ON u.name = t.user_name "
            "WHERE t.token_hash = $1 AND NOT t.revoked "
            "  AND (t.expires IS NULL OR t.expires > now())", token_hash)
        return None if row is None else Caller(**dict(row))

    async def get_user(self, name: str) -> UserOut | None:
        row = await self.conn.fetchrow(
            "SELECT u.name, u.is_admin, u.is_service, u.default_project, u.created, "
            "  array(SELECT project_name FROM memberships m WHERE m.user_name = u.name "
            "        ORDER BY 1) AS projects FROM users u WHERE u.name = $1", name)
        return None if row is None else UserOut(**dict(row))

    async def add_project(self, name: str, description: str = "") -> bool:
        status = await self.conn.execute(
            "INSERT INTO projects (name, description) VALUES ($1, $2) ON CONFLICT DO NOTHING",
            name, description)
        return bool(status.endswith(" 1"))

    async def get_project(self, name: str) -> ProjectOut | None:
        row = await self.conn.fetchrow(
            "SELECT p.name, p.description, array(SELECT user_name FROM memberships m "
            "  WHERE m.project_name = p.name ORDER BY 1) AS members, "
            "  array(SELECT user_name FROM memberships m WHERE m.project_name = p.name "
            "  AND m.role = 'calibration' ORDER BY 1) AS calibration_scientists FROM projects p "
            "WHERE p.name = $1", name)
        return None if row is None else ProjectOut(**dict(row))

    async def add_user(self, name: str, is_admin: bool, is_service: bool, project: str) -> None:
        await self.conn.execute(
            "INSERT INTO users (name, is_admin, is_service, default_project) VALUES ($1,$2,$3,$4)",
            name, is_admin, is_service, project)
        await self.add_member(project, name)

    async def add_member(self, project: str, user: str, role: str | None = None) -> None:
        """Add a member (``role`` None: a new member is a plain one, an existing one keeps
        their role; else the role is set)."""
        await self.conn.execute(
            "INSERT INTO memberships (user_name, project_name, role) "
            "VALUES ($1, $2, coalesce($3, 'member')) ON CONFLICT (user_name, project_name) "
            "DO UPDATE SET role = coalesce($3, memberships.role)", user, project, role)

    async def add_token(self, user: str, token: str, label: str, scope: str = "all",
                        expires: dt.datetime | None = None) -> str:
        """Store a token's hash (never the token), its scope and expiry; returns its public
        id."""
        await self.conn.execute(
            "INSERT INTO tokens (token_hash, user_name, label, scope, expires) "
            "VALUES ($1, $2, $3, $4, $5) ON CONFLICT (token_hash) DO NOTHING",
            hash_token(token), user, label, scope, expires)
        return str(await self.conn.fetchval(
            "SELECT id::text FROM tokens WHERE token_hash = $1", hash_token(token)))

    async def tokens(self, user: str | None) -> list[TokenInfo]:
        """A user's tokens (everyone's if None), oldest first."""
        rows = await self.conn.fetch(
            f"SELECT {_TOKEN_COLS} FROM tokens WHERE ($1::text IS NULL OR user_name = $1) "
            "ORDER BY created, id", user)
        return [TokenInfo(**dict(r)) for r in rows]

    async def find_tokens(self, text: str, user: str | None) -> list[TokenInfo]:
        """At most two tokens of ``user`` (anyone's if None) whose id starts with ``text``."""
        span = prefix_range(text)
        if span is None:
            return []
        rows = await self.conn.fetch(
            f"SELECT {_TOKEN_COLS} FROM tokens WHERE id BETWEEN $1 AND $2 "
            "AND ($3::text IS NULL OR user_name = $3) ORDER BY id LIMIT 2", *span, user)
        return [TokenInfo(**dict(r)) for r in rows]

    async def revoke_token(self, token_id: str) -> TokenInfo | None:
        """Revoke a live token; None if it was revoked already."""
        row = await self.conn.fetchrow(
            f"UPDATE tokens SET revoked = true, revoked_at = now() WHERE id = $1::uuid "
            f"AND NOT revoked RETURNING {_TOKEN_COLS}", token_id)
        return None if row is None else TokenInfo(**dict(row))
