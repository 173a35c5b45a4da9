"""Regridding and coadding, checked against the truth of a synthetic dithered star field:
noise down by sqrt(N), cosmic rays and a satellite trail gone, fluxes and positions kept."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pytest
from astropy.coordinates import SkyCoord
from astropy.wcs import WCS
from scipy.ndimage import binary_dilation
from scipy.special import erf

from awecore.pipelines import Coadd, Regridded, coadd, extract_sources, regrid
from awecore.pipelines._coadd import coadd_noise
from awecore.pipelines._regrid import inverse_variance_weight
from awecore.tiles import TILINGS, Tile

sep = pytest.importorskip("sep")

TILE_SCALE = 0.25  # arcsec per tile pixel
# arcsec per chip pixel: the tile's pixels are a little smaller (as KiDS's 0.21" -> 0.2").
# Bilinear interpolation between scales far apart aliases: a bright star's summed flux
# then varies by a few 0.1% with its sub-pixel phase (use method="adaptive" there)
CHIP_SCALE = 0.26
CHIP_SHAPE = (600, 680)  # (ny, nx)
FWHM = 1.0  # arcsec
GAIN = 2.0  # e-/ADU
SKY = 200.0  # ADU
READ_NOISE = 5.0  # ADU
N_EXPOSURES = 5


def chip_wcs(ra: float, dec: float, rotation_deg: float, scale_arcsec: float,
             shape: tuple[int, int]) -> WCS:
    """A chip's TAN WCS: centred on (ra, dec), rotated, east left."""
    w = WCS(naxis=2)
    w.wcs.ctype = ["RA---TAN", "DEC--TAN"]
    w.wcs.crval = [ra, dec]
    w.wcs.crpix = [(shape[1] + 1) / 2, (shape[0] + 1) / 2]
    t = np.radians(rotation_deg)
    s = scale_arcsec / 3600.0
    w.wcs.cd = [[-s * np.cos(t), s * np.sin(t)], [s * np.sin(t), s * np.cos(t)]]
    w.wcs.radesys = "ICRS"
    w.pixel_shape = (shape[1], shape[0])
    return w


def render(shape: tuple[int, int], x: np.ndarray, y: np.ndarray, flux: np.ndarray,
           sigma_px: float) -> np.ndarray:
    """Stars as Gaussians integrated over each pixel (pixel i spans i-0.5..i+0.5)."""
    out = np.zeros(shape)
    half = int(np.ceil(6 * sigma_px)) + 1
    root2s = np.sqrt(2) * sigma_px
    for xc, yc, f in zip(x, y, flux, strict=True):
        ix, iy = round(xc), round(yc)
        xs = np.arange(max(ix - half, 0), min(ix + half + 1, shape[1]))
        ys = np.arange(max(iy - half, 0), min(iy + half + 1, shape[0]))
        if xs.size == 0 or ys.size == 0:
            continue
        px = 0.5 * (erf((xs + 0.5 - xc) / root2s) - erf((xs - 0.5 - xc) / root2s))
        py = 0.5 * (erf((ys + 0.5 - yc) / root2s) - erf((ys - 0.5 - yc) / root2s))
        out[ys[0]:ys[-1] + 1, xs[0]:xs[-1] + 1] += f * np.outer(py, px)
    return out


@dataclass
class Field:
    tile: Tile
    tile_wcs: WCS
    shape: tuple[int, int]
    ra: np.ndarray
    dec: np.ndarray
    flux: np.ndarray
    clean: list[Regridded]
    dirty: list[Regridded]
    stack_clean: Coadd
    stack_dirty: Coadd
    #: without the allowance for seeing (clip_ampfrac=0): one seeing in every exposure
    stack_strict: Coadd
    #: tile pixels (y, x) hit by cosmic rays or the trail in some exposure
    hit: tuple[np.ndarray, np.ndarray]
    sigma: float  # the noise of a chip pixel, ADU


