"""How the portal's routes are described in its OpenAPI document, honestly: pages answer
``text/html`` (an error is a page too, with the status a service gave: 400 for a bad
parameter, 403 when not allowed, 404 when not found or not visible), a visitor who has not
signed in is sent to the sign-in page (303) except on the pages of the world's objects,
which answer anonymous visitors as the services answer an anonymous reader (``public``:
only a session whose token is no longer accepted is sent to sign in again), and a form is
``application/x-www-form-urlencoded`` with a ``csrf_token`` field (or the ``X-CSRF-Token``
header, as htmx sends it).

A fuzzer (Schemathesis, ``tests/test_schemathesis_portal.py``) reads this document: every
parameter and form field it lists is one it tries.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.responses import HTMLResponse, Response

__all__ = ["HTML", "form", "install_openapi", "page", "query_params", "sent"]

HTML: dict[str, Any] = {"text/html": {"schema": {"type": "string"}}}
_ERRORS: dict[int, str] = {
    400: "a bad parameter or form field: an error page that says which",
    403: "not allowed (the service said so), or a form whose CSRF token does not match "
         "the session",
    404: "no such object, or one the user may not see",
    405: "a method the route does not take",
}
_ALSO = "x-awe-error-media"
_SIGN_IN = {"description": "not signed in (or the token no longer accepted): to the "
                           "sign-in page (Location)"}
_EXPIRED = ("a session whose token is no longer accepted: to the sign-in page (Location); "
            "a visitor who has not signed in is answered (privilege 5 objects only)")


def page(*, signed_in: bool = True, redirect: str | None = None,
         media: dict[str, Any] | None = None, errors: tuple[int, ...] = (400, 403, 404, 405),
         also: dict[int, dict[str, Any]] | None = None, public: bool = False) -> dict[str, Any]:
    """Keyword arguments of a route: a page (``text/html``, or ``media`` for a file or a
    JSON document), its error pages, the sign-in redirect when it needs a session, and
    ``redirect``: what a 303 answer means (a form that was taken); ``also``: more media
    types of an error answer, by status; ``public``: a page of the world's objects, open
    to anonymous visitors (its 303 only for a session whose token was revoked)."""
    responses: dict[int | str, dict[str, Any]] = {
        code: {"description": why, "content": HTML} for code, why in _ERRORS.items()
        if code in errors}
    if signed_in or redirect or public:
        sign_in = _EXPIRED if public else _SIGN_IN["description"] if signed_in else ""
        why = " ".join(w for w in (redirect, sign_in) if w)
        responses[303] = {"description": why}
    out: dict[str, Any] = {"responses": responses}
    if also:  # other media an error may come as (kept by install_openapi)
        out["openapi_extra"] = {_ALSO: {str(code): content for code, content in also.items()}}
    if media is None:
        out["response_class"] = HTMLResponse
    else:
        out["response_class"] = Response  # the media below, not FastAPI's JSON
        responses[200] = {"description": "the document", "content": media}
    return out


def sent(fields: dict[str, str], required: tuple[str, ...] = ()) -> dict[str, Any]:
    """``openapi_extra`` of a form: its urlencoded fields (strings, each with what it is)
    and the CSRF token every form carries."""
    properties = {"csrf_token": {"type": "string", "description": "the session's CSRF token "
                                 "(or send it as the X-CSRF-Token header)"}}
    properties.update({name: {"type": "string", "description": why}
                       for name, why in fields.items()})
    return {"requestBody": {"required": True, "content": {
        "application/x-www-form-urlencoded": {"schema": {
            "type": "object", "properties": properties, "required": list(required)}}}}}


def form(fields: dict[str, str], required: tuple[str, ...] = (),
         redirect: str = "done: to the page that shows it (Location)",
         signed_in: bool = True) -> dict[str, Any]:
    """Keyword arguments of a POST route that takes a form and answers a redirect."""
    out = page(redirect=redirect, signed_in=signed_in)
    out["openapi_extra"] = sent(fields, required)
    return out


def query_params(params: dict[str, str]) -> dict[str, Any]:
    """``openapi_extra`` of a route that reads its query string itself (optional strings)."""
    return {"parameters": [{"name": name, "in": "query", "required": False,
                            "schema": {"type": "string"}, "description": why}
                           for name, why in params.items()]}


#: the kit's operations routes, which answer JSON and problem documents as every service's
_OPERATIONS = frozenset({"/livez", "/readyz", "/health", "/metrics"})


def _pages(doc: dict[str, Any]) -> dict[str, Any]:
    """The kit's document with the pages' errors as they are: HTML pages, and the media
    a route declares besides (the kit writes problem documents for every route; the
    portal answers a person)."""
    for path, item in doc.get("paths", {}).items():
        if path in _OPERATIONS:
            continue
        for op in item.values():
            also = op.pop(_ALSO, {})
            for code, response in op.get("responses", {}).items():
                if str(code)[0] in "45":
                    response["content"] = {**HTML, **also.get(str(code), {})}
    return doc


def install_openapi(app: FastAPI) -> None:
    """``/openapi.json`` as the kit makes it, its pages' errors described as pages."""
    kit = app.openapi

    def openapi() -> dict[str, Any]:
        if not getattr(app.state, "portal_openapi", False):
            app.openapi_schema = _pages(kit())
            app.state.portal_openapi = True
        return app.openapi_schema  # type: ignore[return-value]

    app.openapi = openapi  # type: ignore[method-assign]
