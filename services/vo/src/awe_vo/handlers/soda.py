"""SODA sync cutouts: ``/soda?ID=...&CIRCLE=ra dec r`` (or POLYGON, or POS) as FITS.

The file is read from storage as the caller (their token forwarded): only the headers and
the rows the cutout needs (``services.ranged``), or the whole file where that cannot be."""

from __future__ import annotations

import asyncio
from urllib.parse import quote

from fastapi import APIRouter, Depends
from fastapi.responses import Response

from ..factory import Factory
from ..services.cutout import cutout
from ..services.datalink import target
from ..services.ranged import Reader, WholeFile, ranged_cutout
from ..services.soda import parse_soda
from ..votable import VOError
from .deps import Caller, VOParams, get_caller, get_factory, get_params

router = APIRouter(tags=["SODA"])


def _reader(factory: Factory, name: str, token: str | None) -> Reader:
    auth = {"Authorization": f"Bearer {token}"} if token else {}
    path = f"/files/{quote(name)}"

    async def read(start: int, end: int) -> tuple[bytes, int]:
        r = await factory.context.storage.get(path, headers={**auth,
                                                             "Range": f"bytes={start}-{end}"})
        if r.status_code == 200:
            raise WholeFile(r.content)
        if r.status_code == 416:
            return b"", start
        if r.status_code in (401, 403, 404):
            raise VOError(f"no file {name!r} readable by you", status=404)
        if r.status_code != 206:
            raise VOError(f"storage answered {r.status_code} for {name!r}", status=503)
        size = int(r.headers.get("content-range", "*/0").rsplit("/", 1)[-1])
        return r.content, size
    return read


async def soda(params: VOParams = Depends(get_params), caller: Caller = Depends(get_caller),
               factory: Factory = Depends(get_factory)) -> Response:
    q = parse_soda(params)
    async with factory.read_only() as conn:
        t = await target(conn, caller.viewer, q.oid)
    if t is None or not t.filename:
        raise VOError(f"NotFoundFault: {q.id}", status=404)
    name = t.filename.rsplit("/", 1)[-1]
    if q.region is None:
        body = await factory.fetch_file(t.filename, caller.token)
    else:
        note = f"SODA cutout of {t.did}"
        data: bytes | None = None
        try:
            got = await ranged_cutout(_reader(factory, t.filename, caller.token), q.region, note)
        except WholeFile as whole:
            got, data = None, whole.content
        if got is None:
            if data is None:
                data = await factory.fetch_file(t.filename, caller.token)
            # pixels are cut off the event loop: a whole large frame takes a while
            got = await asyncio.to_thread(cutout, data, q.region, note)
        body = got
        name = f"cutout-{name}"
    return Response(body, media_type="application/fits",
                    headers={"Content-Disposition": f'attachment; filename="{name}"'})


# one route per method: each its own OpenAPI operation (SODA allows both)
for _method in ("GET", "POST"):
    router.add_api_route("/soda", soda, methods=[_method], response_class=Response,
                         operation_id=f"soda_{_method.lower()}",
                         responses={200: {"content": {"application/fits": {}}}},
                         summary="A cutout of an image by CIRCLE or POLYGON (SODA 1.0 sync)")