@pytest.fixture(scope="module")
def field() -> Field:
    rng = np.random.default_rng(12)
    t = TILINGS["MINI"].tile_at(150.02, 2.03)
    tile_wcs = t.wcs(TILE_SCALE)
    shape = t.shape(TILE_SCALE)
    # stars within the chips' common area, not too close to one another
    n_stars = 70
    xi = rng.uniform(-70, 70, n_stars * 3) / 3600
    eta = rng.uniform(-60, 60, n_stars * 3) / 3600
    keep: list[int] = []
    for k in range(xi.size):
        if all(np.hypot(xi[k] - xi[j], eta[k] - eta[j]) * 3600 > 8 for j in keep):
            keep.append(k)
        if len(keep) == n_stars:
            break
    centre = SkyCoord(t.ra, t.dec, unit="deg")
    stars = centre.spherical_offsets_by(xi[keep] * 3600 * u_arcsec, eta[keep] * 3600 * u_arcsec)
    ra, dec = stars.ra.deg, stars.dec.deg
    flux = 10 ** rng.uniform(np.log10(3e3), np.log10(3e5), len(keep))  # ADU per exposure
    sigma_px = FWHM / 2.3548 / CHIP_SCALE
    sigma = float(np.sqrt(SKY / GAIN + READ_NOISE**2))
    clean: list[Regridded] = []
    dirty: list[Regridded] = []
    hit_y: list[np.ndarray] = []
    hit_x: list[np.ndarray] = []
    for e in range(N_EXPOSURES):
        dra, ddec = rng.uniform(-12, 12, 2) / 3600
        w = chip_wcs(t.ra + dra, t.dec + ddec, rng.uniform(-0.3, 0.3), CHIP_SCALE,
                     CHIP_SHAPE)
        x, y = w.world_to_pixel_values(ra, dec)
        model = SKY + render(CHIP_SHAPE, x, y, flux, sigma_px)
        noise = rng.normal(size=CHIP_SHAPE) * np.sqrt(model / GAIN + READ_NOISE**2)
        image = model + noise
        weight = np.full(CHIP_SHAPE, 1.0)
        extra = np.zeros(CHIP_SHAPE)
        # cosmic rays: single hot pixels and short tracks
        for _ in range(40):
            cy, cx = rng.integers(5, CHIP_SHAPE[0] - 5), rng.integers(5, CHIP_SHAPE[1] - 5)
            length = int(rng.integers(1, 4))
            dx, dy = rng.choice([-1, 0, 1], 2)
            amp = rng.uniform(300, 5000)
            for step in range(length):
                extra[cy + step * dy, cx + step * dx] += amp
        if e == 3:  # a satellite trail across the whole chip
            yy, xx = np.mgrid[0:CHIP_SHAPE[0], 0:CHIP_SHAPE[1]]
            distance = (0.35 * xx - yy + 150) / np.hypot(0.35, 1)
            extra += 400 * np.exp(-0.5 * (distance / 1.2) ** 2)
        if e == 0:  # a bad column with a wild value: weight 0, must not leak
            image[:, 300] = 60000.0
            weight[:, 300] = 0.0
        ivar = inverse_variance_weight(image, weight)
        clean.append(regrid(image, ivar, w, tile_wcs, shape, gain=GAIN))
        dirty.append(regrid(image + extra, ivar, w, tile_wcs, shape, gain=GAIN))
        ey, ex = np.nonzero(extra > 3 * sigma)
        ra_h, dec_h = w.pixel_to_world_values(ex, ey)
        tx, ty = tile_wcs.world_to_pixel_values(ra_h, dec_h)
        hit_x.append(np.rint(tx).astype(int))
        hit_y.append(np.rint(ty).astype(int))
    return Field(t, tile_wcs, shape, ra, dec, flux, clean, dirty,
                 coadd(clean, shape), coadd(dirty, shape, chunk_rows=200),
                 coadd(dirty, shape, clip_ampfrac=0.0),
                 (np.concatenate(hit_y), np.concatenate(hit_x)), sigma)


from astropy import units as u  # noqa: E402

u_arcsec = u.arcsec


def star_free(f: Field, radius_arcsec: float = 6.0) -> np.ndarray:
    """Tile pixels further than radius from every star."""
    ny, nx = f.shape
    mask = np.ones((ny, nx), dtype=bool)
    x, y = f.tile_wcs.world_to_pixel_values(f.ra, f.dec)
    r = radius_arcsec / TILE_SCALE
    yy, xx = np.ogrid[0:ny, 0:nx]
    for xc, yc in zip(x, y, strict=True):
        ys = slice(max(int(yc - r), 0), int(yc + r) + 2)
        xs = slice(max(int(xc - r), 0), int(xc + r) + 2)
        mask[ys, xs] &= (yy[ys] - yc) ** 2 + (xx[:, xs] - xc) ** 2 > r**2
    return mask


