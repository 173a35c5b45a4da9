from __future__ import annotations

import re
from collections.abc import AsyncIterator

from fastapi import APIRouter, Depends, Header, Query, Request, Response
from fastapi.responses import StreamingResponse
from pydantic import BaseModel
from starlette.requests import ClientDisconnect

from awecore.errors import AweError, Forbidden, InvalidRequest
from awecore.files import FileInfo, FilePage, Verification
from awecore.server import MAKES, READS
from awecore.server import Identity as Caller

from ..factory import Factory
from ..services.files import PEER_HOP, content_headers, truncated
from ..services.ingest import ingest_upload
from .deps import get_caller, get_factory

router = APIRouter(tags=["files"])
_RANGE = re.compile(r"^bytes=(\d*)-(\d*)$")


class RangeNotSatisfiable(AweError):
    error = "range_not_satisfiable"
    status_code = 416
    title = "Range not satisfiable"


def _range(header: str | None, size: int) -> tuple[int, int] | None:
    if header is None:
        return None
    m = _RANGE.match(header.strip())
    if not m or (not m.group(1) and not m.group(2)):
        raise RangeNotSatisfiable(f"unsupported Range {header!r}; use bytes=START-END")
    if not m.group(1):  # a suffix: the last N bytes
        n = int(m.group(2))
        start, end = max(0, size - n), size - 1
    else:
        start = int(m.group(1))
        end = min(int(m.group(2)), size - 1) if m.group(2) else size - 1
    if start >= size or end < start:
        raise RangeNotSatisfiable(f"range {header!r} outside a file of {size} bytes")
    return start, end


class _Counted:
    """The request body, counting the bytes that arrive."""

    def __init__(self, request: Request) -> None:
        self.request = request
        self.received = 0

    async def __aiter__(self) -> AsyncIterator[bytes]:
        async for chunk in self.request.stream():
            self.received += len(chunk)
            yield chunk


@router.put("/files/{name:path}", response_model=FileInfo, status_code=201, openapi_extra=MAKES,
            summary="Store a file under a new unique name (write once, verified)",
            responses={200: {"model": FileInfo, "description":
                             "the name holds these very bytes already (same sha256): an "
                             "idempotent retry; the stored file's FileInfo"},
                       409: {"description": "the name holds other bytes; the detail names "
                             "both checksums"},
                       413: {"description": "larger than the upload limit (refused by its "
                             "Content-Length, or as it streams)"}})
async def put_file(name: str, request: Request, response: Response,
                   caller: Caller = Depends(get_caller),
                   factory: Factory = Depends(get_factory),
                   content_length: int | None = Header(default=None)) -> FileInfo:
    body = _Counted(request)
    try:
        info, created = await factory.files().store(name, aiter(body), caller, content_length)
    except ClientDisconnect:
        if content_length is not None:
            raise InvalidRequest(truncated(body.received, content_length)) from None
        raise InvalidRequest(f"upload interrupted after {body.received} bytes; nothing was "
                             "stored") from None
    if not created:
        response.status_code = 200
    return info


@router.get("/files/{name:path}", summary="Read a file (streamed; HTTP Range supported)",
            response_class=StreamingResponse,
            responses={206: {"description": "the part of the file the Range asked for"},
                       416: {"description": "a Range this service cannot serve"}})
async def get_file(name: str, request: Request, caller: Caller = Depends(get_caller),
                   factory: Factory = Depends(get_factory),
                   range: str | None = Header(default=None)) -> Response:
    files = factory.files()
    info = await files.readable(name, caller, hop=request.headers.get(PEER_HOP) == "1")
    headers = content_headers(info)
    span = _range(range, info.size)
    if span is None:
        headers["content-length"] = str(info.size)
        return StreamingResponse(files.read(info), headers=headers,
                                 media_type="application/octet-stream")
    start, end = span
    headers["content-length"] = str(end - start + 1)
    headers["content-range"] = f"bytes {start}-{end}/{info.size}"
    return StreamingResponse(files.read(info, start, end - start + 1), status_code=206,
                             headers=headers, media_type="application/octet-stream")


@router.head("/files/{name:path}", summary="Size and checksum of a file")
async def head_file(name: str, caller: Caller = Depends(get_caller),
                    factory: Factory = Depends(get_factory)) -> Response:
    info = await factory.files().readable(name, caller)
    return Response(headers={**content_headers(info), "content-length": str(info.size)})


@router.delete("/files/{name:path}", status_code=204,
               summary="Delete a file: never raw data; only its owner; only if unreferenced")
async def delete_file(name: str, caller: Caller = Depends(get_caller),
                      factory: Factory = Depends(get_factory)) -> Response:
    await factory.files().delete(name, caller)
    return Response(status_code=204)


@router.get("/files", response_model=FilePage, summary="List files by prefix, paginated")
async def list_files(prefix: str = Query(default="", max_length=512),
                     after: str | None = Query(default=None, max_length=512),
                     limit: int = Query(default=1000, ge=1, le=10000),
                     caller: Caller = Depends(get_caller),
                     factory: Factory = Depends(get_factory)) -> FilePage:
    return await factory.files().list(prefix, after, limit, caller)


@router.post("/verify/{name:path}", response_model=Verification, openapi_extra=READS,
             summary="Re-read a stored file and compare it with its checksum")
async def verify(name: str, caller: Caller = Depends(get_caller),
                 factory: Factory = Depends(get_factory)) -> Verification:
    return await factory.files().verify(name, caller)


class IngestOut(BaseModel):
    file: str
    frames: dict[str, int]
    already_there: int
    bytes: int
    oids: list[str]


@router.post("/ingest", response_model=IngestOut, status_code=201, tags=["ingest"],
             summary="Ingest one raw multi-extension FITS file: split per chip, store, register")
async def ingest(request: Request, filename: str = Query(max_length=256,
                                                         description="the original file name"),
                 caller: Caller = Depends(get_caller),
                 factory: Factory = Depends(get_factory)) -> IngestOut:
    """Raw data enters the archive only here, and only from admins and service accounts
    (refused before a byte of the body is read): a user could otherwise squat the raw
    names of a night to come (``awecore.visibility.may_write_file``)."""
    if not caller.sees_all:
        raise Forbidden("ingest writes raw data: only an admin or a service account may "
                        "ingest")
    token = request.headers["authorization"].split(" ", 1)[1]
    settings = factory.context.settings
    declared = request.headers.get("content-length")
    report = await ingest_upload(factory.files(), settings.catalog_url, token, caller,
                                 filename, request.stream(), settings.max_upload_bytes,
                                 int(declared) if declared and declared.isdigit() else None)
    return IngestOut(file=filename, frames=report.frames, already_there=report.skipped,
                     bytes=report.bytes, oids=report.oids)
