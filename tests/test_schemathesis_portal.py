"""Schemathesis over the portal's OpenAPI: zero 5xx and zero responses that break the
document (issue 13), anonymous and signed in.

The portal's pages are in its ``/openapi.json`` as they are (``awe_portal.openapi``): HTML
pages, error pages with the status a service gave, a redirect to the sign-in page, forms
with their fields. The fuzzer tries every route with generated parameters and forms: as
an anonymous visitor (everything but sign-in is a redirect), and signed in as a user of
its own (a session cookie from the sign-in form, and the session's CSRF token as the
``X-CSRF-Token`` header, as htmx sends it: the forms are taken, so their checks are
reached). The helper's Authorization header is ignored: the portal knows a user by its
session alone. Bounded like ``tests/test_schemathesis.py``: a few examples per operation, one
worker, a fixed seed.
"""

from __future__ import annotations

import re
from pathlib import Path

import httpx
import pytest
from portal_stack import PortalStack, portal_stack
from test_schemathesis import schemathesis

pytestmark = pytest.mark.integration
__all__ = ["portal_stack"]  # the fixture, imported for pytest

_CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


def sign_in(portal: str, token: str) -> tuple[str, str]:
    """As a browser does (the form, its CSRF token and cookie, then the token posted):
    the session cookie (name=value) and the session's CSRF token."""
    with httpx.Client(base_url=portal, timeout=60) as http:
        form = http.get("/signin")
        found = _CSRF.search(form.text)
        assert form.status_code == 200 and found, form.text[:300]
        done = http.post("/signin", data={"csrf_token": found.group(1), "token": token,
                                          "next": "/objects"})
        assert done.status_code == 303, done.text[:300]
        page = http.get("/objects")
        assert page.status_code == 200 and 'id="user"' in page.text, page.text[:300]
        secret = re.search(r'"X-CSRF-Token": "([^"]+)"', page.text)  # htmx's header
        assert secret, "no CSRF token on the signed-in page"
        cookies = "; ".join(f"{c.name}={c.value}" for c in http.cookies.jar)
        return cookies, secret.group(1)


@pytest.mark.parametrize("who", ["anonymous", "signed-in"])
def test_schemathesis_portal(portal_stack: PortalStack, who: str, tmp_path: Path) -> None:
    """Generated requests for every page and form, and the coverage phase's boundary
    values for the parameters of every route: no 5xx, no answer the document does not
    describe."""
    extra: tuple[str, ...] = ()
    if who == "signed-in":
        _, token = portal_stack.make_user("fuzzer")
        cookie, csrf = sign_in(portal_stack.portal, token)
        extra = ("--header", f"Cookie: {cookie}", "--header", f"X-CSRF-Token: {csrf}")
    schemathesis(portal_stack.portal, "examples,fuzzing", tmp_path / "fuzz", *extra)
    schemathesis(portal_stack.portal, "coverage", tmp_path / "coverage",
                 "--include-method", "GET", *extra, token=None)


def test_a_method_a_route_does_not_take_is_405(portal_stack: PortalStack) -> None:
    """Every path of the document, asked with each method it does not list: a 405 page
    (signed in, so that no redirect to the sign-in page stands in for it)."""
    _, token = portal_stack.make_user("methods")
    cookie, csrf = sign_in(portal_stack.portal, token)
    headers = {"Cookie": cookie, "X-CSRF-Token": csrf}
    with httpx.Client(base_url=portal_stack.portal, timeout=60, headers=headers) as http:
        paths = http.get("/openapi.json").json()["paths"]
        assert len(paths) > 20
        for path, item in paths.items():
            url = path.replace("{oid}", "01234567-89ab-7def-8123-456789abcdef").replace(
                "{job_id}", "01234567-89ab-7def-8123-456789abcdef")
            for method in {"GET", "POST", "PUT", "PATCH", "DELETE"} - {m.upper()
                                                                      for m in item}:
                got = http.request(method, url)
                assert got.status_code == 405, (method, path, got.status_code)
                if path not in ("/livez", "/readyz", "/health", "/metrics"):
                    assert got.headers["content-type"].startswith("text/html"), (method, path)
