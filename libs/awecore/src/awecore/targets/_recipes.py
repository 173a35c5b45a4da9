"""What each product of the chain is made from, and how: the recipes of target processing.

A recipe names its inputs (raw frames of the night, or the best calibration of a class for
the chip, filter and time) and a ``make`` that turns their pixels into the product's pixels
and attributes with the pipelines. The planner resolves inputs; the maker runs ``make``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .. import pipelines as p

__all__ = ["RECIPES", "Input", "Made", "Recipe"]


@dataclass(frozen=True)
class Input:
    """A reference of the product: raw frames of a class, or the best object of a class."""

    ref: str  # the reference name on the product
    cls: str
    raw: bool = False  # raw frames of the night (a list) rather than one best calibration
    least: int = 1


@dataclass
class Made:
    image: np.ndarray | None
    attributes: dict[str, Any] = field(default_factory=dict)
    sources: dict[str, list[Any]] | None = None  # rows for the catalog's source table
    quality_flags: int = 0  # what automatic QC found (pipelines.QC)


Maker = Callable[[dict[str, Any], dict[str, Any]], Made]


@dataclass(frozen=True)
class Recipe:
    cls: str
    inputs: tuple[Input, ...]
    make: Maker
    needs_filter: bool = False
    params: dict[str, Any] = field(default_factory=dict)
    per_raw: bool = False  # one product per raw science frame (not per night)


def _stats(image: np.ndarray, mask: np.ndarray | None = None) -> dict[str, Any]:
    return {"imstat": p.imstat(image, mask).as_dict()}


def _read_noise(inp: dict[str, Any], params: dict[str, Any]) -> Made:
    a, b = inp["raw_bias_frames"][:2]
    return Made(None, {"read_noise": p.read_noise(a, b)})


def _bias(inp: dict[str, Any], params: dict[str, Any]) -> Made:
    raws = inp["raw_bias_frames"]
    bias = p.master_bias(raws, sigma=params.get("sigma", 3.0))
    noise = p.read_noise(raws[0], raws[1])
    return Made(bias, _stats(bias), quality_flags=int(p.qc_bias(bias, noise, len(raws))))


def _hot(inp: dict[str, Any], params: dict[str, Any]) -> Made:
    # the master bias's own clipped rms is the noise to beat (read noise / sqrt(frames))
    noise = p.imstat(inp["bias"]).stdev
    hot = p.hot_pixel_map(inp["bias"], noise, params.get("nsigma", 10.0))
    return Made(hot.astype(np.uint8), {"hot_pixels": int(hot.sum())},
                quality_flags=int(p.qc_pixel_map(hot)))


def _dome(inp: dict[str, Any], params: dict[str, Any]) -> Made:
    flat = p.dome_flat(inp["raw_dome_flat_frames"], inp["bias"], inp["hot"].astype(bool))
    level = float(np.median(inp["raw_dome_flat_frames"][0] - inp["bias"]))
    return Made(flat, _stats(flat), quality_flags=int(p.qc_flat(flat, level)))


def _twilight(inp: dict[str, Any], params: dict[str, Any]) -> Made:
    flat = p.twilight_flat(inp["raw_twilight_flat_frames"], inp["bias"], inp["hot"].astype(bool))
    return Made(flat, _stats(flat))


def _cold(inp: dict[str, Any], params: dict[str, Any]) -> Made:
    cold = p.cold_pixel_map(inp["flat"], params.get("threshold", 0.5))
    return Made(cold.astype(np.uint8), {"cold_pixels": int(cold.sum())},
                quality_flags=int(p.qc_pixel_map(cold)))


def _master(inp: dict[str, Any], params: dict[str, Any]) -> Made:
    flat = p.master_flat(inp["dome"], inp["twilight"])
    return Made(flat, _stats(flat))


def _reduced(inp: dict[str, Any], params: dict[str, Any]) -> Made:
    image, weight = p.reduce_science(inp["raw"], inp["bias"], inp["flat"],
                                     inp["hot"].astype(bool), inp["cold"].astype(bool))
    attributes = _stats(image, weight <= 0)
    attributes["weight"] = weight
    return Made(image, attributes, quality_flags=int(p.qc_reduced(inp["raw"], weight)))


def _sourcelist(inp: dict[str, Any], params: dict[str, Any]) -> Made:
    """Sources of a reduced frame; positions through the frame's WCS, magnitudes with the
    filter's nominal zeropoint until a PhotometricParameters target exists."""
    from astropy.wcs import WCS

    table = p.extract_sources(inp["frame"], inp["frame@weight"],
                              threshold=params.get("threshold", 3.0))
    wcs = WCS(inp["frame@header"])
    ra, dec = wcs.wcs_pix2world(np.asarray(table["x"]), np.asarray(table["y"]), 0)
    flux = np.asarray(table["flux"], dtype=np.float64)
    positive = flux > 0
    mag = np.full(len(flux), np.nan)
    mag[positive] = params.get("zeropoint", 25.0) - 2.5 * np.log10(flux[positive])
    rows: dict[str, list[Any]] = {
        "ra": np.mod(ra, 360).tolist(), "dec": dec.tolist(),
        "x": np.asarray(table["x"]).tolist(), "y": np.asarray(table["y"]).tolist(),
        "flux": flux.tolist(), "flux_err": np.asarray(table["fluxerr"]).tolist(),
        "mag": [None if not np.isfinite(m) else float(m) for m in mag],
        "snr": np.asarray(table["snr"]).tolist(),
        "flag": [int(f) for f in table["flag"]]}
    return Made(None, {"number_of_sources": len(table)}, sources=rows,
                quality_flags=int(p.qc_sources(len(table))))


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
           _reduced, needs_filter=True, per_raw=True),
    Recipe("SourceList", (Input("frame", "ReducedScienceFrame"),), _sourcelist,
           needs_filter=True, per_raw=True, params={"threshold": 3.0, "zeropoint": 25.0}),
)}
