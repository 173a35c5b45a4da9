"""Pages as HTML: one Jinja2 environment over ``awe_portal/templates``, and :func:`render`.

Every template extends ``base.html`` (the navigation, the signed-in user, the CSRF token
for forms and for htmx, the vendored htmx script). Autoescaping is on: a value from the
catalogue (a comment, an attribute) is text, never markup.
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse
from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape

from .session import CSRF_FIELD, CSRF_HEADER, get_session

__all__ = ["HTMX", "NAV", "env", "render", "render_fragment"]

TEMPLATES = Path(__file__).parent / "templates"
#: the vendored htmx file (under /static), its version in the name
HTMX = "htmx-2.0.11.min.js"
#: the navigation bar: (label, path)
NAV = (("Objects", "/objects"), ("Query", "/query"), ("QC", "/qc"),
       ("Timeline", "/timeline"), ("Make", "/make"))

VALIDITY = {0: "bad", 1: "good", 2: "proposed"}


def _when(value: object) -> str:
    """A time as people read it: UTC, to the second."""
    when = value
    if isinstance(value, str):
        try:
            when = dt.datetime.fromisoformat(value)
        except ValueError:
            return value
    if isinstance(when, dt.datetime):
        if when.tzinfo is not None:
            when = when.astimezone(dt.UTC)
        return when.strftime("%Y-%m-%d %H:%M:%S")
    return "" if value is None else str(value)


def _to_json(value: Any) -> str:
    return json.dumps(value, indent=2, sort_keys=True, default=str)


env = Environment(loader=FileSystemLoader(TEMPLATES), autoescape=select_autoescape(),
                  undefined=StrictUndefined, trim_blocks=True, lstrip_blocks=True,
                  enable_async=False)
env.filters["when"] = _when
env.filters["to_json"] = _to_json
env.globals.update(nav=NAV, htmx=HTMX, csrf_field=CSRF_FIELD, csrf_header=CSRF_HEADER,
                   validity=VALIDITY)


def _context(request: Request, context: dict[str, Any] | None) -> dict[str, Any]:
    session = get_session(request)
    site = session.site if session.user and "@" not in session.user else None
    return {"request": request, "user": session.user, "site": site,
            "csrf_token": session.csrf,
            "path": request.url.path, "title": None, **(context or {})}


def render(request: Request, template: str, context: dict[str, Any] | None = None,
           status_code: int = 200, headers: dict[str, str] | None = None) -> HTMLResponse:
    """A whole page: ``template`` (which extends base.html) with ``context``, plus
    ``request``, ``user`` (None for an anonymous visitor), ``site``, ``csrf_token`` and
    ``path``. The session cookie is set by the
    app's middleware when the session is new."""
    html = env.get_template(template).render(_context(request, context))
    return HTMLResponse(html, status_code=status_code, headers=headers)


def render_fragment(request: Request, template: str, context: dict[str, Any] | None = None,
                    status_code: int = 200) -> HTMLResponse:
    """A piece of a page for htmx to swap in (a template that does not extend base.html);
    the same context as :func:`render`."""
    return render(request, template, context, status_code)