def test_counts_and_weights_in_the_common_area(field: Field) -> None:
    s = field.stack_clean
    assert s.count.dtype == np.uint16
    assert s.count.max() == N_EXPOSURES
    common = s.count == N_EXPOSURES
    assert common.sum() > 0.5 * CHIP_SHAPE[0] * CHIP_SHAPE[1] * (CHIP_SCALE / TILE_SCALE) ** 2
    # the weight is the sum of the exposures' weights, where all of them are kept
    total = np.zeros(field.shape)
    for r in field.clean:
        total[r.slices] += r.weight
    assert np.allclose(s.weight[common], total[common], rtol=1e-5)
    # outside every chip: nothing
    assert s.count[0, 0] == 0 and s.weight[0, 0] == 0 and s.image[0, 0] == 0
    # the bad column of exposure 0 is one exposure short and did not leak its 60000
    bad = (field.clean[0].weight == 0) & (field.clean[0].image == 0)
    inside = np.zeros(field.shape, dtype=bool)
    inside[field.clean[0].slices] = bad
    column = inside & (s.count == N_EXPOSURES - 1)
    assert column.sum() > 400
    assert np.abs(s.image[column & star_free(field)]).max() < 10 * field.sigma


def test_background_noise_goes_down_as_sqrt_n(field: Field) -> None:
    common = (field.stack_clean.count == N_EXPOSURES) & star_free(field)
    singles = [float(np.std(r_img)) for r_img in
               (_on_tile(r, field.shape)[common] for r in field.clean)]
    single = float(np.median(singles))
    stacked = float(np.std(field.stack_clean.image[common]))
    expected = single / np.sqrt(N_EXPOSURES)
    assert stacked == pytest.approx(expected, rel=0.10), (single, stacked)
    assert coadd_noise(field.stack_clean.image, field.stack_clean.weight) < single


def _on_tile(r: Regridded, shape: tuple[int, int]) -> np.ndarray:
    out = np.zeros(shape, dtype=np.float32)
    out[r.slices] = r.image
    return out


def test_cosmic_rays_and_the_trail_are_gone(field: Field) -> None:
    clean, dirty = field.stack_clean, field.stack_dirty
    common = clean.count == N_EXPOSURES
    noise = float(np.std(clean.image[common & star_free(field)]))
    hy, hx = field.hit
    ok = (hy >= 0) & (hy < field.shape[0]) & (hx >= 0) & (hx < field.shape[1])
    hit = np.zeros(field.shape, dtype=bool)
    hit[hy[ok], hx[ok]] = True
    hit = binary_dilation(hit, np.ones((3, 3), dtype=bool))  # interpolation spreads them
    # where one exposure alone covers a pixel nothing can tell a cosmic ray from a star
    seen = hit & (clean.count >= 2)
    assert seen.sum() > 0.8 * hit.sum()
    assert seen.sum() > 1000  # the hits are really there, inside the tile
    # in the exposures they are tens to thousands of sigma; on the coadd, nothing
    exposure_max = max(float(np.max(_on_tile(r, field.shape)[seen])) for r in field.dirty)
    assert exposure_max > 100 * noise
    # with one seeing in every exposure nothing needs sparing: gone everywhere, to within
    # the coadd's noise there (on a star, its photon noise too: dropping one exposure of a
    # star's core changes the mean by that much)
    poisson = field.dirty[0].poisson * np.maximum(clean.image, 0) / clean.count.clip(1)
    local = np.sqrt(noise**2 * N_EXPOSURES / clean.count.clip(1) + poisson)[seen]
    residual = np.abs(field.stack_strict.image - clean.image)[seen]
    assert (residual / local).max() < 5, (residual / local).max()
    # by default (SWarp's allowance for seeing) gone everywhere but on bright stars' cores
    faint = seen & star_free(field, 2.0)
    residual = np.abs(dirty.image - clean.image)[faint]
    assert (residual / local[faint[seen]]).max() < 5, (residual / local[faint[seen]]).max()
    assert dirty.n_rejected > clean.n_rejected + 300


