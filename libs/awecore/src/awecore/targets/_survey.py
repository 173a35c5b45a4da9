"""The survey's recipes: products over a sky tile (``awecore.tiles``), across nights and chips.

A coadd is asked for by its data ID (filter and tile); the planner knows nothing of tiles:
these recipes *select* their inputs by data ID (``Input.select``): every raw science frame
of the filter whose chip touches the tile, of any night. Beneath the coadd:

* ``TileAstrometry``: one astrometric solution for every frame on the tile, from the
  per-chip solutions and the stars the frames share (and the reference catalogue's);
* ``TilePhotometry``: relative zeropoints of the frames from the stars they share, anchored
  to each night's standard-star zeropoint;
* ``RegriddedFrame``: each reduced frame resampled onto the tile's grid with the joint
  solution, scaled to the tile's common zeropoint (``ZEROPOINT``);
* ``CoaddedRegriddedFrame``: their inverse-variance weighted mean, outliers rejected;
* ``CoaddSourceList``: its sources, into the source table.

Every pixel value of a regridded frame or a coadd is a flux on one scale: a star of
magnitude m gives a total of 10**(-0.4 (m - ZEROPOINT)).
"""

from __future__ import annotations

import dataclasses
import math
from typing import TYPE_CHECKING, Any

import numpy as np
from astropy.table import Table
from astropy.wcs import WCS

from .. import pipelines as p
from ..dimensions import DataId
from ..query import MAX_IN_VALUES, And, Between, Compare, QuerySpec
from ..tiles import Tile, footprint, tile
from ._nodes import night_of, parse_time
from ._recipes import Input, Inputs, Made, Recipe, source_rows

if TYPE_CHECKING:
    from ._ports import CatalogReader

__all__ = ["SURVEY_RECIPES", "ZEROPOINT", "depth", "tile_frames"]

#: the magnitude of one unit of flux in a regridded frame or a coadd
ZEROPOINT = 30.0
#: radius (pixels) of the aperture a coadd's depth is quoted for
DEPTH_APERTURE = 3.0
#: how far (deg) beyond a tile a pointing may lie and still put a chip on it, for frames
#: whose footprint was not recorded at ingest (a camera of up to ~1.5 deg)
_FIELD_REACH = 1.5


# -- selecting a tile's frames -------------------------------------------------------------
def _footprint(attributes: dict[str, Any]) -> tuple[list[float], list[float]] | None:
    """A raw frame's corners on the sky, as ingest recorded them ("ra dec;ra dec;...")."""
    text = attributes.get("footprint")
    if not text:
        return None
    try:
        pairs = [tuple(float(v) for v in corner.split()) for corner in str(text).split(";")]
    except ValueError:
        return None
    if len(pairs) < 3 or any(len(c) != 2 for c in pairs):
        return None
    return [c[0] for c in pairs], [c[1] for c in pairs]


def _on_tile(on: Tile, attributes: dict[str, Any]) -> bool:
    corners = _footprint(attributes)
    if corners is not None:
        return on.overlaps(*corners)
    ra, dec = attributes.get("ra"), attributes.get("dec")
    return ra is not None and dec is not None and on.contains(float(ra), float(dec))


async def tile_frames(catalog: CatalogReader, data_id: DataId) -> list[DataId]:
    """The data IDs (chip, filter, night, raw frame, tile) of every raw science frame of the
    data ID's filter (and instrument) whose chip touches its tile, of any night: what a
    product over a tile is made from. Standard-star fields are not science."""
    on = tile(data_id["tile"])
    reach = on.half_width + _FIELD_REACH
    conds: list[Any] = [Between(path=("dec",), low=on.dec - reach, high=on.dec + reach),
                        Compare(op="eq", path=("is_valid",), value=1)]
    if "filter" in data_id:
        conds.append(Compare(op="eq", path=("filter", "name"), value=data_id["filter"]))
    if "instrument" in data_id:
        conds.append(Compare(op="eq", path=("instrument", "name"),
                             value=data_id["instrument"]))
    spec = QuerySpec(cls="RawScienceFrame", where=And(items=tuple(conds)))
    frames = [r for r in await catalog.find(spec) if r.type == "RawScienceFrame"
              and _on_tile(on, r.attributes)]
    chips = sorted({str(r.refs["chip"]) for r in frames if isinstance(r.refs.get("chip"), str)})
    names: dict[str, str] = {}
    for i in range(0, len(chips), MAX_IN_VALUES):
        for oid, record in (await catalog.get_records(chips[i:i + MAX_IN_VALUES])).items():
            names[oid] = str(record.attributes.get("name"))
    found = []
    for r in frames:
        when = parse_time(r.attributes.get("date_obs"))
        chip = names.get(str(r.refs.get("chip")))
        if when is None or chip is None:
            continue
        found.append(DataId(chip=chip, filter=data_id.get("filter"), night=night_of(when),
                            raw=r.oid, tile=on.name))
    return sorted(found)


