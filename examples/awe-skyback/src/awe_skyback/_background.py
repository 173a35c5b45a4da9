"""The arithmetic: a frame's sky background in boxes, numpy only."""

from __future__ import annotations

import warnings

import numpy as np

__all__ = ["block_background"]


def block_background(image: np.ndarray, valid: np.ndarray, box: int, nsigma: float = 3.0,
                     iterations: int = 5) -> tuple[np.ndarray, np.ndarray]:
    """The sky level and noise of each ``box`` x ``box`` block of ``image`` (edge blocks
    hold what is left), from its ``valid`` pixels clipped at ``nsigma`` times their robust
    rms around the median, a few times over: what is left is sky, not stars. A block with
    no valid pixel is NaN."""
    if box < 2:
        raise ValueError(f"box must be at least 2 pixels, not {box}")
    ny, nx = image.shape
    by, bx = -(-ny // box), -(-nx // box)
    data = np.full((by * box, bx * box), np.nan, dtype=np.float64)
    data[:ny, :nx] = np.where(valid, image, np.nan)
    blocks = data.reshape(by, box, bx, box).transpose(0, 2, 1, 3).reshape(by, bx, box * box)
    with warnings.catch_warnings():  # an all-NaN block is NaN, which says it
        warnings.simplefilter("ignore", RuntimeWarning)
        for _ in range(iterations):
            level = np.nanmedian(blocks, axis=2, keepdims=True)
            spread = 1.4826 * np.nanmedian(np.abs(blocks - level), axis=2, keepdims=True)
            blocks = np.where(np.abs(blocks - level) > nsigma * spread, np.nan, blocks)
        level = np.nanmedian(blocks, axis=2)
        rms = np.nanstd(blocks, axis=2)
    return level.astype(np.float32), rms.astype(np.float32)

