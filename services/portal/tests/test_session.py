"""The session cookie and the sign-in redirect, without a server: what the browser holds
cannot be read or changed by it, and sign-in never sends anyone to another host."""

from __future__ import annotations

import time

import pytest

from awe_portal.session import Sealer, Session, safe_next


def test_sealed_cookie_round_trips_and_hides_the_token() -> None:
    sealer = Sealer("a secret of the portal", max_age_seconds=3600, secure=False)
    session = Session.signed_in("alice", "awe_the-token-of-alice")
    value = sealer.seal(session)
    assert "awe_the-token-of-alice" not in value and "alice" not in value
    opened = sealer.open(value)
    assert opened is not None
    assert (opened.user, opened.token, opened.csrf) == ("alice", "awe_the-token-of-alice",
                                                        session.csrf)


def test_the_site_rides_along_and_an_older_cookie_still_opens() -> None:
    """The header shows name@site: the site is kept in the cookie; a cookie sealed before
    sites were kept opens with none."""
    sealer = Sealer("a secret of the portal", max_age_seconds=3600, secure=False)
    opened = sealer.open(sealer.seal(Session.signed_in("alice", "awe_t", "leiden")))
    assert opened is not None and (opened.user, opened.site) == ("alice", "leiden")
    older = sealer._fernet.encrypt(b'{"c": "x", "u": "bob", "t": "awe_b"}').decode()
    got = sealer.open(older)
    assert got is not None and (got.user, got.site) == ("bob", None)


def test_tampered_foreign_or_expired_cookies_are_refused() -> None:
    sealer = Sealer("a secret of the portal", max_age_seconds=3600, secure=False)
    value = sealer.seal(Session.signed_in("alice", "awe_token"))
    flipped = value[:-5] + ("A" if value[-5] != "A" else "B") + value[-4:]
    assert sealer.open(flipped) is None
    assert sealer.open("not a cookie") is None and sealer.open(None) is None
    assert Sealer("another portal's secret", 3600, False).open(value) is None
    now = int(time.time())
    assert sealer.open(value, now=now + 3500) is not None
    assert sealer.open(value, now=now + 3700) is None  # past the session's hours


def test_each_session_gets_its_own_csrf_secret() -> None:
    secrets = {Session.anonymous().csrf for _ in range(50)}
    secrets |= {Session.signed_in("a", "t").csrf for _ in range(50)}
    assert len(secrets) == 100 and all(len(s) >= 40 for s in secrets)


@pytest.mark.parametrize(("asked", "went"), [
    ("/objects/x?y=1", "/objects/x?y=1"), ("/", "/"), (None, "/"), ("", "/"),
    ("https://elsewhere.example/", "/"), ("//elsewhere.example/x", "/"),
    ("/\\elsewhere.example", "/"), ("javascript:alert(1)", "/")])
def test_sign_in_goes_back_only_to_this_site(asked: str | None, went: str) -> None:
    assert safe_next(asked) == went
