"""The request id of the work in hand, sent along on every call a client makes.

A service binds the ``X-Request-ID`` of the request it serves (or a compute worker the id of
the request that submitted its job); the clients of this package read it here and send it
on, so one id follows a piece of work across services, into their logs and the job's log.
A script outside any service has none, and sends none.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

import httpx

__all__ = ["REQUEST_ID_HEADER", "async_request_id_hooks", "current_request_id",
           "request_id_hooks", "using_request_id"]

REQUEST_ID_HEADER = "X-Request-ID"
_current: ContextVar[str | None] = ContextVar("awe_request_id", default=None)


def current_request_id() -> str | None:
    """The request id bound in this context (an asyncio task, or a thread started with
    ``asyncio.to_thread``, which copies it), or None."""
    return _current.get()


@contextmanager
def using_request_id(request_id: str | None) -> Iterator[None]:
    """Bind ``request_id`` for the calls made inside the block."""
    token = _current.set(request_id)
    try:
        yield
    finally:
        _current.reset(token)


def _stamp(request: httpx.Request) -> None:
    request_id = _current.get()
    if request_id and REQUEST_ID_HEADER not in request.headers:
        request.headers[REQUEST_ID_HEADER] = request_id


async def _stamp_async(request: httpx.Request) -> None:
    _stamp(request)


def request_id_hooks() -> dict[str, list[Callable[..., Any]]]:
    """``event_hooks`` for an ``httpx.Client`` that sends the current request id."""
    return {"request": [_stamp]}


def async_request_id_hooks() -> dict[str, list[Callable[..., Any]]]:
    """``event_hooks`` for an ``httpx.AsyncClient`` that sends the current request id."""
    return {"request": [_stamp_async]}
