"""Calibration pipelines: pure functions from images (ADU, numpy) to calibration products.

Each returns its product and the numbers the object model records (imstat, counts), so the
caller can register it with its process parameters. Images are 2-d float32 arrays in ADU.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from astropy.stats import SigmaClip, sigma_clip, sigma_clipped_stats

__all__ = [
    "ImageStats", "cold_pixel_map", "dome_flat", "hot_pixel_map", "imstat", "master_bias",
    "master_flat", "read_noise", "twilight_flat",
]


@dataclass(frozen=True)
class ImageStats:
    mean: float
    median: float
    stdev: float
    min: float
    max: float

    def as_dict(self) -> dict[str, float]:
        return {"mean": self.mean, "median": self.median, "stdev": self.stdev,
                "min": self.min, "max": self.max}


def imstat(image: np.ndarray, mask: np.ndarray | None = None,
           sample: int = 100_000) -> ImageStats:
    """Sigma-clipped statistics (3 sigma): what a person means by 'the level' and 'the rms'.

    The clipping bounds come from astropy's SigmaClip on an even sample of at most
    ``sample`` pixels (its iterations over a whole frame cost more than the reduction);
    the statistics are then taken over every pixel within them."""
    data = (image if mask is None else image[~mask]).ravel()
    data = data[np.isfinite(data)]
    if data.size == 0:
        raise ValueError("no pixels to measure: every one is masked or not finite")
    step = max(1, data.size // sample)
    _, lower, upper = SigmaClip(sigma=3.0, maxiters=5)(data[::step], return_bounds=True,
                                                        masked=False)
    kept = data[(data >= lower) & (data <= upper)]
    return ImageStats(float(np.mean(kept, dtype=np.float64)), float(np.median(kept)),
                      float(np.std(kept, dtype=np.float64)), float(np.min(data)),
                      float(np.max(data)))


def _check_stack(frames: Sequence[np.ndarray], least: int, what: str) -> np.ndarray:
    if len(frames) < least:
        raise ValueError(f"{what} needs at least {least} frames; got {len(frames)}")
    shapes = {f.shape for f in frames}
    if len(shapes) != 1:
        raise ValueError(f"{what}: frames differ in shape: {sorted(shapes)}")
    return np.stack([np.asarray(f, dtype=np.float32) for f in frames])


def read_noise(bias_a: np.ndarray, bias_b: np.ndarray) -> float:
    """Read noise (ADU) from the difference of two biases: structure and hot pixels cancel."""
    if bias_a.shape != bias_b.shape:
        raise ValueError(f"bias shapes differ: {bias_a.shape} and {bias_b.shape}")
    diff = np.asarray(bias_a, dtype=np.float64) - np.asarray(bias_b, dtype=np.float64)
    _, _, stdev = sigma_clipped_stats(diff, sigma=4.0, maxiters=5)
    return float(stdev / np.sqrt(2.0))


def master_bias(biases: Sequence[np.ndarray], sigma: float = 3.0) -> np.ndarray:
    """Sigma-clipped mean of the raw biases, pixel by pixel."""
    stack = _check_stack(biases, 2, "a master bias")
    clipped = sigma_clip(stack, sigma=sigma, axis=0, maxiters=3, masked=True)
    out: np.ndarray = np.ma.mean(clipped, axis=0).filled(np.nan).astype(np.float32)
    return out


def hot_pixel_map(bias: np.ndarray, noise: float, nsigma: float = 10.0) -> np.ndarray:
    """Pixels far above the bias level: they are bright whatever light falls on them.

    ``noise`` is the read noise of one frame; a pixel is hot above median + nsigma * noise
    (the master bias itself is less noisy, so this threshold is conservative)."""
    level = float(np.nanmedian(bias))
    return np.asarray(bias > level + nsigma * noise)


def _normalised_flats(raws: Sequence[np.ndarray], bias: np.ndarray,
                      hot: np.ndarray) -> np.ndarray:
    stack = _check_stack(raws, 2, "a flat") - bias[None, :, :]
    good = ~hot
    levels = np.array([np.median(f[good]) for f in stack])
    if np.any(levels <= 0):
        raise ValueError("a flat frame has no light above the bias")
    out: np.ndarray = stack / levels[:, None, None]
    return out


def dome_flat(raws: Sequence[np.ndarray], bias: np.ndarray, hot: np.ndarray) -> np.ndarray:
    """Bias-subtracted dome flats, each scaled to median 1, median-combined; hot pixels 1."""
    flat: np.ndarray = np.median(_normalised_flats(raws, bias, hot), axis=0)
    flat[hot] = 1.0
    return flat.astype(np.float32)


def twilight_flat(raws: Sequence[np.ndarray], bias: np.ndarray, hot: np.ndarray) -> np.ndarray:
    """Like the dome flat; the sky's own illumination, for the large-scale correction."""
    return dome_flat(raws, bias, hot)


def cold_pixel_map(flat: np.ndarray, threshold: float = 0.5) -> np.ndarray:
    """Pixels that answer light with less than ``threshold`` of the normal response."""
    return np.asarray(flat < threshold * float(np.median(flat)))


def _smooth(image: np.ndarray, blocks: int) -> np.ndarray:
    """Block-median smoothing over blocks x blocks cells, expanded back to the image size:
    the large scales only."""
    ny, nx = image.shape
    by, bx = max(1, min(blocks, ny)), max(1, min(blocks, nx))
    cells = np.full((by, bx), 1.0, dtype=np.float32)
    for j in range(by):
        for i in range(bx):
            y0, y1 = j * ny // by, (j + 1) * ny // by
            x0, x1 = i * nx // bx, (i + 1) * nx // bx
            cells[j, i] = np.median(image[y0:y1, x0:x1])
    ys = (np.arange(ny) * by // ny).clip(0, by - 1)
    xs = (np.arange(nx) * bx // nx).clip(0, bx - 1)
    out: np.ndarray = cells[np.ix_(ys, xs)]
    return out


def master_flat(dome: np.ndarray, twilight: np.ndarray, blocks: int = 8) -> np.ndarray:
    """The dome flat's pixel-to-pixel detail with the twilight's large-scale illumination."""
    if dome.shape != twilight.shape:
        raise ValueError(f"flat shapes differ: {dome.shape} and {twilight.shape}")
    ratio = np.where(dome > 0, twilight / np.where(dome > 0, dome, 1), 1.0)
    flat: np.ndarray = dome * _smooth(ratio, blocks)
    out: np.ndarray = (flat / np.median(flat)).astype(np.float32)
    return out
