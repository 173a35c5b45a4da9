"""Sign-in and sign-out, and the front page."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request
from fastapi.responses import RedirectResponse, Response

from awecore.client import AsyncCatalogClient
from awecore.errors import AweError, Unauthorized

from ..session import Session, form_data, get_session, require_csrf, safe_next, set_session
from ..templating import render

__all__ = ["router"]

router = APIRouter()


@router.get("/")
async def home(request: Request) -> Response:
    target = "/objects" if get_session(request).user else "/signin"
    return RedirectResponse(target, status_code=303)


@router.get("/signin")
async def signin_form(request: Request, next: str = "/objects") -> Response:
    return render(request, "signin.html", {"title": "Sign in", "next": safe_next(next),
                                           "error": None})


@router.post("/signin", dependencies=[Depends(require_csrf)])
async def signin(request: Request) -> Response:
    """The token is checked with the catalog (``GET /whoami``) before it is kept."""
    form = await form_data(request)
    token, target = form.get("token", "").strip(), safe_next(form.get("next"))
    context = request.app.state.context
    catalog = AsyncCatalogClient(context.settings.catalog_url, transport=context.pool)
    try:
        if not token:
            raise Unauthorized("type your token")
        who = await catalog.whoami(token)
    except Unauthorized as exc:
        return render(request, "signin.html", {
            "title": "Sign in", "next": target,
            "error": f"This token was not accepted: {exc.detail}"}, status_code=401)
    except AweError as exc:
        return render(request, "signin.html", {
            "title": "Sign in", "next": target, "error": exc.detail},
            status_code=exc.status_code)
    set_session(request, Session.signed_in(str(who["name"]), token))
    return RedirectResponse(target, status_code=303)


@router.post("/signout", dependencies=[Depends(require_csrf)])
async def signout(request: Request) -> Response:
    set_session(request, Session.anonymous())
    return RedirectResponse("/signin", status_code=303)
