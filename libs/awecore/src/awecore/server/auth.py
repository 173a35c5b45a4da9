"""Who calls a service: services other than the catalog ask the catalog (which holds every
token) and cache the answer briefly.

A token has a scope: ``all`` (the default) or ``read``. A read-only token is refused (403)
on every write, in every service, by :func:`refuse_writes`: a write is any method but GET,
HEAD and OPTIONS, except the POST routes that only read (a query sent as a body), which
say so with ``openapi_extra=READS``.

Public data (privilege 5, ``awecore.visibility.Privilege.WORLD``) is read without a token:
services that serve it take the caller from :func:`get_reader`, which makes a request
*without an Authorization header* the anonymous caller (``Identity.anonymous``) on reads,
so the visibility rule shows it level 5 only. Anything else stays as strict as before: a
header with a wrong, revoked or malformed token is 401 (a typo must not silently turn a
user into the anonymous viewer), and an anonymous write is 401."""

from __future__ import annotations

import datetime as dt
import hashlib
import time
from typing import Any

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel

from ..client import AsyncCatalogClient
from ..errors import Forbidden, Unauthorized
from ..users import qualify

__all__ = ["MAKES", "READS", "SCOPES", "Identity", "TokenAuthenticator", "get_identity",
           "get_reader", "is_anonymous_read", "is_write", "refuse_writes"]

#: a token's scopes: everything its user may do, reading only, or what a worker does for
#: its user (read, store files, register objects: the credential a submitter delegates to
#: the compute service, which therefore cannot create tokens, curate or submit work)
SCOPES = ("all", "read", "make")
#: ``openapi_extra`` of a POST route that only reads (a read-only token may call it)
READS: dict[str, Any] = {"x-awe-reads-only": True}
#: ``openapi_extra`` of a write a ``make`` token may call (storing a product's file,
#: registering it and its sources)
MAKES: dict[str, Any] = {"x-awe-makes": True}
_SAFE = frozenset({"GET", "HEAD", "OPTIONS"})


class Identity(BaseModel):
    """Who calls a service, as the catalog says."""

    name: str
    is_admin: bool = False
    is_service: bool = False
    projects: list[str] = []
    #: the token's scope (``SCOPES``): 'read' may call no write
    scope: str = "all"
    #: the site whose account this is, where ``name`` is kept as that site keeps users
    #: (bare for its own, ``name@site`` for a guest of another: ``awecore.users``); the
    #: rules (``awecore.visibility.Viewer.of``) compare name and site. None: not known
    site: str | None = None

    @property
    def user(self) -> str:
        """Who this is across sites, ``name@site`` (the bare name if the site is not known,
        or nobody signed in)."""
        return qualify(self.name, self.site) if self.name and self.site else self.name

    @property
    def sees_all(self) -> bool:
        return self.is_admin or self.is_service

    @property
    def is_anonymous(self) -> bool:
        """Nobody signed in (a public read): no user name can be empty, so none is this."""
        return not self.name

    @classmethod
    def anonymous(cls) -> Identity:
        """The caller of a read without a token; ``Viewer.of`` makes it the anonymous
        viewer, who sees privilege 5 only."""
        return cls(name="", scope="read")


class TokenAuthenticator:
    def __init__(self, catalog: AsyncCatalogClient, ttl: float = 5.0) -> None:
        self.catalog = catalog
        self.ttl = ttl
        self._cache: dict[str, tuple[float, Identity]] = {}

    async def identify(self, token: str | None) -> Identity:
        if not token:
            raise Unauthorized("send your API token as 'Authorization: Bearer <token>'")
        key = hashlib.sha256(token.encode()).hexdigest()
        hit = self._cache.get(key)
        if hit is not None and hit[0] > time.monotonic():
            return hit[1]
        me = await self.catalog.whoami(token)
        who = Identity(name=me["name"], is_admin=bool(me["is_admin"]),
                       is_service=bool(me["is_service"]), projects=list(me.get("projects", [])),
                       scope=str(me.get("scope") or "all"), site=me.get("site"))
        until = time.monotonic() + self.ttl
        if me.get("expires"):  # not remembered past the token's expiry
            left = (dt.datetime.fromisoformat(str(me["expires"])) - dt.datetime.now(dt.UTC))
            until = min(until, time.monotonic() + left.total_seconds())
        self._cache[key] = (until, who)
        return who


def is_write(request: Request) -> bool:
    """Whether a request may change something: any method but GET, HEAD and OPTIONS, unless
    its route says it only reads (``openapi_extra=READS``)."""
    if request.method in _SAFE:
        return False
    route = request.scope.get("route")
    extra = getattr(route, "openapi_extra", None) or {}
    return not extra.get("x-awe-reads-only", False)


def refuse_writes(who: Identity, request: Request) -> None:
    """403 for a write by a read-only token, and for a write a ``make`` token may not do
    (any but those marked ``MAKES``)."""
    if who.scope == "read" and is_write(request):
        raise Forbidden(f"this token of {who.name} is read-only (scope 'read'): "
                        f"{request.method} {request.url.path} writes; use a token of scope "
                        "'all' (`awe token create`)")
    if who.scope == "make" and is_write(request):
        route = request.scope.get("route")
        if not (getattr(route, "openapi_extra", None) or {}).get("x-awe-makes", False):
            raise Forbidden(f"this token of {who.name} was delegated to make products "
                            f"(scope 'make'): it may not {request.method} "
                            f"{request.url.path}")


_bearer = HTTPBearer(auto_error=False, description="an AWE API token")


async def get_identity(
    request: Request, credentials: HTTPAuthorizationCredentials | None = Depends(_bearer),
) -> Identity:
    """FastAPI dependency: the caller of a service whose context has a TokenAuthenticator
    at ``app.state.context.auth``."""
    auth: TokenAuthenticator = request.app.state.context.auth
    who = await auth.identify(credentials.credentials if credentials else None)
    refuse_writes(who, request)
    return who


def is_anonymous_read(request: Request) -> bool:
    """Whether a request is a public read: no Authorization header at all, and no write
    (an anonymous write is refused with 401 here, before its body is read)."""
    if "authorization" in request.headers:
        return False
    if is_write(request):
        raise Unauthorized("writing needs a token: send it as 'Authorization: Bearer "
                           "<token>' (only public data, privilege 5, is read without one)")
    return True


async def get_reader(
    request: Request, credentials: HTTPAuthorizationCredentials | None = Depends(_bearer),
) -> Identity:
    """FastAPI dependency for services that serve public data: ``get_identity``, except
    that a read without an Authorization header is ``Identity.anonymous()``."""
    if is_anonymous_read(request):
        return Identity.anonymous()
    return await get_identity(request, credentials)
