"""awe-skyback: an example of a user's own AWE product, made without editing awecore.

``SkyBackgroundMap``: the sky background of one reduced science frame, measured in boxes (a
coarse map, one value per box, stored as a FITS image) with the frame's sky level and noise.
Its one input is the reduced frame, so its lineage reaches the raw frame and every
calibration beneath it.

Installed, the package is found through its entry point (group ``awecore.products``); the
compute service and its workers load it at start-up and register the class with the catalog.
At a prompt::

    import awecore as awe, awe_skyback
    awe.targets.register_classes(awe.connect(), [awe_skyback.SkyBackgroundMap])  # once
    sky = awe_skyback.SkyBackgroundMap.get('2007-07-07', 'ccd50', '841', raw=RAW_OID)
    sky.background, sky.rms, sky.reduced.raw
"""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version
from typing import Any

import numpy as np

from awecore.model import DataObject, ProcessTarget, Ref, Scalar
from awecore.targets import Input, Inputs, Made, Recipe, register_recipe

from ._background import block_background

__all__ = ["SkyBackgroundMap", "block_background"]

try:
    __version__ = version("awe-skyback")
except PackageNotFoundError:  # imported from a source tree
    __version__ = "0.1.0"


class SkyBackgroundMap(DataObject, ProcessTarget):
    """The sky background of one reduced frame, measured in boxes: a coarse map (ADU, one
    value per box) stored as a FITS image, with the frame's sky level and noise."""

    schema_version = 1
    #: its data ID: one map per raw frame (and so per instrument, chip, filter and night)
    dimensions = ("instrument", "chip", "filter", "night", "raw")

    chip = Ref("Chip")
    filter = Ref("Filter")
    reduced = Ref("ReducedScienceFrame", "the reduced frame measured")
    background = Scalar(float, "the frame's sky level: the median of the map", unit="adu")
    rms = Scalar(float, "the sky's noise: the median over boxes of the clipped rms",
                 unit="adu")
    box = Scalar(int, "side of a box of the map", unit="pix")
    map_nx = Scalar(int, "boxes along x")
    map_ny = Scalar(int, "boxes along y")


def make_map(inp: Inputs, params: dict[str, Any]) -> Made:
    """The recipe: the reduced frame's pixels where its weight is positive, in boxes."""
    reduced = inp.record("reduced")
    image = inp.pixels("reduced")
    weight = inp.load.hdus(str(reduced.attributes["weight_filename"]))[0].data
    box = int(params["box"])
    level, rms = block_background(image, np.asarray(weight) > 0, box, float(params["nsigma"]))
    good = np.isfinite(level)
    if not good.any():
        raise ValueError(f"reduced frame {reduced.oid} has no valid pixel")
    return Made(level, {"background": float(np.median(level[good])),
                        "rms": float(np.median(rms[good])), "box": box,
                        "map_nx": int(level.shape[1]), "map_ny": int(level.shape[0])})


RECIPE = register_recipe(
    "SkyBackgroundMap",
    Recipe("SkyBackgroundMap", (Input("reduced", "ReducedScienceFrame"),), make_map,
           needs_filter=True, raw_path=("reduced", "raw"), params={"box": 16, "nsigma": 3.0}),
    version=__version__)
