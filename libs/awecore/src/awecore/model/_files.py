"""An object's file and sky, one step from the object: ``obj.hdul()``, ``obj.data``,
``astrom.wcs``.

A scientist with an object in hand wants its pixels, not a storage address: the file comes
from storage through the session (``Session.download``, bound by ``awe.connect()``), checked
against the checksum and size the catalogue recorded, and is kept on the object (objects
are immutable, and so are stored files), so ``obj.data`` twice reads it once.
"""

from __future__ import annotations

import io
from collections.abc import Mapping
from typing import Any

import numpy as np
from astropy.io import fits
from astropy.wcs import WCS

from ..errors import InvalidRequest
from ._session import session

__all__ = ["WCS_KEYS", "file_bytes", "first_image", "open_hdul", "wcs_from_attributes"]

#: the attributes of a TAN WCS as an AstrometricParameters records them
WCS_KEYS = ("crval1", "crval2", "crpix1", "crpix2", "cd1_1", "cd1_2", "cd2_1", "cd2_2")


def file_bytes(obj: Any) -> bytes:
    """The object's file, verified, read once per object."""
    cached: bytes | None = getattr(obj, "_file_bytes", None)
    if cached is not None:
        return cached
    record = obj.record
    if record is None:
        raise InvalidRequest(f"{obj!r} is not stored in the catalogue yet: it has no file")
    if not record.filename:
        raise InvalidRequest(f"{record.type} {record.oid} has no file")
    data = (obj._session or session()).download(record)
    obj._file_bytes = data
    return data


def open_hdul(data: bytes) -> fits.HDUList:
    return fits.open(io.BytesIO(data))


def first_image(hdul: fits.HDUList) -> np.ndarray:
    """The primary image, or the first extension's that has one."""
    for hdu in hdul:
        if isinstance(hdu, fits.PrimaryHDU | fits.ImageHDU) and hdu.data is not None:
            return np.asarray(hdu.data)
    raise InvalidRequest("the file holds no image (a table: use .hdul())")


def wcs_from_attributes(attributes: Mapping[str, Any]) -> WCS:
    """The TAN WCS an AstrometricParameters records (CRVAL, CRPIX, CD) as an astropy WCS."""
    missing = [k for k in WCS_KEYS if attributes.get(k) is None]
    if missing:
        raise InvalidRequest(f"no fitted WCS: {', '.join(missing)} missing")
    wcs = WCS(naxis=2)
    wcs.wcs.ctype = ["RA---TAN", "DEC--TAN"]
    wcs.wcs.crval = [float(attributes["crval1"]), float(attributes["crval2"])]
    wcs.wcs.crpix = [float(attributes["crpix1"]), float(attributes["crpix2"])]
    wcs.wcs.cd = [[float(attributes["cd1_1"]), float(attributes["cd1_2"])],
                  [float(attributes["cd2_1"]), float(attributes["cd2_2"])]]
    return wcs
