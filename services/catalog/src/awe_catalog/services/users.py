"""Authentication and the administration of users, projects and tokens.

Users are ``name@site`` across sites (``awecore.users``). This site keeps its own users by
their bare names and a user of another site (a guest: a member of one of its projects, who
may be given a token here) as ``name@site``; every user named to this API is turned into
that form first (a bare name is this site's user; a bad one is a 400), and every user this
API shows is whole (``/whoami``'s ``user``, token listings)."""

from __future__ import annotations

import datetime as dt
import secrets

import asyncpg
import structlog

from awecore.errors import Conflict, Forbidden, InvalidRequest, NotFound, Unauthorized
from awecore.users import UserId, qualify

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
    def __init__(self, pool: asyncpg.Pool, cache: TokenCache | None = None,
                 site: str = "local") -> None:
        self.pool = pool
        #: the process's callers by token (see services/tokens.py); none: always ask
        self.cache = cache
        #: this site: its users are kept by bare names, another site's as name@site
        self.site = site

    def local(self, user: str) -> str:
        """A user named to this API as this site keeps them (``bob``, ``bob@here`` ->
        ``bob``; ``bob@other`` stays); 400 if it is not a user's name."""
        try:
            return UserId.parse(user, self.site).at(self.site)
        except ValueError as exc:
            raise InvalidRequest(str(exc)) from None

    def whole(self, user: str) -> str:
        """A user as this site keeps them, shown whole: ``name@site``."""
        return qualify(user, self.site)

    def _shown(self, token: TokenInfo) -> TokenInfo:
        return token.model_copy(update={"user": self.whole(token.user)})

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
        caller.site = self.site  # its name is as this site keeps users
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
        body = body.model_copy(update={"name": self.local(body.name)})
        if body.project is None and "@" in body.name:  # a guest: no personal project
            raise InvalidRequest(f"{body.name} is a user of another site: give the project "
                                 "they join here (--project)")
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
        if name != caller.name:  # (one's own name as kept, even if written before checks)
            name = self.local(name)
        if name != caller.name:
            _require_admin(caller)
        async with self.pool.acquire() as conn:
            user = await UserStore(conn).get_user(name)
        if user is None:
            raise NotFound(f"no user {self.whole(name)}")
        return user.model_copy(update={"site": self.site, "user": self.whole(user.name)})

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
        """A user of this site must exist; a user of another site (``bob@other``) is made
        a guest here on first mention (an account without a token, whose default project
        is this one), so the rules compare them by name and site, never as this site's
        same-named user."""
        _require_admin(caller)
        user = self.local(user)
        async with self.pool.acquire() as conn, conn.transaction():
            store = UserStore(conn)
            if await store.get_project(project) is None:
                raise NotFound(f"no project {project}")
            if await store.get_user(user) is None:
                if "@" not in user:
                    raise NotFound(f"no user {self.whole(user)}")
                await store.add_user(user, False, False, project)
                log.info("guest user added", user=user, project=project)
            await store.add_member(project, user, role)
            result = await store.get_project(project)
        assert result is not None
        self._changed()
        return result

    async def create_token(self, body: TokenIn, caller: Caller) -> TokenOut:
        user = caller.name if body.user is None else self.local(body.user)
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
                raise NotFound(f"no user {self.whole(user)}")
            token_id = await store.add_token(user, token, body.label, body.scope, body.expires)
        return TokenOut(token=token, id=token_id, user=self.whole(user), label=body.label,
                        scope=body.scope, expires=body.expires)

    async def tokens(self, user: str | None, caller: Caller) -> list[TokenInfo]:
        """Your own tokens; an admin may list another user's (``user``), or everyone's
        (``user`` = ``*``)."""
        user = caller.name if not user else user if user == "*" else self.local(user)
        if user != caller.name:
            _require_admin(caller)
        async with self.pool.acquire() as conn:
            store = UserStore(conn)
            if user != "*" and await store.get_user(user) is None:
                raise NotFound(f"no user {self.whole(user)}")
            return [self._shown(t) for t in await store.tokens(None if user == "*" else user)]

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
        return self._shown(revoked)
