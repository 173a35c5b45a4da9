"""What each product of the chain is made from, and how: the recipes of target processing.

A recipe names its inputs (raw frames of the night, the best calibration of a class for the
chip, filter and time, one product per raw frame of a kind, or the newest reference
catalogue that covers the frame) and a ``make`` that turns them into the product's pixels
and attributes with the pipelines. The planner resolves inputs; the maker loads what ``make``
asks for and runs it.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np
from astropy.io import fits
from astropy.table import Table
from astropy.wcs import WCS
from astropy.wcs.utils import proj_plane_pixel_scales

from .. import pipelines as p
from ..dimensions import DataId
from ..model import ObjectOut

if TYPE_CHECKING:
    from ._ports import CatalogReader

__all__ = ["RECIPES", "Frame", "Input", "Inputs", "Loader", "Made", "Recipe", "Selector",
           "saturation_of", "source_rows", "trimmed_header"]


#: finds the data IDs of a product's inputs from the product's own data ID, reading the
#: catalogue: how a recipe says "one reduced frame per exposure of this sky tile, of any
#: night and chip" without the planner knowing what a tile is
Selector = Callable[["CatalogReader", DataId], Awaitable[list[DataId]]]


@dataclass(frozen=True)
class Input:
    """A reference of the product and how the planner finds what it points at."""

    ref: str  # the reference name on the product
    cls: str
    raw: bool = False  # the night's raw frames of the class (a list)
    least: int = 1
    each: str | None = None  # one product of cls per raw frame of this class that night
    reference: bool = False  # the newest valid reference catalogue covering the position
    #: one product of cls per data ID the selector finds (a list): any selection by data ID
    select: Selector | None = field(default=None, compare=False)


@dataclass
class Made:
    image: np.ndarray | None
    attributes: dict[str, Any] = field(default_factory=dict)
    sources: dict[str, list[Any]] | None = None  # rows for the catalog's source table
    quality_flags: int = 0  # what automatic QC found (pipelines.QC)
    weight: np.ndarray | None = None  # stored beside the image
    #: FITS cards for the image's header (and the weight's): a WCS, units
    header: dict[str, Any] = field(default_factory=dict)
    #: more images in the product's file, by extension name (a coadd's COUNT map)
    extensions: dict[str, np.ndarray] = field(default_factory=dict)
    #: a table instead of (or beside) an image: columns by name, stored as extension TABLE
    table: dict[str, Any] | None = None


class Loader(Protocol):
    """Where inputs come from (the maker: catalog and storage, with caches)."""

    def record(self, oid: str) -> ObjectOut: ...

    def pixels(self, oid: str) -> np.ndarray: ...

    def hdus(self, name: str) -> fits.HDUList: ...


@dataclass
class Frame:
    """A reduced frame with what measuring it needs: weights, the raw frame's header
    (the telescope's WCS) and exposure (time, airmass, gain)."""

    image: np.ndarray
    weight: np.ndarray
    header: fits.Header
    exptime: float
    airmass: float
    gain: float


class Inputs:
    """A recipe's inputs by reference name; each is loaded when first asked for."""

    def __init__(self, refs: dict[str, str | list[str]], load: Loader,
                 filter: str | None = None, dims: dict[str, str] | None = None) -> None:
        self.refs = refs
        self.load = load
        self.filter = filter  # the product's filter, by name
        #: the product's dimensions beyond chip, filter, night and raw frame (its sky tile)
        self.dims = dims or {}

    def oid(self, ref: str) -> str:
        value = self.refs[ref]
        assert isinstance(value, str), f"{ref} is a list"
        return value

    def oids(self, ref: str) -> list[str]:
        value = self.refs[ref]
        return value if isinstance(value, list) else [value]

    def pixels(self, ref: str) -> np.ndarray:
        return self.load.pixels(self.oid(ref))

    def stack(self, ref: str) -> list[np.ndarray]:
        return [self.load.pixels(o) for o in self.oids(ref)]

    def record(self, ref: str) -> ObjectOut:
        return self.load.record(self.oid(ref))

    def frame(self, oid: str, header: bool = True) -> Frame:
        """A reduced frame with its weights and exposure; with ``header``, the raw frame's
        header too (its file is read for it: a recipe that has a WCS of its own skips it)."""
        reduced = self.load.record(oid)
        raw = self.load.record(str(reduced.refs["raw"]))
        weight = self.load.hdus(str(reduced.attributes["weight_filename"]))[0].data
        header_of = (trimmed_header(self.load.hdus(str(raw.filename))[0].header, raw)
                     if header else fits.Header())
        a = raw.attributes
        return Frame(self.load.pixels(oid), np.asarray(weight, dtype=np.float32), header_of,
                     float(a["exptime"]), float(a.get("airmass") or 1.0),
                     float(a.get("gain") or 1.0))

    def refcat(self, ref: str = "refcat", oid: str | None = None
               ) -> tuple[Table, dict[str, float]]:
        """A reference catalogue's stars (the input ``ref``, or the object ``oid``), and its
        extinction per filter (if it has any)."""
        record = self.load.record(oid) if oid else self.record(ref)
        hdul = self.load.hdus(str(record.filename))
        stars = Table(hdul["STARS"].data)
        extinction = ({str(f).strip(): float(k) for f, k in
                       zip(hdul["EXTINCTION"].data["FILTER"], hdul["EXTINCTION"].data["EXTINCTION"],
                           strict=True)} if "EXTINCTION" in hdul else {})
        return stars, extinction


def trimmed_header(header: fits.Header, raw: ObjectOut) -> fits.Header:
    """A raw frame's header for its trimmed pixels: the WCS reference pixel moved by the
    columns and rows cut off before the data section (a prescan)."""
    section = raw.attributes.get("data_section")
    if not section:
        return header
    rows, cols = p.parse_section(str(section))
    out = header.copy()
    if "CRPIX1" in out:
        out["CRPIX1"] = float(out["CRPIX1"]) - cols.start
    if "CRPIX2" in out:
        out["CRPIX2"] = float(out["CRPIX2"]) - rows.start
    return out


def saturation_of(raw: ObjectOut, level: float = p.SATURATION) -> float:
    """Where a raw frame saturates once its overscan level is subtracted."""
    return level - float(raw.attributes.get("overscan_level") or 0.0)


Maker = Callable[[Inputs, dict[str, Any]], Made]


@dataclass(frozen=True)
class Recipe:
    cls: str
    inputs: tuple[Input, ...]
    make: Maker
    needs_filter: bool = False
    params: dict[str, Any] = field(default_factory=dict)
    #: one product per raw science frame; this path leads from the product to it
    raw_path: tuple[str, ...] | None = None


def _stats(image: np.ndarray, mask: np.ndarray | None = None) -> dict[str, Any]:
    return {"imstat": p.imstat(image, mask).as_dict()}


def _read_noise(inp: Inputs, params: dict[str, Any]) -> Made:
    a, b = inp.stack("raw_bias_frames")[:2]
    return Made(None, {"read_noise": p.read_noise(a, b)})


def _bias(inp: Inputs, params: dict[str, Any]) -> Made:
    raws = inp.stack("raw_bias_frames")
    bias = p.master_bias(raws, sigma=params.get("sigma", 3.0))
    noise = float(inp.record("read_noise").attributes["read_noise"])
    return Made(bias, _stats(bias), quality_flags=int(p.qc_bias(bias, noise, len(raws))))


def _hot(inp: Inputs, params: dict[str, Any]) -> Made:
    bias = inp.pixels("bias")
    # the master bias's own clipped rms is the noise to beat (read noise / sqrt(frames))
    hot = p.hot_pixel_map(bias, p.imstat(bias).stdev, params.get("nsigma", 10.0))
    return Made(hot.astype(np.uint8), {"hot_pixels": int(hot.sum())},
                quality_flags=int(p.qc_pixel_map(hot)))


def _dome(inp: Inputs, params: dict[str, Any]) -> Made:
    raws, bias = inp.stack("raw_dome_flat_frames"), inp.pixels("bias")
    flat = p.dome_flat(raws, bias, inp.pixels("hot").astype(bool))
    level = float(np.median(raws[0] - bias))
    return Made(flat, _stats(flat), quality_flags=int(p.qc_flat(flat, level)))


def _twilight(inp: Inputs, params: dict[str, Any]) -> Made:
    flat = p.twilight_flat(inp.stack("raw_twilight_flat_frames"), inp.pixels("bias"),
                           inp.pixels("hot").astype(bool))
    return Made(flat, _stats(flat))


def _cold(inp: Inputs, params: dict[str, Any]) -> Made:
    cold = p.cold_pixel_map(inp.pixels("flat"), params.get("threshold", 0.5))
    return Made(cold.astype(np.uint8), {"cold_pixels": int(cold.sum())},
                quality_flags=int(p.qc_pixel_map(cold)))


def _master(inp: Inputs, params: dict[str, Any]) -> Made:
    flat = p.master_flat(inp.pixels("dome"), inp.pixels("twilight"))
    return Made(flat, _stats(flat))


def _reduced(inp: Inputs, params: dict[str, Any]) -> Made:
    raw = inp.pixels("raw")
    saturation = saturation_of(inp.record("raw"))
    image, weight = p.reduce_science(raw, inp.pixels("bias"), inp.pixels("flat"),
                                     inp.pixels("hot").astype(bool),
                                     inp.pixels("cold").astype(bool), saturation)
    return Made(image, _stats(image, weight <= 0), weight=weight,
                quality_flags=int(p.qc_reduced(raw, weight, saturation)))


def _near(stars: Table, wcs: WCS, shape: tuple[int, ...], margin: float = 50) -> Table:
    """The catalogue's stars on (or just off) a chip, by its header WCS."""
    x, y = wcs.world_to_pixel_values(np.asarray(stars["RA"]), np.asarray(stars["DEC"]))
    inside = ((x > -margin) & (x < shape[1] + margin) & (y > -margin)
              & (y < shape[0] + margin))
    return stars[inside]


def _astrometry(inp: Inputs, params: dict[str, Any]) -> Made:
    frame = inp.frame(inp.oid("reduced"))
    header_wcs = WCS(frame.header)
    stars, _ = inp.refcat()
    stars = _near(stars, header_wcs, frame.image.shape)
    sources = p.extract_sources(frame.image, frame.weight, threshold=params["threshold"],
                                gain=frame.gain)
    solution = p.fit_astrometry(sources, header_wcs, np.asarray(stars["RA"]),
                                np.asarray(stars["DEC"]),
                                radius_arcsec=params["search_radius"],
                                min_snr=params["min_snr"])
    centre = np.array(frame.image.shape[::-1]) / 2
    moved = header_wcs.pixel_to_world(*centre).separation(
        solution.wcs.pixel_to_world(*centre)).arcsec
    uncertainty = solution.uncertainty_arcsec
    attributes: dict[str, Any] = {"rms": solution.rms_arcsec, "n_matched": solution.n_matched,
                                  "uncertainty": uncertainty if np.isfinite(uncertainty)
                                  else None,
                                  "pointing_offset": float(moved),
                                  **p.wcs_attributes(solution.wcs)}
    return Made(None, attributes,
                quality_flags=int(p.qc_astrometry(solution.rms_arcsec, uncertainty)))


def _photometry(inp: Inputs, params: dict[str, Any]) -> Made:
    """One zeropoint from every standard frame of the night: the median over frames. Each
    frame is matched to the catalogue its astrometry used (standard fields lie apart)."""
    filt = str(inp.filter)
    k = params.get("extinction")
    if k is None:
        _, extinctions = inp.refcat()
        if filt not in extinctions:
            raise ValueError(f"the reference catalogue gives no extinction for filter {filt}: "
                             "pass params={'extinction': k} (mag/airmass)")
        k = extinctions[filt]
    zeropoints, errors, n_stars = [], [], 0
    for oid in inp.oids("astrom"):
        astrom = inp.load.record(oid)
        stars, _ = inp.refcat(oid=str(astrom.refs["refcat"]))
        if f"MAG_{filt}" not in stars.colnames:
            raise ValueError(f"reference catalogue {astrom.refs['refcat']} has no magnitudes "
                             f"in filter {filt}")
        frame = inp.frame(str(astrom.refs["reduced"]))
        wcs = p.wcs_from_attributes(astrom.attributes)
        near = _near(stars, wcs, frame.image.shape)
        sources = p.extract_sources(frame.image, frame.weight, gain=frame.gain)
        zp = p.fit_zeropoint(sources, wcs, np.asarray(near["RA"]), np.asarray(near["DEC"]),
                             np.asarray(near[f"MAG_{filt}"]), frame.exptime, frame.gain,
                             frame.airmass, float(k), min_snr=params["min_snr"])
        zeropoints.append(zp.zeropoint)
        errors.append(zp.error)
        n_stars += zp.n_stars
    zeropoint = float(np.median(zeropoints))
    error = float(np.sqrt(np.sum(np.square(errors))) / len(errors))
    if len(zeropoints) > 1:  # frames that disagree say more than each frame's own error
        error = max(error, float(np.std(zeropoints) / np.sqrt(len(zeropoints))))
    return Made(None, {"zeropoint": zeropoint, "zeropoint_error": error,
                       "extinction": float(k), "n_stars": n_stars},
                quality_flags=int(p.qc_photometry(error, n_stars)))


def source_rows(table: Table, wcs: WCS, zeropoint: float) -> dict[str, list[Any]]:
    """Extracted sources as rows of the catalogue's source table: positions through
    ``wcs``, magnitudes ``zeropoint - 2.5 log10(flux)`` (the flux in the image's units),
    errors from the flux errors; None where a flux is not positive."""
    ra, dec = wcs.wcs_pix2world(np.asarray(table["x"]), np.asarray(table["y"]), 0)
    flux = np.asarray(table["flux"], dtype=np.float64)
    flux_err = np.asarray(table["fluxerr"], dtype=np.float64)
    positive = flux > 0
    mag = np.full(len(flux), np.nan)
    mag[positive] = zeropoint - 2.5 * np.log10(flux[positive])
    mag_err = np.where(positive, 1.0857 * flux_err / np.where(positive, flux, 1), np.nan)

    def column(values: np.ndarray) -> list[float | None]:
        return [float(v) if np.isfinite(v) else None for v in values]

    return {"ra": np.mod(ra, 360).tolist(), "dec": dec.tolist(),
            "x": np.asarray(table["x"]).tolist(), "y": np.asarray(table["y"]).tolist(),
            "flux": flux.tolist(), "flux_err": flux_err.tolist(),
            "mag": column(mag), "mag_err": column(mag_err),
            "snr": np.asarray(table["snr"]).tolist(), "flag": [int(f) for f in table["flag"]]}


def _sourcelist(inp: Inputs, params: dict[str, Any]) -> Made:
    """Sources of a reduced frame: positions through the fitted WCS, magnitudes through the
    night's zeropoint and extinction at the frame's airmass."""
    frame = inp.frame(inp.oid("frame"))
    wcs = p.wcs_from_attributes(inp.record("astrom").attributes)
    photom = inp.record("photom").attributes
    table = p.extract_sources(frame.image, frame.weight, threshold=params.get("threshold", 3.0),
                              gain=frame.gain)
    zeropoint = (float(photom["zeropoint"]) - float(photom["extinction"]) * frame.airmass
                 - 2.5 * np.log10(frame.gain / frame.exptime))
    rows = source_rows(table, wcs, zeropoint)
    attributes: dict[str, Any] = {"number_of_sources": len(table)}
    fwhm = float(table.meta.get("fwhm", float("nan")))
    if np.isfinite(fwhm):  # in arcsec through the fitted WCS's pixel scale
        scale = float(np.mean(proj_plane_pixel_scales(wcs))) * 3600
        attributes["seeing"] = round(fwhm * scale, 4)
    return Made(None, attributes, sources=rows, quality_flags=int(p.qc_sources(len(table))))


RECIPES: dict[str, Recipe] = {r.cls: r for r in (
    Recipe("ReadNoise", (Input("raw_bias_frames", "RawBiasFrame", raw=True, least=2),),
           _read_noise),
    Recipe("BiasFrame", (Input("raw_bias_frames", "RawBiasFrame", raw=True, least=2),
                         Input("read_noise", "ReadNoise")), _bias, params={"sigma": 3.0}),
    Recipe("HotPixelMap", (Input("bias", "BiasFrame"),), _hot, params={"nsigma": 10.0}),
    Recipe("DomeFlatFrame", (Input("raw_dome_flat_frames", "RawDomeFlatFrame", raw=True,
                                   least=2),
                             Input("bias", "BiasFrame"), Input("hot", "HotPixelMap")),
           _dome, needs_filter=True),
    Recipe("ColdPixelMap", (Input("flat", "DomeFlatFrame"),), _cold, needs_filter=True,
           params={"threshold": 0.5}),
    Recipe("TwilightFlatFrame", (Input("raw_twilight_flat_frames", "RawTwilightFlatFrame",
                                       raw=True, least=2),
                                 Input("bias", "BiasFrame"), Input("hot", "HotPixelMap")),
           _twilight, needs_filter=True),
    Recipe("MasterFlatFrame", (Input("dome", "DomeFlatFrame"),
                               Input("twilight", "TwilightFlatFrame")), _master,
           needs_filter=True),
    Recipe("ReducedScienceFrame", (Input("bias", "BiasFrame"), Input("flat", "MasterFlatFrame"),
                                   Input("hot", "HotPixelMap"), Input("cold", "ColdPixelMap")),
           _reduced, needs_filter=True, raw_path=("raw",)),
    Recipe("AstrometricParameters", (Input("reduced", "ReducedScienceFrame"),
                                     Input("refcat", "ReferenceCatalog", reference=True)),
           _astrometry, needs_filter=True, raw_path=("reduced", "raw"),
           params={"threshold": 3.0, "search_radius": 8.0, "min_snr": 15.0}),
    Recipe("PhotometricParameters", (Input("astrom", "AstrometricParameters",
                                           each="RawStandardFrame"),
                                     Input("refcat", "ReferenceCatalog", reference=True)),
           _photometry, needs_filter=True, params={"min_snr": 30.0, "extinction": None}),
    Recipe("SourceList", (Input("frame", "ReducedScienceFrame"),
                          Input("astrom", "AstrometricParameters"),
                          Input("photom", "PhotometricParameters")), _sourcelist,
           needs_filter=True, raw_path=("frame", "raw"), params={"threshold": 3.0}),
)}