@pytest.mark.parametrize("which", ["stack_dirty", "stack_strict"])
def test_stars_keep_their_flux_and_position(field: Field, which: str) -> None:
    s = getattr(field, which)
    found = extract_sources(s.image, s.weight, threshold=5.0)
    measured = field.tile_wcs.pixel_to_world(found["x"], found["y"])
    truth = SkyCoord(field.ra, field.dec, unit="deg")
    idx, sep2d, _ = truth.match_to_catalog_sky(measured)
    matched = sep2d.arcsec < 1.0
    assert matched.sum() >= 0.9 * len(field.ra)
    # windowed centroids on the coadd, through the tile's WCS
    x0 = np.asarray(found["x"])[idx[matched]]
    y0 = np.asarray(found["y"])[idx[matched]]
    image = np.ascontiguousarray(s.image, dtype=np.float64)
    bad = np.ascontiguousarray(s.weight <= 0)
    sig = FWHM / 2.3548 / TILE_SCALE
    xw, yw, _flag = sep.winpos(image, x0, y0, sig, mask=bad)
    sky = field.tile_wcs.pixel_to_world(xw, yw)
    offsets = sky.separation(truth[matched]).arcsec
    rms = float(np.sqrt(np.mean(offsets**2)))
    assert rms < 0.03, rms
    # aperture photometry with the coadd's own errors: weight map and the stack's gain
    err = np.where(s.weight > 0, 1.0 / np.sqrt(np.where(s.weight > 0, s.weight, 1.0)), 0.0)
    radius = 2.5 / TILE_SCALE
    flux, fluxerr, flag = sep.sum_circle(image, xw, yw, radius, err=err, mask=bad,
                                         gain=GAIN * N_EXPOSURES)
    true_flux = field.flux[matched]
    good = (flag == 0) & (s.count[np.rint(yw).astype(int), np.rint(xw).astype(int)]
                          == N_EXPOSURES)
    assert good.sum() >= 30
    dmag = -2.5 * np.log10(flux[good] / true_flux[good])
    assert abs(float(np.median(dmag))) < 0.02, np.median(dmag)
    pull = (flux[good] - true_flux[good]) / fluxerr[good]
    width = float(1.4826 * np.median(np.abs(pull - np.median(pull))))
    assert 0.7 < width < 1.3, width


def test_regrid_keeps_flux_across_pixel_scales_for_every_method() -> None:
    t = TILINGS["MINI"].tile_at(30.0, -5.0)
    tile_wcs, shape = t.wcs(0.2), t.shape(0.2)
    chip_shape = (120, 140)
    w = chip_wcs(t.ra, t.dec, 10.0, 0.35, chip_shape)
    x, y = w.world_to_pixel_values([t.ra], [t.dec + 3 / 3600])
    image = render(chip_shape, np.asarray(x), np.asarray(y), np.array([1e4]), 1.2)
    weight = np.ones(chip_shape)
    for method in ("interp", "adaptive", "exact"):
        r = regrid(image, weight, w, tile_wcs, shape, method=method,
                   subtract_background=False)
        assert r.method == method
        assert r.pixel_area_ratio == pytest.approx((0.2 / 0.35) ** 2, rel=1e-6)
        assert float(r.image.sum()) == pytest.approx(1e4, rel=0.01), method
        # the cutout's WCS puts the star where it peaks
        cut = r.wcs_of(tile_wcs)
        px, py = cut.world_to_pixel_values(t.ra, t.dec + 3 / 3600)
        peak_y, peak_x = np.unravel_index(np.argmax(r.image), r.shape)
        assert abs(peak_x - px) <= 1 and abs(peak_y - py) <= 1
        assert cut.pixel_shape == (r.shape[1], r.shape[0])
    # a common zeropoint: image times the scale, weight over its square
    r1 = regrid(image, weight, w, tile_wcs, shape, subtract_background=False)
    r2 = regrid(image, weight, w, tile_wcs, shape, flux_scale=2.0, subtract_background=False)
    assert np.allclose(r2.image, 2 * r1.image, rtol=1e-5, atol=1e-6)
    assert np.allclose(r2.weight, r1.weight / 4, rtol=1e-5)