# -- what the recipes share ----------------------------------------------------------------
def _scale_of(wcs: WCS) -> float:
    """A TAN WCS's pixel scale (arcsec), from its CD matrix."""
    return float(math.sqrt(abs(np.linalg.det(wcs.pixel_scale_matrix))) * 3600.0)


def _table_rows(inp: Inputs, ref: str) -> dict[str, dict[str, Any]]:
    """A tile solution's table, by reduced frame oid."""
    record = inp.record(ref)
    table = Table(inp.load.hdus(str(record.filename))["TABLE"].data)
    names = table.colnames
    return {str(row["reduced"]).strip(): {n: row[n] for n in names} for row in table}


def _wcs_of(row: dict[str, Any]) -> WCS:
    return p.wcs_from_attributes({k: float(row[k]) for k in (
        "crval1", "crval2", "crpix1", "crpix2", "cd1_1", "cd1_2", "cd2_1", "cd2_2")})


def depth(noise: float, zeropoint: float = ZEROPOINT) -> float | None:
    """The 5-sigma limit of a point source in an aperture of DEPTH_APERTURE pixels radius,
    for a background rms ``noise`` per pixel."""
    if not noise > 0:
        return None
    return float(zeropoint - 2.5 * math.log10(
        5.0 * noise * math.sqrt(math.pi * DEPTH_APERTURE ** 2)))


def _catalogue(inp: Inputs, reduced: str, wcs: WCS, threshold: float) -> p.ChipCatalog:
    """A reduced frame's sources, as the global solutions take them."""
    frame = inp.frame(reduced, header=False)
    found = p.extract_sources(frame.image, frame.weight, threshold=threshold, gain=frame.gain)
    good = (np.asarray(found["flag"]) == 0) & (np.asarray(found["flux"]) > 0)
    found = found[good]
    return p.ChipCatalog(key=reduced, x=np.asarray(found["x"], dtype=float),
                         y=np.asarray(found["y"], dtype=float),
                         flux=np.asarray(found["flux"], dtype=float),
                         flux_err=np.asarray(found["fluxerr"], dtype=float), wcs=wcs,
                         exptime=frame.exptime, gain=frame.gain, airmass=frame.airmass)


# -- the recipes ---------------------------------------------------------------------------
def _tile_astrometry(inp: Inputs, params: dict[str, Any]) -> Made:
    on = tile(inp.dims["tile"])
    chips = []
    raws = []
    for oid in inp.oids("astrom"):
        astrom = inp.load.record(oid)
        reduced = str(astrom.refs["reduced"])
        raws.append(str(inp.load.record(reduced).refs["raw"]))
        chips.append(_catalogue(inp, reduced, p.wcs_from_attributes(astrom.attributes),
                                params["threshold"]))
    stars, _ = inp.refcat()
    solution = p.global_astrometry(chips, np.asarray(stars["RA"]), np.asarray(stars["DEC"]),
                                   match_radius_arcsec=params["match_radius"],
                                   centre=(on.ra, on.dec))
    rows: dict[str, list[Any]] = {k: [] for k in (
        "reduced", "raw", "crval1", "crval2", "crpix1", "crpix2", "cd1_1", "cd1_2", "cd2_1",
        "cd2_2")}
    for chip, raw in zip(chips, raws, strict=True):
        rows["reduced"].append(chip.key)
        rows["raw"].append(raw)
        for k, v in p.wcs_attributes(solution.wcs[chip.key]).items():
            rows[k].append(v)
    scales = [_scale_of(c.wcs) for c in chips]
    attributes = {"n_frames": len(chips), "n_pairs": int(solution.n_pairs),
                  "rms_overlap_before": _finite(solution.rms_overlap_before),
                  "rms_overlap": _finite(solution.rms_overlap),
                  "rms_reference_before": _finite(solution.rms_reference_before),
                  "rms_reference": _finite(solution.rms_reference),
                  "pixel_scale": round(float(np.median(scales)), 3)}
    flags = p.QC(0)
    if solution.poor:
        flags |= p.QC.POOR_ASTROMETRY
    return Made(None, attributes, table=rows, quality_flags=int(flags))


