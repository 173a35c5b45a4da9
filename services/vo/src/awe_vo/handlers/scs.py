"""Simple Cone Search (SCS 1.03): ``/scs?RA=&DEC=&SR=`` on the source table."""

from __future__ import annotations

from fastapi import APIRouter, Depends
from fastapi.responses import Response

from ..factory import Factory
from ..services.scs import error_document, parse_scs, search
from ..votable import VOTABLE, VOError, votable_response
from .deps import Caller, VOParams, get_caller, get_factory, get_params

router = APIRouter(tags=["cone search"])


async def cone_search(params: VOParams = Depends(get_params),
                      caller: Caller = Depends(get_caller),
                      factory: Factory = Depends(get_factory)) -> Response:
    try:
        q = parse_scs(params, factory.settings.default_maxrec, factory.settings.hard_maxrec)
    except VOError as exc:
        return votable_response(error_document(exc.message), exc.status)
    async with factory.read_only() as conn:
        body = await search(conn, caller.viewer, q)
    return Response(body, media_type=VOTABLE)


# one route per method: each its own OpenAPI operation (SCS allows both)
for _method in ("GET", "POST"):
    router.add_api_route("/scs", cone_search, methods=[_method], response_class=Response,
                         operation_id=f"scs_{_method.lower()}",
                         responses={200: {"content": {VOTABLE: {}}}},
                         summary="Sources within SR degrees of (RA, DEC), nearest first "
                                 "(SCS 1.03)")
