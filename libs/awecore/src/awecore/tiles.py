"""Sky tiles: a fixed tiling of the sky that survey products (coadds) are made on.

Why a fixed tiling: a coadd is identified by its tile and filter (the ``tile`` dimension),
so the tiles must have stable names that any site computes alike, whatever exposures exist;
each tile has its own TAN projection centred on it (small distortion over a square degree,
north up), and tiles overlap their neighbours by a margin, as KiDS's do, so a source near a
border is whole on at least one coadd.

The scheme (one per tiling, :data:`TILINGS`): declination bands centred on multiples of
``size`` (``dec_c = j * size``, ``|dec_c| <= 90 - size/2``; the two polar bands reach the
poles); within a band, ``n = max(1, round(360 cos(dec_c) / size))`` tiles whose RA centres are
``i * 360 / n``. A tile's nominal cell is its band's declination range times the RA range
halfway to its neighbours: the cells partition the sky, so every position has exactly one
containing tile. Its *extended* area is the square of side ``size + 2 margin`` on its
tangent plane (margin: 5% of size unless told), which is what its image covers.

Names are ``f"{tiling}_{ra:.{decimals}f}_{dec:.{decimals}f}"`` (``KIDS_150.0_2.0``,
``MINI_10.00_-0.30``). The exact centre always comes from the band and index, never from the
rounded numbers of the name, so a name means the same grid everywhere; :func:`tile` refuses a
name that is not exactly some tile's.

``KIDS`` has 1-degree tiles; ``MINI`` has 0.1-degree tiles for small cameras, the simulator
and CI. The tiling a site uses by default is ``AWE_TILING`` (:func:`default_tiling`).
"""

from __future__ import annotations

import math
import os
import re
from dataclasses import dataclass, field
from functools import cached_property

import numpy as np
from astropy.wcs import WCS

from .errors import InvalidRequest

__all__ = ["TILINGS", "Tile", "Tiling", "default_tiling", "footprint", "tile", "tiles_at",
           "tiles_overlapping"]

_NAME = re.compile(r"^([A-Z][A-Z0-9]*)_(-?\d+\.\d+)_(-?\d+\.\d+)$")


@dataclass(frozen=True)
class Tiling:
    """A named tiling: tiles of ``size`` degrees, names with ``decimals`` decimals."""

    name: str
    size: float
    decimals: int
    #: margin on each side, as a fraction of size (the overlap of neighbours is twice it)
    margin_fraction: float = 0.05

    @cached_property
    def max_band(self) -> int:
        """The largest band index j with |j size| <= 90 - size/2."""
        return math.floor((90.0 - self.size / 2.0) / self.size + 1e-9)

    def band_dec(self, j: int) -> float:
        return round(j * self.size, 12)

    def band_count(self, j: int) -> int:
        """Tiles in band j: about 360 cos(dec) / size, at least one."""
        return max(1, round(360.0 * math.cos(math.radians(self.band_dec(j))) / self.size))

    def band_of(self, dec: float) -> int:
        j = math.floor(dec / self.size + 0.5)
        return max(-self.max_band, min(self.max_band, j))

    def index_of(self, j: int, ra: float) -> int:
        n = self.band_count(j)
        return math.floor((ra % 360.0) / (360.0 / n) + 0.5) % n

    def tile_at(self, ra: float, dec: float) -> Tile:
        """The tile whose nominal cell contains (ra, dec)."""
        j = self.band_of(dec)
        return self.tile_of(j, self.index_of(j, ra))

    def tile_of(self, j: int, i: int) -> Tile:
        """Tile i of band j (i taken modulo the band's count)."""
        n = self.band_count(j)
        ra = round((i % n) * 360.0 / n, 12)
        dec = self.band_dec(j)
        d = self.decimals
        name = f"{self.name}_{ra:.{d}f}_{dec:.{d}f}"
        return Tile(name, self.name, ra, dec, self.size, self.margin_fraction * self.size)


#: the tilings by name
TILINGS: dict[str, Tiling] = {
    "KIDS": Tiling("KIDS", size=1.0, decimals=1),
    "MINI": Tiling("MINI", size=0.1, decimals=2),
}


def default_tiling() -> str:
    """The site's tiling: ``AWE_TILING`` (default ``KIDS``); an unknown one is refused."""
    name = os.environ.get("AWE_TILING", "KIDS").strip().upper() or "KIDS"
    if name not in TILINGS:
        raise InvalidRequest(f"unknown tiling AWE_TILING={name!r}: known are "
                             f"{', '.join(sorted(TILINGS))}")
    return name