def _finite(value: float | None) -> float | None:
    return float(value) if value is not None and np.isfinite(value) else None


def _tile_photometry(inp: Inputs, params: dict[str, Any]) -> Made:
    solved = _table_rows(inp, "astrom")
    chips, anchors, raws = [], {}, []
    for oid in inp.oids("sourcelists"):
        sources = inp.load.record(oid)
        reduced = str(sources.refs["frame"])
        if reduced not in solved:
            continue  # a frame the joint astrometry left out
        photom = inp.load.record(str(sources.refs["photom"])).attributes
        chip = _catalogue(inp, reduced, _wcs_of(solved[reduced]), params["threshold"])
        chips.append(chip)
        raws.append(str(solved[reduced]["raw"]).strip())
        anchors[reduced] = (float(photom["zeropoint"])
                            - float(photom["extinction"]) * chip.airmass)
    solution = p.global_photometry(chips, anchors, match_radius_arcsec=params["match_radius"],
                                   max_rms=params["max_rms"])
    exposures = [str(inp.load.record(r).attributes.get("raw_filename") or r) for r in raws]
    shift = _clearest_shift(solution.zeropoints, anchors, exposures, chips) \
        if params["anchor"] == "clearest" else 0.0
    rows: dict[str, list[Any]] = {"reduced": [], "raw": [], "zeropoint": [],
                                  "zeropoint_error": [], "anchor": []}
    for chip, raw in zip(chips, raws, strict=True):
        rows["reduced"].append(chip.key)
        rows["raw"].append(raw)
        rows["zeropoint"].append(float(solution.zeropoints[chip.key]) - shift)
        rows["zeropoint_error"].append(float(solution.errors[chip.key]))
        rows["anchor"].append(anchors[chip.key])
    attributes = {"n_frames": len(chips), "n_stars": int(solution.n_stars),
                  "rms": _finite(solution.rms), "shift": shift}
    flags = p.QC(0)
    if solution.poor:
        flags |= p.QC.POOR_PHOTOMETRY
    return Made(None, attributes, table=rows, quality_flags=int(flags))


def _clearest_shift(zeropoints: dict[str, float], anchors: dict[str, float],
                    exposures: list[str], chips: list[p.ChipCatalog]) -> float:
    """How far the joint solution's common level lies above the clearest exposure's.

    The overlaps fix the zeropoints relative to each other; their common level is set so
    that they match the nights' standard-star zeropoints on average. But the standards are
    taken in photometric conditions, and clouds only ever take light away: a science
    exposure can be no brighter than the standards say, and the mean exposure is dimmer by
    the mean cloud loss. So the level is moved to the clearest exposure (each exposure's
    chips averaged), which is taken as photometric, as the standards were."""
    if not chips:
        return 0.0
    per_exposure: dict[str, list[float]] = {}
    for chip, exposure in zip(chips, exposures, strict=True):
        per_exposure.setdefault(exposure, []).append(zeropoints[chip.key] - anchors[chip.key])
    return float(max(np.mean(v) for v in per_exposure.values()))


def _tile_grid(inp: Inputs) -> tuple[Tile, float]:
    """The tile and its pixel scale: the instrument's, as the joint astrometry measured."""
    astrom = inp.record("astrom")
    return tile(inp.dims["tile"]), float(astrom.attributes["pixel_scale"])


