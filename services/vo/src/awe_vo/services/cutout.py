"""SODA cutouts: the pixels of a product's FITS file that a sky region covers, as a FITS
file that stands on its own (the parent's header, its WCS moved to the cutout).

The box is the smallest one holding the region: points on the region's boundary (and a
circle's centre) go through the parent's WCS, so a distorted WCS (SIP) gets the right box
too. The cut itself is astropy's ``Cutout2D``, which also moves the WCS (CRPIX and SIP's
reference pixel) so that every pixel of the cutout has the world coordinates it had in the
parent. Every image extension of the parent's shape (a coadd's COUNT map) is cut alike.
"""

from __future__ import annotations

import io
import math
import re
import warnings

import numpy as np
from astropy.io import fits
from astropy.nddata import Cutout2D
from astropy.wcs import WCS, FITSFixedWarning

from ..votable import VOError
from .regions import Region

__all__ = ["Box", "celestial", "cutout", "pixel_box"]

#: header keywords that describe a WCS: replaced by the cutout's own
_WCS_KEY = re.compile(
    r"^(WCSAXES|WCSNAME|CRPIX\d|CRVAL\d|CDELT\d|CUNIT\d|CTYPE\d|CROTA\d|CD\d_\d|PC\d_\d|"
    r"PV\d_\d+|PS\d_\d+|LONPOLE|LATPOLE|RADESYS|EQUINOX|EPOCH|MJDREF|"
    r"(A|B|AP|BP)_(ORDER|DMAX|\d+_\d+)|LTV\d|LTM\d_\d)$")


class Box:
    """A pixel box, ends included, 0-based (x = column, y = row)."""

    def __init__(self, x0: int, x1: int, y0: int, y1: int) -> None:
        self.x0, self.x1, self.y0, self.y1 = x0, x1, y0, y1

    @property
    def shape(self) -> tuple[int, int]:
        return self.y1 - self.y0 + 1, self.x1 - self.x0 + 1

    @property
    def centre(self) -> tuple[float, float]:
        # Cutout2D's box of an odd or even size around this position starts at x0, y0
        return (self.x0 + self.x1) / 2, (self.y0 + self.y1) / 2


def celestial(header: fits.Header) -> WCS | None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FITSFixedWarning)
        try:
            wcs = WCS(header)
        except Exception:  # an unreadable WCS is no WCS to cut by
            return None
    return wcs if wcs.has_celestial and wcs.naxis == 2 else None


def pixel_box(wcs: WCS, region: Region, shape: tuple[int, int]) -> Box | None:
    """The pixels (within ``shape``: ny, nx) the region covers; None if none."""
    ra, dec = region.boundary()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        x, y = wcs.world_to_pixel_values(ra, dec)
    x, y = np.asarray(x), np.asarray(y)
    good = np.isfinite(x) & np.isfinite(y)
    if not good.any():
        return None
    # pixel i covers [i - 0.5, i + 0.5)
    x0 = max(0, math.floor(float(x[good].min()) + 0.5))
    x1 = min(shape[1] - 1, math.floor(float(x[good].max()) + 0.5))
    y0 = max(0, math.floor(float(y[good].min()) + 0.5))
    y1 = min(shape[0] - 1, math.floor(float(y[good].max()) + 0.5))
    if x0 > x1 or y0 > y1:
        return None
    return Box(x0, x1, y0, y1)


def _header(parent: fits.Header, wcs: WCS, note: str) -> fits.Header:
    header = fits.Header()
    for card in parent.cards:
        key = card.keyword
        if (_WCS_KEY.match(key) or key in ("SIMPLE", "XTENSION", "BITPIX", "EXTEND", "PCOUNT",
                                           "GCOUNT", "CHECKSUM", "DATASUM")
                or key.startswith("NAXIS")):
            continue
        header.append(card, end=True)
    header.extend(wcs.to_header(relax=True), update=True)
    header.add_history(note)
    return header


def cutout(data: bytes, region: Region, note: str = "SODA cutout", y_offset: int = 0) -> bytes:
    """The cutout of ``region`` from the FITS file ``data``, as FITS bytes; ``y_offset``:
    the first row of ``data`` is that row of the parent (a strip of it, ``ranged``).

    Raises ``VOError`` 400 if the region misses the image, 422 if the file has no image
    with a celestial WCS (nothing to place the region on)."""
    with fits.open(io.BytesIO(data)) as hdul:
        image = next((i for i, h in enumerate(hdul)
                      if h.is_image and h.header.get("NAXIS") == 2
                      and celestial(h.header) is not None), None)
        if image is None:
            raise VOError("this product has no image with a celestial WCS to cut", status=422)
        parent = hdul[image]
        wcs = celestial(parent.header)
        assert wcs is not None
        shape = (int(parent.header["NAXIS2"]), int(parent.header["NAXIS1"]))
        box = pixel_box(wcs, region, shape)
        if box is None:
            raise VOError("NoOverlap: the region does not overlap the image")
        out = fits.HDUList()
        for i, hdu in enumerate(hdul):
            if i != image and not (hdu.is_image and hdu.header.get("NAXIS") == 2
                                   and (int(hdu.header["NAXIS2"]),
                                        int(hdu.header["NAXIS1"])) == shape):
                continue
            cut = Cutout2D(hdu.data, box.centre, box.shape, wcs=wcs, mode="strict", copy=True)
            header = _header(hdu.header, cut.wcs,
                             f"{note}: pixels [{box.x0 + 1}:{box.x1 + 1},"
                             f"{box.y0 + y_offset + 1}:{box.y1 + y_offset + 1}] of the parent")
            header["LTV1"] = (-box.x0, "parent pixel = cutout pixel - LTV1")
            header["LTV2"] = (-box.y0 - y_offset, "parent pixel = cutout pixel - LTV2")
            if not out:
                out.append(fits.PrimaryHDU(cut.data, header))
            else:
                ext = fits.ImageHDU(cut.data, header)
                out.append(ext)
        buffer = io.BytesIO()
        out.writeto(buffer, output_verify="silentfix")
        return buffer.getvalue()