def _tiling(name: str | None) -> Tiling:
    key = default_tiling() if name is None else name.upper()
    if key not in TILINGS:
        raise InvalidRequest(f"unknown tiling {name!r}: known are {', '.join(sorted(TILINGS))}")
    return TILINGS[key]


@dataclass(frozen=True)
class Tile:
    """One sky tile: its name, tiling, centre (deg), nominal side and margin (deg)."""

    name: str
    tiling: str
    ra: float
    dec: float
    size: float
    margin: float = field(default=-1.0)

    def __post_init__(self) -> None:
        if self.margin < 0:  # default: 5% of the size
            object.__setattr__(self, "margin", 0.05 * self.size)

    @property
    def half_width(self) -> float:
        """Half the side of the extended square on the tangent plane (deg)."""
        return self.size / 2.0 + self.margin

    def shape(self, pixel_scale_arcsec: float) -> tuple[int, int]:
        """(ny, nx) of the tile's image at this scale: size + 2 margin on each axis."""
        if pixel_scale_arcsec <= 0:
            raise ValueError("a pixel scale must be positive")
        n = math.ceil(round(2.0 * self.half_width * 3600.0 / pixel_scale_arcsec, 6))
        return n, n

    def wcs(self, pixel_scale_arcsec: float) -> WCS:
        """The tile's TAN WCS: centred on the tile, north up, east left, RADESYS ICRS."""
        ny, nx = self.shape(pixel_scale_arcsec)
        w = WCS(naxis=2)
        w.wcs.ctype = ["RA---TAN", "DEC--TAN"]
        w.wcs.crval = [self.ra, self.dec]
        w.wcs.crpix = [(nx + 1) / 2.0, (ny + 1) / 2.0]
        scale = pixel_scale_arcsec / 3600.0
        w.wcs.cdelt = [-scale, scale]
        w.wcs.cunit = ["deg", "deg"]
        w.wcs.radesys = "ICRS"
        w.wcs.set()
        w.pixel_shape = (nx, ny)
        return w

    def contains(self, ra: float, dec: float) -> bool:
        """Whether (ra, dec) is in the tile's nominal cell (exactly one tile's)."""
        return TILINGS[self.tiling].tile_at(ra, dec).name == self.name

    def project(self, ra: np.ndarray | float,
                dec: np.ndarray | float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Gnomonic (TAN) coordinates (deg, x east, y north) about the tile centre, and
        whether each point is on the near hemisphere (only those project)."""
        a = np.radians(np.asarray(ra, dtype=float) - self.ra)
        d = np.radians(np.asarray(dec, dtype=float))
        d0 = math.radians(self.dec)
        cos_c = math.sin(d0) * np.sin(d) + math.cos(d0) * np.cos(d) * np.cos(a)
        front = cos_c > 1e-6
        safe = np.where(front, cos_c, 1.0)
        x = np.degrees(np.cos(d) * np.sin(a) / safe)
        y = np.degrees((math.cos(d0) * np.sin(d) - math.sin(d0) * np.cos(d) * np.cos(a))
                       / safe)
        return x, y, front

    def overlaps(self, ra_corners: np.ndarray | list[float],
                 dec_corners: np.ndarray | list[float]) -> bool:
        """Whether a footprint (e.g. a chip's four corners) touches the extended tile.

        The corners are projected on the tile's tangent plane (no RA wrap there) and their
        bounding box is tested against the tile's square; a footprint with a corner on the
        far hemisphere is far from the tile and does not touch it."""
        x, y, front = self.project(np.atleast_1d(ra_corners), np.atleast_1d(dec_corners))
        if x.size == 0 or not bool(np.all(front)):
            return False
        h = self.half_width
        return bool(x.min() <= h and x.max() >= -h and y.min() <= h and y.max() >= -h)


def tile(name: str) -> Tile:
    """The tile of this name; a name that is not exactly a tile's is refused."""
    expected = ("a tile name is <TILING>_<ra>_<dec> with the tiling's decimals, "
                "e.g. KIDS_150.0_2.0 or MINI_10.00_-0.30")
    m = _NAME.match(name) if isinstance(name, str) else None
    if m is None:
        raise InvalidRequest(f"bad tile name {name!r}: {expected}")
    tiling_name, ra_text, dec_text = m.groups()
    if tiling_name not in TILINGS:
        raise InvalidRequest(f"bad tile name {name!r}: unknown tiling {tiling_name!r} "
                             f"(known: {', '.join(sorted(TILINGS))})")
    tiling = TILINGS[tiling_name]
    ra, dec = float(ra_text), float(dec_text)
    j = round(dec / tiling.size)
    if abs(j) > tiling.max_band or not 0.0 <= ra < 360.0:
        raise InvalidRequest(f"bad tile name {name!r}: no such tile; {expected}")
    n = tiling.band_count(j)
    found = tiling.tile_of(j, round(ra / (360.0 / n)) % n)
    if found.name != name:
        raise InvalidRequest(f"bad tile name {name!r}: no such tile (nearest is "
                             f"{found.name}); {expected}")
    return found


def tiles_overlapping(ra_corners: np.ndarray | list[float],
                      dec_corners: np.ndarray | list[float],
                      tiling: str | None = None) -> list[Tile]:
    """The tiles whose extended area a footprint touches (bounding boxes on each tile's
    tangent plane), in band then RA order."""
    tl = _tiling(tiling)
    ra = np.atleast_1d(np.asarray(ra_corners, dtype=float)) % 360.0
    dec = np.atleast_1d(np.asarray(dec_corners, dtype=float))
    if ra.size == 0 or ra.size != dec.size:
        raise ValueError("a footprint needs as many RAs as Decs, at least one")
    # a tile's extended square reaches sqrt(2) half-widths from its centre
    reach = math.sqrt(2.0) * (tl.size / 2.0 + tl.margin_fraction * tl.size) + 1e-6
    j_lo = tl.band_of(float(dec.min()) - reach - tl.size / 2.0)
    j_hi = tl.band_of(float(dec.max()) + reach + tl.size / 2.0)
    # RAs unwrapped about the first corner: a footprint across RA 0 stays one interval
    offsets = (ra - ra[0] + 180.0) % 360.0 - 180.0
    span = float(offsets.max() - offsets.min())
    found: list[Tile] = []
    for j in range(j_lo, j_hi + 1):
        n = tl.band_count(j)
        width = 360.0 / n
        edge = max(abs(tl.band_dec(j)) + tl.size / 2.0 + reach, float(np.abs(dec).max()))
        if edge >= 89.0 or span > 180.0:
            indices = range(n)
        else:
            pad = width + reach / math.cos(math.radians(edge))
            lo = ra[0] + float(offsets.min()) - pad
            hi = ra[0] + float(offsets.max()) + pad
            first, last = math.floor(lo / width), math.ceil(hi / width)
            indices = range(first, last + 1) if last - first < n else range(n)
        seen: set[int] = set()
        for i in indices:
            k = i % n
            if k in seen:
                continue
            seen.add(k)
            candidate = tl.tile_of(j, k)
            if candidate.overlaps(ra, dec):
                found.append(candidate)
    return found


def tiles_at(ra: float, dec: float, tiling: str | None = None) -> list[Tile]:
    """The tiles whose extended area covers (ra, dec): the one whose nominal cell contains
    it first (always listed, even where a polar cell pokes out of its square), then the
    overlapping neighbours."""
    tl = _tiling(tiling)
    if not -90.0 <= dec <= 90.0:
        raise InvalidRequest(f"declination {dec} is outside [-90, 90]")
    home = tl.tile_at(ra, dec)
    others = [t for t in tiles_overlapping([ra], [dec], tl.name) if t.name != home.name]
    return [home, *others]


def footprint(wcs: WCS, cols: slice, rows: slice) -> str | None:
    """The corners of an image's pixels ``[rows, cols]`` on the sky by ``wcs``, as "ra
    dec;ra dec;ra dec;ra dec" (degrees): a raw chip's light-sensitive part (ingest), a
    coadd's grid (its recipe). What finds the tiles a chip touches, and an image's region
    in the Virtual Observatory, without reading pixels. None if a corner has no position."""
    x = np.array([cols.start, cols.stop - 1, cols.stop - 1, cols.start], dtype=float)
    y = np.array([rows.start, rows.start, rows.stop - 1, rows.stop - 1], dtype=float)
    ra, dec = wcs.wcs_pix2world(x, y, 0)
    if not (np.all(np.isfinite(ra)) and np.all(np.isfinite(dec))):
        return None
    return ";".join(f"{r % 360:.6f} {d:.6f}" for r, d in zip(ra, dec, strict=True))