def _regridded(inp: Inputs, params: dict[str, Any]) -> Made:
    reduced = inp.oid("reduced")
    on, scale = _tile_grid(inp)
    astrometry, photometry = _table_rows(inp, "astrom"), _table_rows(inp, "photom")
    if reduced not in astrometry or reduced not in photometry:
        raise ValueError(f"reduced frame {reduced} is not in the tile's joint solutions "
                         "(the QC policy left it out): it cannot be regridded")
    wcs = _wcs_of(astrometry[reduced])
    zeropoint = float(photometry[reduced]["zeropoint"])
    frame = inp.frame(reduced, header=False)  # the joint solution is its WCS
    # reduced ADU -> e-/s (gain, exposure time) -> the tile's common zeropoint
    flux_scale = frame.gain / frame.exptime * 10 ** (0.4 * (ZEROPOINT - zeropoint))
    tile_wcs = on.wcs(scale)
    # the reduced frame's weight is relative (the flat); the coadd needs inverse variances
    # that compare across exposures and nights: scaled by the frame's own sky noise
    weight = p.inverse_variance_weight(frame.image, frame.weight)
    out = p.regrid(frame.image, weight, wcs, tile_wcs, on.shape(scale),
                   method=params["method"], flux_scale=flux_scale, gain=frame.gain)
    if out.empty:
        raise ValueError(f"reduced frame {reduced} does not touch tile {on.name}")
    header = dict(out.wcs_of(tile_wcs).to_header(relax=True))
    header.update(BUNIT="flux", MAGZERO=ZEROPOINT, AWETILE=on.name)
    raw = inp.load.record(str(inp.load.record(reduced).refs["raw"])).attributes
    covered = out.weight > 0
    attributes = {"x0": out.x0, "y0": out.y0, "zeropoint": ZEROPOINT,
                  "flux_scale": float(flux_scale), "poisson": out.poisson,
                  "pixel_area_ratio": out.pixel_area_ratio, "background": out.background,
                  "nx": int(out.image.shape[1]),
                  "ny": int(out.image.shape[0]), "exptime": raw.get("exptime"),
                  "date_obs": raw.get("date_obs"), "object": raw.get("object"),
                  "imstat": p.imstat(out.image, ~covered).as_dict() if covered.any()
                  else None}
    return Made(out.image, {k: v for k, v in attributes.items() if v is not None},
                weight=out.weight, header=header)


def _coadded(inp: Inputs, params: dict[str, Any]) -> Made:
    frames = []
    for oid in inp.oids("regridded_frames"):
        record = inp.load.record(oid)
        a = record.attributes
        weight = inp.load.hdus(str(a["weight_filename"]))[0].data
        frames.append(p.Regridded(image=inp.load.pixels(oid),
                                  weight=np.asarray(weight, dtype=np.float32),
                                  x0=int(a["x0"]), y0=int(a["y0"]),
                                  method=str((record.process_params or {}).get("method", "")),
                                  flux_scale=float(a.get("flux_scale") or 1.0),
                                  pixel_area_ratio=float(a.get("pixel_area_ratio") or 1.0),
                                  poisson=float(a.get("poisson") or 0.0)))
    on = tile(inp.dims["tile"])
    first = inp.load.record(inp.oids("regridded_frames")[0])
    header = inp.load.hdus(str(first.filename))[0].header
    # the union of the frames' boxes on the tile's grid: the coadd's own grid
    x0 = min(f.x0 for f in frames)
    y0 = min(f.y0 for f in frames)
    x1 = max(f.x0 + f.image.shape[1] for f in frames)
    y1 = max(f.y0 + f.image.shape[0] for f in frames)
    shifted = [dataclasses.replace(f, x0=f.x0 - x0, y0=f.y0 - y0) for f in frames]
    stack = p.coadd(shifted, (y1 - y0, x1 - x0), clip_sigma=params["clip_sigma"],
                    clip_ampfrac=params["clip_ampfrac"])
    wcs = WCS(header)
    wcs.wcs.crpix = [wcs.wcs.crpix[0] - (x0 - first.attributes["x0"]),
                     wcs.wcs.crpix[1] - (y0 - first.attributes["y0"])]
    cards = dict(wcs.to_header(relax=True))
    cards.update(BUNIT="flux", MAGZERO=ZEROPOINT, AWETILE=on.name, NCOMBINE=len(frames))
    # the noise where every frame overlaps: what the depth is quoted for
    full = stack.count == stack.count.max()
    # a star's own photon noise in the mean of n frames: each frame's per unit of value,
    # over n (where most of the coadd has n)
    poisson = float(np.mean([f.poisson for f in frames])) / max(int(stack.count.max()), 1)
    noise = p.coadd_noise(stack.image, np.where(full, stack.weight, 0))
    dates = sorted(str(inp.load.record(o).attributes.get("date_obs") or "")
                   for o in inp.oids("regridded_frames"))
    attributes = {"n_frames": len(frames), "zeropoint": ZEROPOINT,
                  "noise": _finite(noise), "depth": depth(noise),
                  "n_rejected": stack.n_rejected, "poisson": poisson,
                  "nx": int(stack.image.shape[1]), "ny": int(stack.image.shape[0]),
                  "exptime": float(sum(float(inp.load.record(o).attributes.get("exptime") or 0)
                                       for o in inp.oids("regridded_frames"))),
                  "date_obs": dates[0] or None, "object": on.name,
                  "footprint": footprint(wcs, slice(0, x1 - x0), slice(0, y1 - y0)),
                  "imstat": p.imstat(stack.image, stack.weight <= 0).as_dict()}
    return Made(stack.image, {k: v for k, v in attributes.items() if v is not None},
                weight=stack.weight, header=cards,
                extensions={"COUNT": stack.count.astype(np.int16)})


