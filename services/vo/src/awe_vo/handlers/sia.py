"""SIA v2: ``/sia/query`` over ObsCore, and the VOSI capabilities pyvo reads first."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response

from ..factory import Factory
from ..services.sia import capabilities_xml, parse_sia, run_sia
from ..votable import VOTABLE
from .deps import Caller, VOParams, get_caller, get_factory, get_params

router = APIRouter(tags=["SIA"])


async def sia_query(request: Request, params: VOParams = Depends(get_params),
                    caller: Caller = Depends(get_caller),
                    factory: Factory = Depends(get_factory)) -> Response:
    q = parse_sia(params, factory.settings.default_maxrec, factory.settings.hard_maxrec)
    async with factory.read_only() as conn:
        body = await run_sia(conn, caller.viewer, factory.base_url(request), q)
    return Response(body, media_type=VOTABLE)


# one route per method: each its own OpenAPI operation (SIA allows both); /sia itself
# answers queries too, for clients given the base URL as the query URL
for _method in ("GET", "POST"):
    router.add_api_route("/sia/query", sia_query, methods=[_method], response_class=Response,
                         operation_id=f"sia_query_{_method.lower()}",
                         responses={200: {"content": {VOTABLE: {}}}},
                         summary="Images by position, band, time, collection, ... (SIA 2.0)")
    router.add_api_route("/sia", sia_query, methods=[_method], response_class=Response,
                         operation_id=f"sia_base_{_method.lower()}", include_in_schema=False)


@router.get("/sia/capabilities", response_class=Response,
            responses={200: {"content": {"text/xml": {}}}},
            summary="VOSI capabilities of the SIA service")
async def sia_capabilities(request: Request,
                           factory: Factory = Depends(get_factory)) -> Response:
    return Response(capabilities_xml(factory.base_url(request)), media_type="text/xml")
