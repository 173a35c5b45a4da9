"""The portal's own static files (style, the vendored htmx, icons): every asset a page
loads comes from here, none from another host."""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter, HTTPException
from fastapi.responses import FileResponse

__all__ = ["STATIC", "router"]

STATIC = Path(__file__).resolve().parent.parent / "static"
_TYPES = {".js": "text/javascript", ".css": "text/css", ".svg": "image/svg+xml",
          ".png": "image/png"}

router = APIRouter()


@router.get("/static/{name}")
async def static(name: str) -> FileResponse:
    """One file of awe_portal/static (a flat folder: no path reaches outside it)."""
    path = STATIC / name
    if "/" in name or name.startswith(".") or not path.is_file():
        raise HTTPException(404, f"no static file {name!r}")
    return FileResponse(path, media_type=_TYPES.get(path.suffix, "application/octet-stream"),
                        headers={"Cache-Control": "public, max-age=3600"})
