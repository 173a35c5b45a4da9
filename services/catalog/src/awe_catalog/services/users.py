"""Authentication and the administration of users, projects and tokens."""

from __future__ import annotations

import datetime as dt
import secrets

import asyncpg
import structlog

from awecore.errors import Conflict, Forbidden, InvalidRequest, NotFound, Unauthorized

from ..models import (
    Caller,
    ProjectIn,
    ProjectOut,
    TokenIn,
    TokenInfo,
    TokenOut,
    UserIn,
    UserOut,
)
from ..storage.users import UserStore, hash_token
from .tokens import TokenCache

__all__ = ["UserService", "new_token"]

log = structlog.get_logger("awe.catalog.users")


def new_token() -> str:
    return "awe_" + secrets.token_urlsafe(32)


def _require_admin(caller: Caller) -> None:
    if not caller.is_admin:
        raise Forbidden("only an admin may do this")


class UserService:
    def __init__(self, pool: asyncpg.Pool, cache: TokenCache | None = None) -> None:
        self.pool = pool
        #: the process's callers by token (see services/tokens.py); none: always ask
        self.cache = cache

    async def authenticate(self, token: str | None) -> Caller:
        if not token:
            raise Unauthorized("send your API token as 'Authorization: Bearer <token>' "
                               "(`awe token create`, or AWE_TOKEN from the stack's awe.env)")
        token_hash = hash_token(token)
        if self.cache is not None:
            known = self.cache.get(token_hash)
            if known is not None and (known.expires is None
                                      or known.expires > dt.datetime.now(dt.UTC)):
                return known
            generation = self.cache.generation
        async with self.pool.acquire() as conn:
            caller = await UserStore(conn).caller_for_hash(token_hash)
        if caller is None:
            raise Unauthorized("unknown, revoked or expired token")
        if self.cache is not None:
            self.cache.put(token_hash, caller, generation)
        return caller

    def _changed(self) -> None:
        """Who a token is may have changed (committed): this process forgets at once (the
        others when they hear the triggers' notification)."""
        if self.cache is not None:
            self.cache.forget()

    async def bootstrap_admin(self, token: str) -> None:
        """On first start, make the admin user; make sure the configured token works."""
        async with self.pool.acquire() as conn, conn.transaction():
            store = UserStore(conn)
            await store.add_project("admin", "the administrators' own project")
            if await store.get_user("admin") is None:
                await store.add_user("admin", True, False, "admin")
                log.info("admin user created")
            await store.add_token("admin", token, "bootstrap")

    async def add_user(self, body: UserIn, caller: Caller) -> UserOut:
        _require_admin(caller)
        async with self.pool.acquire() as conn, conn.transaction():
            store = UserStore(conn)
            if await store.get_user(body.name) is not None:
                raise Conflict(f"user {body.name} exists already")
            project = body.project or body.name
            if body.project is None:
                await store.add_project(project, f"personal project of {body.name}")
            elif await store.get_project(project) is None:
                raise NotFound(f"no project {project}; create it first (`awe project add`)")
            await store.add_user(body.name, body.is_admin, body.is_service, project)
            user = await store.get_user(body.name)
        assert user is not None
        self._changed()
        return user

    async def get_user(self, name: str, caller: Caller) -> UserOut:
        if name != caller.name:
            _require_admin(caller)
        async with self.pool.acquire() as conn:
            user = await UserStore(conn).get_user(name)
        if user is None:
            raise NotFound(f"no user {name}")
        return user

    async def add_project(self, body: ProjectIn, caller: Caller) -> ProjectOut:
        _require_admin(caller)
        async with self.pool.acquire() as conn, conn.transaction():
            store = UserStore(conn)
            if not await store.add_project(body.name, body.description):
                raise Conflict(f"project {body.name} exists already")
            await store.add_member(body.name, caller.name)
            project = await store.get_project(body.name)
        assert project is not None
        self._changed()
        return project

    async def add_member(self, project: str, user: str, caller: Caller,
                         role: str = "member") -> ProjectOut:
        _require_admin(caller)
        async with self.pool.acquire() as conn, conn.transaction():
            store = UserStore(conn)
            if await store.get_project(project) is None:
                raise NotFound(f"no project {project}")
            if await store.get_user(user) is None:
                raise NotFound(f"no user {user}")
            await store.add_member(project, user, role)
            result = await store.get_project(project)
        assert result is not None
        self._changed()
        return result

    async def create_token(self, body: TokenIn, caller: Caller) -> TokenOut:
        user = body.user or caller.name
        if user != caller.name:
            _require_admin(caller)
        if body.expires is not None:
            if body.expires.tzinfo is None:
                raise InvalidRequest("give the token's expiry with a time zone "
                                     "(e.g. 2030-01-01T00:00:00Z)")
            if body.expires <= dt.datetime.now(dt.UTC):
                raise InvalidRequest(f"the token's expiry {body.expires.isoformat()} has "
                                     "passed: give a time in the future")
        token = new_token()
        async with self.pool.acquire() as conn, conn.transaction():
            store = UserStore(conn)
            if await store.get_user(user) is None:
                raise NotFound(f"no user {user}")
            token_id = await store.add_token(user, token, body.label, body.scope, body.expires)
        return TokenOut(token=token, id=token_id, user=user, label=body.label,
                        scope=body.scope, expires=body.expires)

    async def tokens(self, user: str | None, caller: Caller) -> list[TokenInfo]:
        """Your own tokens; an admin may list another user's (``user``), or everyone's
        (``user`` = ``*``)."""
        user = user or caller.name
        if user != caller.name:
            _require_admin(caller)
        async with self.pool.acquire() as conn:
            store = UserStore(conn)
            if user != "*" and await store.get_user(user) is None:
                raise NotFound(f"no user {user}")
            return await store.tokens(None if user == "*" else user)

    async def revoke_token(self, token_id: str, caller: Caller) -> TokenInfo:
        """Revoke one of your tokens (an admin: anyone's) by its id or a unique start of
        it. The catalog refuses it from the next request on."""
        owner = None if caller.is_admin else caller.name
        async with self.pool.acquire() as conn, conn.transaction():
            store = UserStore(conn)
            found = await store.find_tokens(token_id, owner)
            if not found:
                raise NotFound(f"no token {token_id}" + ("" if owner is None
                                                         else f" of {caller.name}"))
            if len(found) > 1:
                raise InvalidRequest(f"{token_id!r} starts more than one token id "
                                     f"({found[0].id}, {found[1].id}, ...): give more of it")
            revoked = await store.revoke_token(found[0].id)
        self._changed()  # refused from this process's next request on, whoever asks
        if revoked is None:
            raise Conflict(f"token {found[0].id} was revoked already")
        log.info("token revoked", token=revoked.id, user=revoked.user, by=caller.name)
        return revoked
