"""Problem documents back into the exceptions the service raised."""

from __future__ import annotations

import httpx

from ..errors import error_class

__all__ = ["raise_for_problem"]


def raise_for_problem(response: httpx.Response) -> None:
    """A service's problem document back into its ``AweError`` class (status and detail)."""
    if response.is_success:
        return
    try:
        body = response.json()
    except ValueError:
        body = {}
    if not isinstance(body, dict):
        body = {}
    cls = error_class(str(body.get("error", "")), response.status_code)
    detail = body.get("detail") or f"HTTP {response.status_code} from {response.url}"
    raise cls(str(detail), body.get("errors"))
