"""Sign-in and sign-out, and the front page."""

from __future__ import annotations

import re

from fastapi import APIRouter, Depends, Request
from fastapi.responses import RedirectResponse, Response

from awecore.client import AsyncCatalogClient
from awecore.errors import AweError, Unauthorized

from .. import openapi as api
from ..session import Session, form_data, require_csrf, safe_next, set_session
from ..templating import render

__all__ = ["router"]

router = APIRouter()
#: what may be a token (``awe_`` and URL-safe base64 today): printable ASCII, no spaces
_TOKEN = re.compile(r"[!-~]{1,1000}")


@router.get("/", summary="Home: the objects",
            **api.page(signed_in=False, redirect="to the objects (the world's objects for a "
                       "visitor who has not signed in)", errors=(405,)))
async def home() -> Response:
    return RedirectResponse("/objects", status_code=303)


@router.get("/signin", summary="The sign-in form", **api.page(signed_in=False, errors=(400, 405)))
async def signin_form(request: Request, next: str = "/objects") -> Response:
    return render(request, "signin.html", {"title": "Sign in", "next": safe_next(next),
                                           "error": None})


@router.post("/signin", dependencies=[Depends(require_csrf)], summary="Sign in with a token",
             **api.form({"token": "the user's API token", "next": "where to go then (a path)"},
                    redirect="signed in: to next (Location); a token not accepted is "
                    "the form again with 401", signed_in=False))
async def signin(request: Request) -> Response:
    """The token is checked with the catalog (``GET /whoami``) before it is kept."""
    form = await form_data(request)
    token, target = form.get("token", "").strip(), safe_next(form.get("next"))
    context = request.app.state.context
    catalog = AsyncCatalogClient(context.settings.catalog_url, transport=context.pool)
    try:
        if not token:
            raise Unauthorized("type your token")
        if not _TOKEN.fullmatch(token):  # it travels in a header: printable ASCII only
            raise Unauthorized("a token is letters, digits and punctuation, without spaces")
        who = await catalog.whoami(token)
    except Unauthorized as exc:
        return render(request, "signin.html", {
            "title": "Sign in", "next": target,
            "error": f"This token was not accepted: {exc.detail}"}, status_code=401)
    except AweError as exc:
        return render(request, "signin.html", {
            "title": "Sign in", "next": target, "error": exc.detail},
            status_code=exc.status_code)
    site = who.get("site")
    set_session(request, Session.signed_in(str(who["name"]), token,
                                           str(site) if site else None))
    return RedirectResponse(target, status_code=303)


@router.post("/signout", dependencies=[Depends(require_csrf)], summary="Sign out",
             **api.form({}, redirect="signed out: to the sign-in page", signed_in=False))
async def signout(request: Request) -> Response:
    set_session(request, Session.anonymous())
    return RedirectResponse("/signin", status_code=303)
