"""The API pages ``/docs`` (Swagger UI) and ``/redoc`` (ReDoc), served by each service
itself.

FastAPI's own pages load their JavaScript and CSS from a public CDN: at an air-gapped site
(an observatory's archive often is one) they come up blank. Here the assets are files of a
pinned package, ``fastapi-offline`` (its ``static`` folder: ``swagger-ui-bundle.js``,
``swagger-ui.css``, ``redoc.standalone.js``, ``favicon.png``), mounted under ``STATIC``;
the pages name only same-origin paths (no web fonts, no validator badge), prefixed by the
ASGI ``root_path`` so that they work behind a proxy that mounts a service under a path.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles

__all__ = ["ASSETS_PACKAGE", "STATIC", "assets", "install_docs"]

#: where the pages' assets are served
STATIC = "/docs/static"
#: the package whose ``static`` folder holds them (pinned in awecore's ``server`` extra)
ASSETS_PACKAGE = "fastapi_offline"


def assets() -> Path:
    """The folder of the assets, found without importing the package's own code."""
    spec = importlib.util.find_spec(ASSETS_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError(f"the API docs' assets need the package {ASSETS_PACKAGE} "
                           "(awecore's 'server' extra)")
    folder = Path(next(iter(spec.submodule_search_locations))) / "static"
    if not (folder / "swagger-ui-bundle.js").is_file():
        raise RuntimeError(f"{folder} holds no swagger-ui-bundle.js")
    return folder


def install_docs(app: FastAPI) -> None:
    """``/docs`` and ``/redoc`` with local assets, on an app made with ``docs_url=None``
    and ``redoc_url=None`` (FastAPI's CDN pages off)."""
    app.mount(STATIC, StaticFiles(directory=assets()), name="docs-static")

    def at(request: Request, path: str) -> str:
        return f"{request.scope.get('root_path', '')}{path}"

    @app.get("/docs", include_in_schema=False)
    async def swagger_ui(request: Request) -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url=at(request, app.openapi_url or "/openapi.json"),
            title=f"{app.title}: API", oauth2_redirect_url=None,
            swagger_js_url=at(request, f"{STATIC}/swagger-ui-bundle.js"),
            swagger_css_url=at(request, f"{STATIC}/swagger-ui.css"),
            swagger_favicon_url=at(request, f"{STATIC}/favicon.png"),
            # the validator badge would send the schema's URL to a public validator
            swagger_ui_parameters={"validatorUrl": None})

    @app.get("/redoc", include_in_schema=False)
    async def redoc(request: Request) -> HTMLResponse:
        return get_redoc_html(
            openapi_url=at(request, app.openapi_url or "/openapi.json"),
            title=f"{app.title}: API", with_google_fonts=False,
            redoc_js_url=at(request, f"{STATIC}/redoc.standalone.js"),
            redoc_favicon_url=at(request, f"{STATIC}/favicon.png"))
