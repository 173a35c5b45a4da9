"""Sign-in, the session cookie and CSRF protection.

A person signs in by typing their token; the catalog's ``GET /whoami`` says whose it is. The
token, the user's name and a CSRF secret are kept in one cookie sealed with Fernet
(encrypted and authenticated: the browser holds it but cannot read or change it), HttpOnly
(no script reads it), SameSite=Lax (no other site's form posts it), Secure when served over
https. A visitor who has not signed in gets a cookie with a CSRF secret only, so the sign-in
form is protected too.

Every form carries the CSRF secret in a hidden ``csrf_token`` field (htmx requests send it
as the ``X-CSRF-Token`` header, set once on ``<body>``); :func:`require_csrf` compares it with
the cookie's on every POST. Forms are read here from their urlencoded body (:func:`form_data`),
so the portal needs no multipart parser.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl

import orjson
from cryptography.fernet import Fernet, InvalidToken
from fastapi import Request, Response

from awecore.errors import Forbidden, InvalidRequest

__all__ = [
    "COOKIE",
    "CSRF_FIELD",
    "CSRF_HEADER",
    "NotSignedIn",
    "Sealer",
    "Session",
    "form_data",
    "get_session",
    "require_csrf",
    "safe_next",
]

COOKIE = "awe_portal"
CSRF_FIELD = "csrf_token"
CSRF_HEADER = "X-CSRF-Token"
MAX_FORM_BYTES = 1_000_000


class NotSignedIn(Exception):
    """A page that needs a user was asked for without one: the app answers with a redirect
    to the sign-in page (a fragment asked by htmx gets HX-Redirect)."""


@dataclass
class Session:
    """What the cookie holds: the CSRF secret, and once signed in the user and token."""

    csrf: str
    user: str | None = None
    token: str | None = None
    #: the site whose account it is (shown as name@site), when the catalog said
    site: str | None = None
    #: made in this request (the response must set the cookie)
    fresh: bool = False

    @classmethod
    def anonymous(cls) -> Session:
        return cls(csrf=secrets.token_urlsafe(32), fresh=True)

    @classmethod
    def signed_in(cls, user: str, token: str, site: str | None = None) -> Session:
        """A new session on sign-in: a new CSRF secret too (none chosen before sign-in
        survives it)."""
        return cls(csrf=secrets.token_urlsafe(32), user=user, token=token, site=site,
                   fresh=True)


class Sealer:
    """Seals and opens the session cookie with a key derived from the portal's secret."""

    def __init__(self, secret: str, max_age_seconds: int, secure: bool) -> None:
        key = base64.urlsafe_b64encode(hashlib.sha256(secret.encode()).digest())
        self._fernet = Fernet(key)
        self.max_age = max_age_seconds
        self.secure = secure

    def seal(self, session: Session) -> str:
        body = {"c": session.csrf, "u": session.user, "t": session.token, "s": session.site}
        return self._fernet.encrypt(orjson.dumps(body)).decode()

    def open(self, value: str | None, now: int | None = None) -> Session | None:
        """The session a cookie holds, or None (``now``: the time to judge its age by,
        for tests; else the clock)."""
        if not value:
            return None
        try:
            sealed = value.encode()
            plain = self._fernet.decrypt(sealed, ttl=self.max_age) if now is None else \
                self._fernet.decrypt_at_time(sealed, ttl=self.max_age, current_time=now)
            body = orjson.loads(plain)
            return Session(csrf=str(body["c"]), user=body.get("u"), token=body.get("t"),
                           site=body.get("s"))
        except (InvalidToken, ValueError, KeyError, TypeError):
            return None  # tampered, expired, or sealed with another key: start again

    def set_cookie(self, response: Response, session: Session) -> None:
        response.set_cookie(COOKIE, self.seal(session), max_age=self.max_age, httponly=True,
                            samesite="lax", secure=self.secure, path="/")

    def clear_cookie(self, response: Response) -> None:
        response.delete_cookie(COOKIE, path="/", httponly=True, samesite="lax",
                               secure=self.secure)


def get_session(request: Request) -> Session:
    """This request's session (from its cookie, or a new anonymous one), once per request."""
    cached = getattr(request.state, "portal_session", None)
    if cached is not None:
        return cached  # type: ignore[no-any-return]
    sealer: Sealer = request.app.state.context.sealer
    session = sealer.open(request.cookies.get(COOKIE)) or Session.anonymous()
    request.state.portal_session = session
    return session


def set_session(request: Request, session: Session) -> None:
    """Replace this request's session (sign-in, sign-out): the response sets the cookie."""
    session.fresh = True
    request.state.portal_session = session


async def form_data(request: Request) -> dict[str, str]:
    """A POSTed urlencoded form as a dict (the last value of a repeated field wins)."""
    cached = getattr(request.state, "portal_form", None)
    if cached is not None:
        return cached  # type: ignore[no-any-return]
    ctype = request.headers.get("content-type", "")
    body = await request.body()
    if len(body) > MAX_FORM_BYTES:
        raise InvalidRequest("the form is too large")
    form: dict[str, str] = {}
    if ctype.startswith("application/x-www-form-urlencoded"):
        try:
            form = dict(parse_qsl(body.decode(), keep_blank_values=True))
        except UnicodeDecodeError:
            raise InvalidRequest("the form is not UTF-8") from None
    elif body and not ctype.startswith("application/json"):
        raise InvalidRequest("send the form urlencoded (application/x-www-form-urlencoded)")
    request.state.portal_form = form
    return form


async def require_csrf(request: Request) -> None:
    """Dependency for every POST: the form's ``csrf_token`` (or the ``X-CSRF-Token``
    header) must be this session's secret, else 403."""
    session = get_session(request)
    sent = request.headers.get(CSRF_HEADER) or (await form_data(request)).get(CSRF_FIELD, "")
    if session.fresh or not hmac.compare_digest(sent.encode(), session.csrf.encode()):
        raise Forbidden("the form's CSRF token does not match this session: reload the page "
                        "and send the form again")


def safe_next(value: Any) -> str:
    """Where to go after sign-in: a path on this site only (never another host)."""
    text = str(value or "/")
    if not text.startswith("/") or text.startswith("//") or "\\" in text:
        return "/"
    return text
