from __future__ import annotations

from fastapi import Request

from awecore.web import get_identity

from ..factory import Factory


def get_factory(request: Request) -> Factory:
    return Factory(request.app.state.context)


get_caller = get_identity
