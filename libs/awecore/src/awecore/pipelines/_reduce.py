"""Science reduction: a raw frame with its calibrations to a calibrated image and weights."""

from __future__ import annotations

import numpy as np

__all__ = ["SATURATION", "reduce_science"]

#: where a 16-bit camera saturates, in raw ADU (a little below 65535: non-linearity)
SATURATION = 65000.0


def reduce_science(raw: np.ndarray, bias: np.ndarray, flat: np.ndarray, hot: np.ndarray,
                   cold: np.ndarray, saturation: float = SATURATION) -> tuple[np.ndarray,
                                                                           np.ndarray]:
    """(raw - bias) / flat, and a weight map: flat x (not hot) x (not cold) x (not saturated).

    Bad pixels keep a value (0) but weight 0, so no later step trusts them."""
    shapes = {a.shape for a in (raw, bias, flat, hot, cold)}
    if len(shapes) != 1:
        raise ValueError(f"image and calibrations differ in shape: {sorted(shapes)}")
    raw = np.asarray(raw, dtype=np.float32)
    flat = np.asarray(flat, dtype=np.float32)
    # in place, in float32: a frame is tens of megapixels and each temporary costs as much
    bad = raw >= saturation
    np.logical_or(bad, hot, out=bad)
    np.logical_or(bad, cold, out=bad)
    np.logical_or(bad, flat <= 0, out=bad)
    image = np.subtract(raw, bias, dtype=np.float32)
    with np.errstate(divide="ignore", invalid="ignore"):  # where flat <= 0: bad, zeroed below
        np.divide(image, flat, out=image)
    image[bad] = 0.0
    weight = flat.copy()
    weight[bad] = 0.0
    return image, weight