def _coadd_sources(inp: Inputs, params: dict[str, Any]) -> Made:
    """The sources of a coadd: magnitudes on the coadd's common zeropoint."""
    record = inp.record("frame")
    hdul = inp.load.hdus(str(record.filename))
    image = np.asarray(hdul[0].data, dtype=np.float32)
    weight = np.asarray(inp.load.hdus(str(record.attributes["weight_filename"]))[0].data,
                        dtype=np.float32)
    wcs = WCS(hdul[0].header)
    # the weight map is the inverse variance of the sky (its sum over an aperture the
    # aperture's); a star's own photon noise comes from the frames' gains ("poisson")
    poisson = float(record.attributes.get("poisson") or 0.0)
    variance = np.where(weight > 0, 1.0 / np.where(weight > 0, weight, 1.0), 0.0)
    table = p.extract_sources(image, weight, threshold=params["threshold"],
                              gain=1.0 / poisson if poisson > 0 else None, variance=variance)
    rows = source_rows(table, wcs, ZEROPOINT)
    return Made(None, {"number_of_sources": len(table),
                       "depth": record.attributes.get("depth")}, sources=rows,
                quality_flags=int(p.qc_sources(len(table))))


SURVEY_RECIPES: tuple[Recipe, ...] = (
    Recipe("TileAstrometry", (Input("astrom", "AstrometricParameters", select=tile_frames,
                                    least=1),
                              Input("refcat", "ReferenceCatalog", reference=True)),
           _tile_astrometry, needs_filter=True,
           params={"threshold": 5.0, "match_radius": 1.5}),
    Recipe("TilePhotometry", (Input("astrom", "TileAstrometry"),
                              Input("sourcelists", "SourceList", select=tile_frames,
                                    least=1)),
           _tile_photometry, needs_filter=True,
           params={"threshold": 5.0, "match_radius": 1.0, "max_rms": 0.05,
                   "anchor": "clearest"}),
    Recipe("RegriddedFrame", (Input("reduced", "ReducedScienceFrame"),
                              Input("astrom", "TileAstrometry"),
                              Input("photom", "TilePhotometry")),
           _regridded, needs_filter=True, raw_path=("reduced", "raw"),
           params={"method": "interp"}),
    Recipe("CoaddedRegriddedFrame", (Input("regridded_frames", "RegriddedFrame",
                                           select=tile_frames, least=1),),
           _coadded, needs_filter=True, params={"clip_sigma": 5.0, "clip_ampfrac": 0.3}),
    Recipe("CoaddSourceList", (Input("frame", "CoaddedRegriddedFrame"),), _coadd_sources,
           needs_filter=True, params={"threshold": 3.0}),
)
