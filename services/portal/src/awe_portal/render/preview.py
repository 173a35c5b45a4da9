"""Preview images of products with pixels: a PNG with a zscale stretch and, where the
file has a celestial WCS, a coordinate grid; cached on disk by oid and checksum.

A FITS file is written once and named by its checksum in the catalogue, so (oid, checksum)
names a picture for good: the cache never needs invalidating, only a new rendering
version (``RENDER_VERSION``) changes the key. Rendering runs in a worker thread (it is
numpy and Agg work that would stall the event loop) and one at a time, because
matplotlib's global state (fonts, rc) is not made for concurrent drawing.
"""

from __future__ import annotations

import asyncio
import io
import math
import os
import re
import tempfile
import threading
import warnings
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import numpy as np
from astropy.io import fits
from astropy.visualization import ZScaleInterval
from astropy.wcs import WCS, FITSFixedWarning

__all__ = ["RENDER_VERSION", "NoPixels", "PreviewCache", "find_image", "render_preview"]

#: bump when the picture changes, so cached previews of the old kind are not served
RENDER_VERSION = "1"

_DRAW = threading.Lock()
_SAFE = re.compile(r"[^0-9A-Za-z_.-]")


class NoPixels(ValueError):
    """The file is not FITS, or holds no 2-D image (a table, an empty primary HDU)."""


def find_image(hdul: fits.HDUList) -> tuple[np.ndarray, fits.Header]:
    """The first image HDU with two or more axes: its pixels (2-D: the first plane of a
    cube) and its header. Raises NoPixels when there is none."""
    for hdu in hdul:
        if isinstance(hdu, (fits.PrimaryHDU, fits.ImageHDU, fits.CompImageHDU)) \
                and hdu.data is not None and hdu.data.ndim >= 2:
            data = np.asarray(hdu.data)
            while data.ndim > 2:
                data = data[0]
            return data, hdu.header
    raise NoPixels("the file holds no image")


def _celestial(header: fits.Header, shape: tuple[int, int]) -> WCS | None:
    """The header's celestial WCS, or None when it has none (or one astropy cannot use)."""
    if "CTYPE1" not in header:
        return None
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FITSFixedWarning)
            wcs = WCS(header, naxis=2)
            if not wcs.has_celestial:
                return None
            wcs.pixel_to_world_values(shape[1] / 2, shape[0] / 2)  # refuses a broken one
            return wcs
    except Exception:  # a malformed WCS is drawn without a grid, not refused
        return None


def render_preview(fits_bytes: bytes, *, size: int = 720) -> bytes:
    """A PNG of the file's first image, at most ``size`` pixels on its longer side
    (binned by striding), stretched by zscale, with a WCS grid where there is one."""
    from matplotlib.figure import Figure  # imported here: only rendering needs it

    try:
        with fits.open(io.BytesIO(fits_bytes), memmap=False) as hdul:
            data, header = find_image(hdul)
            data = np.array(data, dtype=np.float32)
    except NoPixels:
        raise
    except Exception as exc:  # astropy raises OSError, TypeError, ... on a non-FITS file
        raise NoPixels(f"not a FITS file: {exc}") from None
    ny, nx = data.shape
    if nx == 0 or ny == 0:
        raise NoPixels("the image is empty")
    wcs = _celestial(header, (ny, nx))
    step = max(1, math.ceil(max(nx, ny) / size))
    if step > 1:
        data = data[::step, ::step]
        if wcs is not None:
            wcs = wcs.slice((slice(None, None, step), slice(None, None, step)))
    finite = np.isfinite(data)
    if finite.any():
        vmin, vmax = ZScaleInterval().get_limits(data[finite])
    else:
        vmin, vmax = 0.0, 1.0
    h, w = data.shape
    # inches around the image: left, bottom, right, top (room for the coordinate labels)
    left, bottom, right, top = (1.05, 0.7, 0.3, 0.25) if wcs is not None else (0.05,) * 4
    scale = size / max(w, h) / 100
    fig_w, fig_h = w * scale + left + right, h * scale + bottom + top
    with _DRAW:
        fig = Figure(figsize=(fig_w, fig_h), dpi=100)
        rect = (left / fig_w, bottom / fig_h, 1 - (left + right) / fig_w,
                1 - (bottom + top) / fig_h)
        # WCSAxes (astropy's) when there is a WCS: typed as matplotlib's plain Axes
        ax: Any = fig.add_axes(rect, projection=wcs) if wcs is not None else fig.add_axes(rect)
        ax.imshow(np.where(finite, data, vmin), origin="lower", cmap="gray", vmin=vmin,
                  vmax=vmax, interpolation="nearest", aspect="equal")
        if wcs is not None:
            ax.coords.grid(color="#33ccff", alpha=0.6, linestyle="dotted")
            ax.coords[0].set_axislabel("RA")
            ax.coords[1].set_axislabel("Dec")
        else:
            ax.set_axis_off()
        out = io.BytesIO()
        fig.savefig(out, format="png", dpi=100)
    return out.getvalue()


class PreviewCache:
    """Previews on disk under ``root``, one file per (oid, checksum, rendering version)."""

    def __init__(self, root: Path, size: int = 720) -> None:
        self.root = Path(root)
        self.size = size
        self._locks: dict[str, asyncio.Lock] = {}

    def path(self, oid: str, checksum: str | None) -> Path:
        """Where the preview of this version of the object is kept."""
        key = f"{_SAFE.sub('_', oid)}-{_SAFE.sub('_', (checksum or 'none')[:64])}"
        return self.root / f"{key}-v{RENDER_VERSION}-{self.size}.png"

    async def png(self, oid: str, checksum: str | None,
                  load: Callable[[], Awaitable[bytes]]) -> bytes:
        """The preview's PNG: from the cache, or rendered from the bytes ``load`` fetches
        (once, however many requests ask at the same time) and kept. NoPixels when the
        file has no image (nothing is cached then: the next request says so again)."""
        target = self.path(oid, checksum)
        if target.exists():
            return target.read_bytes()
        lock = self._locks.setdefault(target.name, asyncio.Lock())
        async with lock:
            if target.exists():
                return target.read_bytes()
            fits_bytes = await load()
            png = await asyncio.to_thread(render_preview, fits_bytes, size=self.size)
            self._write(target, png)
        self._locks.pop(target.name, None)
        return png

    def _write(self, target: Path, png: bytes) -> None:
        """Atomically: a reader sees the whole picture or none."""
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=target.parent, suffix=".tmp")
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(png)
            os.replace(tmp, target)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
