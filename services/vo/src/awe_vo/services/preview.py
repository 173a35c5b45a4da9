"""A PNG preview of an image product (DataLink ``#preview``): the first image with
pixels, binned down to at most ``SIZE`` pixels a side and scaled by zscale (the stretch
of IRAF's display, which shows the sky noise and faint sources), north as stored."""

from __future__ import annotations

import io

import numpy as np
from astropy.io import fits
from astropy.visualization import ZScaleInterval

from ..votable import VOError

__all__ = ["SIZE", "preview_png"]

SIZE = 1024


def preview_png(data: bytes) -> bytes:
    # matplotlib only writes the PNG: imported on first use, not at the service's start
    from matplotlib import image as mpimage

    with fits.open(io.BytesIO(data)) as hdul:
        pixels = next((h.data for h in hdul if h.is_image and h.data is not None
                       and h.data.ndim == 2), None)
        if pixels is None:
            raise VOError("this product has no image to preview", status=422)
        a = np.asarray(pixels, dtype=np.float32)
    step = max(1, -(-max(a.shape) // SIZE))
    if step > 1:  # bin step x step (the mean): less noise than taking every step-th pixel
        ny, nx = (a.shape[0] // step) * step, (a.shape[1] // step) * step
        a = np.nanmean(a[:ny, :nx].reshape(ny // step, step, nx // step, step), axis=(1, 3))
    finite = np.isfinite(a)
    if finite.any():
        lo, hi = ZScaleInterval().get_limits(a[finite])
    else:
        lo, hi = 0.0, 1.0
    out = io.BytesIO()
    mpimage.imsave(out, np.nan_to_num(a, nan=lo), vmin=lo, vmax=hi, cmap="gray",
                   origin="lower", format="png")
    return out.getvalue()
