"""Cutouts that read only the rows they need from storage (HTTP Range requests).

A 2k x 4k float frame is 32 MiB; a cutout of a few arcminutes needs a few hundred of its
rows. An uncompressed FITS image stores rows one after the other, so the headers (a few
2880-byte blocks each) and then the byte range of rows y0..y1 of each image are all a
cutout needs: they are put together as a small FITS file holding that strip (its WCS's
reference pixel moved by y0, the rest of each header as it was, so astropy applies BSCALE,
BZERO and the WCS as it would to the whole file) and cut by ``cutout.cutout``.

Files this cannot read so (tile-compressed images, more than ``MAX_HDUS`` extensions, a
header over 1 MiB, a storage that ignores Range) are read whole instead: ``None`` says so.
"""

from __future__ import annotations

import asyncio
import math
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from astropy.io import fits

from ..votable import VOError
from .cutout import celestial, cutout, pixel_box
from .regions import Region

__all__ = ["MAX_HDUS", "Reader", "WholeFile", "ranged_cutout"]

BLOCK = 2880
MAX_HDUS = 16
_END = re.compile(rb"END {77}")
_CRPIX2 = re.compile(r"^CRPIX2[A-Z]?$")

#: reads bytes start..end (inclusive) of the file; gives them and the file's size
Reader = Callable[[int, int], Awaitable[tuple[bytes, int]]]


class WholeFile(Exception):  # a signal carrying the file, not an error
    """The storage sent the whole file for a range request: here it is."""

    def __init__(self, content: bytes) -> None:
        super().__init__("whole file")
        self.content = content


@dataclass
class _HDU:
    header: fits.Header
    data_at: int

    @property
    def image_shape(self) -> tuple[int, int] | None:
        h = self.header
        if h.get("XTENSION", "IMAGE") != "IMAGE" or h.get("NAXIS") != 2:
            return None
        return int(h["NAXIS2"]), int(h["NAXIS1"])


async def _header(read: Reader, at: int, size: int) -> tuple[fits.Header, int] | None:
    """The header starting at byte ``at`` and its length in bytes (whole blocks)."""
    chunk = b""
    while len(chunk) < (1 << 20):
        start = at + len(chunk)
        if start >= size:
            return None
        data, size = await read(start, min(size, start + 4 * BLOCK) - 1)
        chunk += data
        for m in _END.finditer(chunk):
            if m.start() % 80 == 0:
                cards = chunk[:m.end()]
                return (fits.Header.fromstring(cards.decode("ascii", "replace")),
                        math.ceil(len(cards) / BLOCK) * BLOCK)
    return None


async def _walk(read: Reader) -> list[_HDU] | None:
    first, size = await read(0, 4 * BLOCK - 1)
    del first
    hdus: list[_HDU] = []
    at = 0
    while at < size and len(hdus) < MAX_HDUS:
        got = await _header(read, at, size)
        if got is None:
            break
        header, length = got
        if header.get("ZIMAGE"):
            return None  # tile-compressed: astropy must read it whole
        naxis = int(header.get("NAXIS", 0))
        pixels = math.prod(int(header[f"NAXIS{i}"]) for i in range(1, naxis + 1)) if naxis else 0
        nbytes = abs(int(header["BITPIX"])) // 8 * int(header.get("GCOUNT", 1)) * (
            int(header.get("PCOUNT", 0)) + pixels)
        hdus.append(_HDU(header, at + length))
        at += length + math.ceil(nbytes / BLOCK) * BLOCK
    return hdus


def _strip_header(header: fits.Header, rows: int, y0: int, primary: bool) -> bytes:
    h = header.copy()
    h["NAXIS2"] = rows
    for key in list(h.keys()):
        if _CRPIX2.match(key):
            h[key] = float(h[key]) - y0
    if primary and "XTENSION" in h:
        h.remove("XTENSION")
        h.insert(0, ("SIMPLE", True))
        h.remove("PCOUNT", ignore_missing=True)
        h.remove("GCOUNT", ignore_missing=True)
    elif not primary and "SIMPLE" in h:
        h.remove("SIMPLE")
        h.remove("EXTEND", ignore_missing=True)
        h.insert(0, ("XTENSION", "IMAGE"))
        h.insert("NAXIS2", ("PCOUNT", 0), after=True)
        h.insert("PCOUNT", ("GCOUNT", 1), after=True)
    text: str = h.tostring(padding=True)
    return text.encode("ascii")


async def ranged_cutout(read: Reader, region: Region, note: str) -> bytes | None:
    """The cutout, reading only headers and the rows it needs; None if the file cannot be
    read so (the caller then reads it whole). ``VOError`` as ``cutout.cutout``."""
    hdus = await _walk(read)
    if not hdus:
        return None
    image = next((h for h in hdus if h.image_shape and celestial(h.header) is not None), None)
    if image is None:
        return None  # let the whole-file path say what is wrong with it
    shape = image.image_shape
    wcs = celestial(image.header)
    assert shape is not None and wcs is not None
    box = pixel_box(wcs, region, shape)
    if box is None:
        raise VOError("NoOverlap: the region does not overlap the image")
    parts: list[bytes] = []
    for h in [image, *(h for h in hdus if h is not image and h.image_shape == shape)]:
        row = abs(int(h.header["BITPIX"])) // 8 * shape[1]
        data, _ = await read(h.data_at + box.y0 * row, h.data_at + (box.y1 + 1) * row - 1)
        if len(data) != (box.y1 - box.y0 + 1) * row:
            return None
        parts.append(_strip_header(h.header, box.y1 - box.y0 + 1, box.y0, not parts))
        parts.append(data + b"\0" * (-len(data) % BLOCK))
    # the strip is small, but WCS and Cutout2D still take milliseconds: off the loop
    return await asyncio.to_thread(cutout, b"".join(parts), region, note, box.y0)