def test_bad_pixels_do_not_leak_and_chips_off_the_tile_are_empty() -> None:
    t = TILINGS["MINI"].tile_at(30.0, -5.0)
    tile_wcs, shape = t.wcs(0.2), t.shape(0.2)
    chip_shape = (100, 100)
    w = chip_wcs(t.ra, t.dec, 3.0, 0.3, chip_shape)
    rng = np.random.default_rng(3)
    image = rng.normal(0, 1, chip_shape)
    weight = np.ones(chip_shape)
    image[50, 50] = 1e6
    weight[50, 50] = 0.0
    image[20, 30] = np.nan  # a NaN with weight 1 is bad too
    r = regrid(image, weight, w, tile_wcs, shape, subtract_background=False)
    assert np.isfinite(r.image).all() and np.isfinite(r.weight).all()
    assert np.abs(r.image[r.weight > 0]).max() < 10
    hx, hy = r.wcs_of(tile_wcs).world_to_pixel_values(*w.pixel_to_world_values(50, 50))
    assert r.weight[round(float(hy)), round(float(hx))] == 0
    # the pixels around the chip inside the cutout: image 0, weight 0
    assert r.weight[0, :].max() == 0 and r.image[0, :].max() == 0
    far = chip_wcs(t.ra + 1.0, t.dec, 0.0, 0.3, chip_shape)
    empty = regrid(image, weight, far, tile_wcs, shape)
    assert empty.empty and empty.shape == (0, 0)
    stacked = coadd([empty, r], shape)
    assert stacked.count.max() == 1
    with pytest.raises(ValueError, match="method"):
        regrid(image, weight, w, tile_wcs, shape, method="lanczos")
    with pytest.raises(ValueError, match="flux_scale"):
        regrid(image, weight, w, tile_wcs, shape, flux_scale=0.0)


def _frame(values: np.ndarray, x0: int = 0, y0: int = 0, w: float = 1.0) -> Regridded:
    return Regridded(values.astype(np.float32), np.full(values.shape, w, np.float32),
                     x0, y0, "interp", 1.0)


def test_two_exposures_reject_the_higher_and_one_is_kept() -> None:
    a = np.zeros((5, 5))
    b = np.zeros((5, 5))
    b[0, 0] = 100.0  # a cosmic ray in b: the higher, rejected
    a[3, 3] = 3.0  # within the noise of both: both kept
    out = coadd([_frame(a), _frame(b)], (6, 6))
    assert out.image[0, 0] == 0.0 and out.count[0, 0] == 1
    assert out.image[3, 3] == pytest.approx(1.5) and out.count[3, 3] == 2
    assert out.weight[3, 3] == 2.0 and out.weight[0, 0] == 1.0
    # the rejection grows by one pixel in b (interpolation spreads a cosmic ray), no further
    assert out.count[1, 1] == 1 and out.count[0, 2] == 2
    # a pixel covered by one frame only keeps its value, whatever it is
    c = np.full((2, 2), 50.0)
    out = coadd([_frame(a), _frame(c, x0=4, y0=4)], (6, 6))
    assert out.image[5, 5] == 50.0 and out.count[5, 5] == 1 and out.count[3, 3] == 1
    # inverse-variance weights: a frame twice as good counts twice
    out = coadd([_frame(np.full((2, 2), 1.0), w=2.0), _frame(np.full((2, 2), 4.0))], (2, 2),
                clip_sigma=10)
    assert out.image[0, 0] == pytest.approx(2.0)


def test_chunks_and_layers_do_not_change_the_result() -> None:
    rng = np.random.default_rng(5)
    frames = [_frame(rng.normal(0, 1, (30, 40)), x0=int(rng.integers(0, 20)),
                     y0=int(rng.integers(0, 20))) for _ in range(7)]
    frames[2].image[10, 10] = 1000.0
    one = coadd(frames, (60, 70), chunk_rows=1000)
    many = coadd(frames, (60, 70), chunk_rows=7)
    assert np.array_equal(one.image, many.image)
    assert np.array_equal(one.count, many.count)
    assert one.n_rejected == many.n_rejected >= 1
    assert one.image.max() < 10
