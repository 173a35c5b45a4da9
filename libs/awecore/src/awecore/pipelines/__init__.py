"""Pipelines: pure functions over images (numpy, ADU) that make the products of the chain.

The compute service runs them off the event loop and registers what they return, with the
process parameters and the software version, in the catalog.
"""

from ._astrometry import (
    AstrometricSolution,
    fit_astrometry,
    match_sources,
    wcs_attributes,
    wcs_from_attributes,
)
from ._calib import (
    ImageStats,
    cold_pixel_map,
    dome_flat,
    hot_pixel_map,
    imstat,
    master_bias,
    master_flat,
    read_noise,
    twilight_flat,
)
from ._photometry import Zeropoint, fit_zeropoint
from ._qc import (
    QC,
    qc_astrometry,
    qc_bias,
    qc_flat,
    qc_photometry,
    qc_pixel_map,
    qc_reduced,
    qc_sources,
)
from ._reduce import reduce_science
from ._sources import extract_sources

SOFTWARE_VERSION = "0.2.0"

__all__ = [
    "QC",
    "SOFTWARE_VERSION",
    "AstrometricSolution",
    "ImageStats",
    "Zeropoint",
    "cold_pixel_map",
    "dome_flat",
    "extract_sources",
    "fit_astrometry",
    "fit_zeropoint",
    "hot_pixel_map",
    "imstat",
    "master_bias",
    "master_flat",
    "match_sources",
    "qc_astrometry",
    "qc_bias",
    "qc_flat",
    "qc_photometry",
    "qc_pixel_map",
    "qc_reduced",
    "qc_sources",
    "read_noise",
    "reduce_science",
    "twilight_flat",
    "wcs_attributes",
    "wcs_from_attributes",
]
