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
from ._coadd import Coadd, coadd, coadd_noise
from ._global import (
    AstrometrySolution,
    ChipCatalog,
    PhotometrySolution,
    global_astrometry,
    global_photometry,
)
from ._overscan import (
    Section,
    format_section,
    overscan_correct,
    overscan_level,
    parse_section,
    section_from_counts,
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
from ._reduce import SATURATION, reduce_science
from ._regrid import Regridded, inverse_variance_weight, regrid
from ._sources import extract_sources

SOFTWARE_VERSION = "0.3.0"

__all__ = [
    "QC",
    "SATURATION",
    "SOFTWARE_VERSION",
    "AstrometricSolution",
    "AstrometrySolution",
    "ChipCatalog",
    "Coadd",
    "ImageStats",
    "PhotometrySolution",
    "Regridded",
    "Section",
    "Zeropoint",
    "coadd",
    "coadd_noise",
    "cold_pixel_map",
    "dome_flat",
    "extract_sources",
    "fit_astrometry",
    "fit_zeropoint",
    "format_section",
    "global_astrometry",
    "global_photometry",
    "hot_pixel_map",
    "imstat",
    "inverse_variance_weight",
    "master_bias",
    "master_flat",
    "match_sources",
    "overscan_correct",
    "overscan_level",
    "parse_section",
    "qc_astrometry",
    "qc_bias",
    "qc_flat",
    "qc_photometry",
    "qc_pixel_map",
    "qc_reduced",
    "qc_sources",
    "read_noise",
    "reduce_science",
    "regrid",
    "section_from_counts",
    "twilight_flat",
    "wcs_attributes",
    "wcs_from_attributes",
]
