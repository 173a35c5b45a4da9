"""Science reduction: a raw frame with its calibrations to a calibrated image and weights."""

from __future__ import annotations

import numpy as np

__all__ = ["reduce_science"]


def reduce_science(raw: np.ndarray, bias: np.ndarray, flat: np.ndarray, hot: np.ndarray,
                   cold: np.ndarray, saturation: float = 65000.0) -> tuple[np.ndarray,
                                                                           np.ndarray]:
    """(raw - bias) / flat, and a weight map: flat x (not hot) x (not cold) x (not saturated).

    Bad pixels keep a value (0) but weight 0, so no later step trusts them."""
    shapes = {a.shape for a in (raw, bias, flat, hot, cold)}
    if len(shapes) != 1:
        raise ValueError(f"image and calibrations differ in shape: {sorted(shapes)}")
    raw = np.asarray(raw, dtype=np.float32)
    bad = hot | cold | (raw >= saturation) | (flat <= 0)
    safe_flat = np.where(bad, 1.0, flat)
    image = np.where(bad, 0.0, (raw - bias) / safe_flat).astype(np.float32)
    weight = np.where(bad, 0.0, flat).astype(np.float32)
    return image, weight
