"""Coadding: the inverse-variance weighted mean of the regridded exposures of a tile, with
outlier rejection across exposures (a CoaddedRegriddedFrame's pixels).

Why reject across exposures: a cosmic ray or a satellite trail is in one exposure only, at a
place where the others see sky; a single frame cannot tell a cosmic ray from a star, a stack
can. At each pixel the values of the exposures that cover it are compared with their median:

- with 3 or more, a value further than ``clip_sigma`` times its own noise (the sky's,
  ``1/sqrt(weight)``, with the source's photon noise when the frame's gain is known) plus
  ``clip_ampfrac`` times the median's size is rejected. The second term (SWarp's
  ``CLIP_AMPFRAC``, 0.3 there and here) spares the cores of bright stars, which differ
  between exposures by much more than their noise when the seeing differs; the price is
  that a cosmic ray or a trail on a bright star's core can stay (set it to 0 for exposures
  of one seeing);
- with 2, their difference is tested against the noise of both, and when they disagree the
  higher is rejected: cosmic rays and trails only add light;
- with 1, the value is kept: nothing to compare with.

A rejected value's neighbours in the same exposure (3 x 3) are rejected too, where another
exposure covers them: interpolation spreads a cosmic ray over a few tile pixels, and a
trail's wings are below any per-pixel threshold.

Memory: a 1-degree tile at 0.2" is 4e8 pixels. The work is done in chunks of rows, and
within a chunk the exposures' cutouts are packed into *layers* of non-overlapping cutouts
(the chips of one exposure never overlap), so a chunk holds about as many rows as the
deepest pixel has exposures, not one full array per chip.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from ._regrid import Regridded

__all__ = ["Coadd", "coadd", "coadd_noise"]


@dataclass
class Coadd:
    """The stacked tile: ``image`` (weighted mean of the kept values, 0 where none),
    ``weight`` (the sum of the kept weights: the mean's inverse variance) and ``count``
    (how many exposures were kept at each pixel)."""

    image: np.ndarray
    weight: np.ndarray
    count: np.ndarray
    #: how many values were rejected in all (cosmic rays, trails, ...)
    n_rejected: int = 0


def coadd(frames: Sequence[Regridded], tile_shape: tuple[int, int], *,
          clip_sigma: float = 5.0, clip_ampfrac: float = 0.3,
          chunk_rows: int = 512) -> Coadd:
    """Stack regridded exposures of one tile: inverse-variance weighted mean with outliers
    rejected across exposures (see the module's docstring for the rule)."""
    if clip_sigma <= 0 or chunk_rows <= 0 or clip_ampfrac < 0:
        raise ValueError("clip_sigma and chunk_rows must be positive, clip_ampfrac >= 0")
    ny, nx = int(tile_shape[0]), int(tile_shape[1])
    image = np.zeros((ny, nx), dtype=np.float32)
    weight = np.zeros((ny, nx), dtype=np.float32)
    count = np.zeros((ny, nx), dtype=np.uint16)
    used = [f for f in frames if not f.empty]
    for f in used:
        fy, fx = f.shape
        if f.x0 < 0 or f.y0 < 0 or f.x0 + fx > nx or f.y0 + fy > ny:
            raise ValueError(f"a regridded cutout at ({f.x0}, {f.y0}) of shape {f.shape} "
                             f"lies outside the tile {tile_shape}")
    rejected = 0
    for r0 in range(0, ny, chunk_rows):
        r1 = min(ny, r0 + chunk_rows)
        # one row more on each side: the growth of rejections crosses chunk borders
        h0, h1 = max(0, r0 - 1), min(ny, r1 + 1)
        values, weights, poisson = _layers(used, h0, h1, nx)
        if values is None or weights is None:
            continue
        keep = _keep(values, weights, poisson, clip_sigma, clip_ampfrac)
        inner = slice(r0 - h0, r0 - h0 + (r1 - r0))
        values, weights, keep = values[:, inner], weights[:, inner], keep[:, inner]
        rejected += int(np.count_nonzero((weights > 0) & ~keep))
        w = np.where(keep, weights, np.float32(0.0))
        total = w.sum(axis=0, dtype=np.float64)
        summed = (w * values).sum(axis=0, dtype=np.float64)
        with np.errstate(invalid="ignore", divide="ignore"):
            image[r0:r1] = np.where(total > 0, summed / np.where(total > 0, total, 1.0), 0.0)
        weight[r0:r1] = total
        count[r0:r1] = keep.sum(axis=0)
    return Coadd(image, weight, count, rejected)


def coadd_noise(image: np.ndarray, weight: np.ndarray) -> float:
    """The coadd's background noise per pixel measured on the image (a robust rms of the
    pixels with weight > 0): for depth figures beside a single exposure's."""
    from astropy.stats import sigma_clipped_stats

    good = np.asarray(image)[np.asarray(weight) > 0]
    if good.size == 0:
        return float("nan")
    if good.size > 1_000_000:  # a million pixels measure the rms well enough
        good = good[::good.size // 1_000_000]
    return float(sigma_clipped_stats(good, sigma=3.0, maxiters=10)[2])


def _layers(frames: Sequence[Regridded], r0: int, r1: int,
            nx: int) -> tuple[np.ndarray | None, np.ndarray | None, np.ndarray | None]:
    """The frames' rows r0:r1 packed into layers of non-overlapping data (weight > 0):
    arrays (layers, rows, nx) of values, weights (0 where a layer has no data) and, when
    some frame knows its gain, the photon-noise factors."""
    rows = r1 - r0
    values: list[np.ndarray] = []
    weights: list[np.ndarray] = []
    poissons: list[np.ndarray] = []
    any_poisson = any(f.poisson > 0 for f in frames)
    for f in frames:
        fy, fx = f.shape
        a, b = max(r0, f.y0), min(r1, f.y0 + fy)
        if a >= b:
            continue
        w = f.weight[a - f.y0:b - f.y0]
        has = w > 0
        if not has.any():
            continue
        v = f.image[a - f.y0:b - f.y0]
        ys, xs = slice(a - r0, b - r0), slice(f.x0, f.x0 + fx)
        free = [i for i, layer_w in enumerate(weights)
                if not np.any((layer_w[ys, xs] > 0) & has)]
        layer = free[0] if free else len(weights)
        if not free:
            values.append(np.zeros((rows, nx), dtype=np.float32))
            weights.append(np.zeros((rows, nx), dtype=np.float32))
            if any_poisson:
                poissons.append(np.zeros((rows, nx), dtype=np.float32))
        np.copyto(values[layer][ys, xs], v, where=has)
        np.copyto(weights[layer][ys, xs], w, where=has)
        if any_poisson:
            np.copyto(poissons[layer][ys, xs], np.float32(f.poisson), where=has)
    if not values:
        return None, None, None
    return np.stack(values), np.stack(weights), np.stack(poissons) if any_poisson else None


def _keep(values: np.ndarray, weights: np.ndarray, poisson: np.ndarray | None,
          clip_sigma: float, clip_ampfrac: float) -> np.ndarray:
    """Which values to keep (layers, rows, nx): see the module's docstring."""
    present = weights > 0
    n = present.sum(axis=0)
    if values.shape[0] == 1:
        return present
    # the median of the present values: absent ones sort last as +inf
    ordered = np.sort(np.where(present, values, np.float32(np.inf)), axis=0)
    lo = np.take_along_axis(ordered, np.maximum(n - 1, 0)[None] // 2, axis=0)[0]
    hi = np.take_along_axis(ordered, (n // 2)[None], axis=0)[0]
    with np.errstate(invalid="ignore"):
        median = np.where(n > 0, 0.5 * (lo + hi), 0.0).astype(np.float32)
    variance = 1.0 / np.where(present, weights, 1.0)
    if poisson is not None:
        variance += poisson * np.maximum(median, 0.0)
    sigma = np.where(present, np.sqrt(variance), np.inf)
    allowance = clip_ampfrac * np.abs(median)
    keep = present & ~((np.abs(values - median) > clip_sigma * sigma + allowance) & (n >= 3))
    two = n == 2
    if two.any():
        # two values: the higher goes when their difference exceeds both noises together
        top = np.argmax(np.where(present, values, -np.inf), axis=0)
        high, low = ordered[1], ordered[0]
        noise = np.sqrt(np.where(present, sigma**2, 0.0).sum(axis=0))
        with np.errstate(invalid="ignore"):  # inf - inf where fewer than two: not used
            clash = two & (high - low > clip_sigma * noise + allowance)
        layer = np.arange(values.shape[0])[:, None, None]
        keep &= ~(clash[None] & (layer == top[None]))
    rejected = present & ~keep
    if rejected.any():
        from scipy.ndimage import binary_dilation

        # within each exposure only (no growth along the layer axis)
        grow = np.zeros((3, 3, 3), dtype=bool)
        grow[1] = True
        keep &= ~(binary_dilation(rejected, grow) & (n >= 2)[None])
    return np.asarray(keep, dtype=bool)
