"""The classes of the wide-field imaging chain, each "made from" the objects it references.

Abstract bases (DataObject, Frame, RawFrame, CalFile, ProcessTarget) exist so that a query on
a base returns every subclass: ``RawFrame.select()`` gives biases, flats and science frames.
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, ClassVar

from ._base import DBObject
from ._fields import Ref, Scalar, Struct, StructType
from ._files import WCS_KEYS, file_bytes, first_image, open_hdul, wcs_from_attributes

if TYPE_CHECKING:
    import numpy as np
    from astropy.io import fits
    from astropy.wcs import WCS

__all__ = [
    "AstrometricParameters",
    "BiasFrame",
    "CalFile",
    "Chip",
    "CoaddSourceList",
    "CoaddedRegriddedFrame",
    "ColdPixelMap",
    "DataObject",
    "DomeFlatFrame",
    "Filter",
    "Frame",
    "HotPixelMap",
    "ImStat",
    "Instrument",
    "MasterFlatFrame",
    "PhotometricParameters",
    "ProcessTarget",
    "RawBiasFrame",
    "RawDomeFlatFrame",
    "RawFrame",
    "RawScienceFrame",
    "RawStandardFrame",
    "RawTwilightFlatFrame",
    "ReadNoise",
    "ReducedScienceFrame",
    "ReferenceCatalog",
    "RegriddedFrame",
    "SourceList",
    "TileAstrometry",
    "TilePhotometry",
    "TwilightFlatFrame",
]


class ImStat(StructType):
    """Image statistics every frame records (ADU)."""

    mean = Scalar(float, unit="adu")
    median = Scalar(float, unit="adu")
    stdev = Scalar(float, unit="adu")
    min = Scalar(float, unit="adu")
    max = Scalar(float, unit="adu")


# -- instrument description ---------------------------------------------------------------
class Instrument(DBObject):
    dimensions: ClassVar[tuple[str, ...]] = ("instrument",)
    name = Scalar(str, "instrument name as in INSTRUME, e.g. OMEGACAM")
    telescope = Scalar(str)
    pixel_scale = Scalar(float, "arcsec per pixel", unit="arcsec")


class Chip(DBObject):
    dimensions: ClassVar[tuple[str, ...]] = ("instrument", "chip")
    name = Scalar(str, "detector id, e.g. ccd53 or ESO_CCD_#65")
    instrument = Ref("Instrument")
    nx = Scalar(int, unit="pix")
    ny = Scalar(int, unit="pix")


class Filter(DBObject):
    dimensions: ClassVar[tuple[str, ...]] = ("filter",)
    name = Scalar(str, "filter name, e.g. 841 or r_SDSS")
    central_wavelength = Scalar(float, "where the passband is centred (known filters)",
                                unit="nm")
    bandwidth = Scalar(float, "the passband's full width at half maximum", unit="nm")


# -- abstract bases -----------------------------------------------------------------------
class DataObject(DBObject, abstract=True):
    """Anything with a file (pixels or a table) in storage."""

    filename = Scalar(str, "unique name in storage")
    file_size = Scalar(int, unit="byte")
    checksum = Scalar(str, "sha256 of the stored file")

    def hdul(self) -> fits.HDUList:
        """The object's FITS file, from storage, checked against the checksum the catalogue
        recorded (read once per object; each call opens it anew, so closing one is fine)."""
        return open_hdul(file_bytes(self))

    @property
    def data(self) -> np.ndarray:
        """The pixels: the primary image (or the first extension's that has one)."""
        with self.hdul() as hdul:
            return first_image(hdul)


class ProcessTarget(DBObject, abstract=True):
    """Made by a pipeline: records what ran, with which parameters and software version."""

    software_version = Scalar(str)
    inherited_flags = Scalar(int, "QC flags of its inputs and theirs, kept apart from its own "
                                  "quality_flags so a person sees where a problem came from")


class CalFile(DBObject, abstract=True):
    """A calibration: valid for a time window, judged by QC."""

    timestamp_start = Scalar(dt.datetime, "start of validity")
    timestamp_end = Scalar(dt.datetime, "end of validity")


class Frame(DataObject, abstract=True):
    instrument = Ref("Instrument")
    chip = Ref("Chip")
    filter = Ref("Filter")
    date_obs = Scalar(dt.datetime, "start of exposure (UTC)")
    exptime = Scalar(float, unit="s")
    object = Scalar(str, "OBJECT header")
    nx = Scalar(int, unit="pix")
    ny = Scalar(int, unit="pix")
    imstat = Struct(ImStat)


# -- raw data (ingested, sacred) ----------------------------------------------------------
class RawFrame(Frame, abstract=True):
    dimensions: ClassVar[tuple[str, ...]] = ("instrument", "chip", "filter", "night", "raw")
    raw_filename = Scalar(str, "name of the original multi-extension file")
    extension = Scalar(int, "extension of the original file")
    ra = Scalar(float, unit="deg")
    dec = Scalar(float, unit="deg")
    airmass = Scalar(float)
    gain = Scalar(float, unit="electron/adu")
    raw_sha256 = Scalar(str, "sha256 of the original multi-extension file")
    data_section = Scalar(str, "light-sensitive pixels in the stored file, [x1:x2,y1:y2]")
    overscan_section = Scalar(str, "overscan or prescan columns measuring the bias level")
    overscan_level = Scalar(float, "bias level measured in the overscan", unit="adu")
    footprint = Scalar(str, "corners of the light-sensitive pixels on the sky by the header's "
                            "WCS: 'ra dec;ra dec;ra dec;ra dec' (deg)")


class RawBiasFrame(RawFrame):
    dimensions: ClassVar[tuple[str, ...]] = ("instrument", "chip", "night", "raw")


class RawDomeFlatFrame(RawFrame):
    pass


class RawTwilightFlatFrame(RawFrame):
    pass


class RawScienceFrame(RawFrame):
    pass


class RawStandardFrame(RawScienceFrame):
    """A standard-star field: reduced like science, used for photometric calibration."""


class ReferenceCatalog(DataObject):
    """An external catalogue of stars (positions, and magnitudes per filter), ingested like
    raw data: astrometry is fitted to its positions, zeropoints to its magnitudes."""

    name = Scalar(str, "catalogue name, e.g. GAIA-DR3 extract or a standard-star list")
    n_stars = Scalar(int)
    filters = Scalar(str, "filters with magnitudes, comma-separated")
    ra_min = Scalar(float, unit="deg")
    ra_max = Scalar(float, unit="deg")
    dec_min = Scalar(float, unit="deg")
    dec_max = Scalar(float, unit="deg")


# -- calibrations -------------------------------------------------------------------------
class ReadNoise(CalFile, ProcessTarget):
    dimensions: ClassVar[tuple[str, ...]] = ("instrument", "chip", "night")
    chip = Ref("Chip")
    raw_bias_frames = Ref("RawBiasFrame", many=True)
    read_noise = Scalar(float, unit="adu")


class BiasFrame(Frame, CalFile, ProcessTarget):
    dimensions: ClassVar[tuple[str, ...]] = ("instrument", "chip", "night")
    raw_bias_frames = Ref("RawBiasFrame", many=True)
    read_noise = Ref("ReadNoise")


class HotPixelMap(Frame, CalFile, ProcessTarget):
    dimensions: ClassVar[tuple[str, ...]] = ("instrument", "chip", "night")
    bias = Ref("BiasFrame")
    hot_pixels = Scalar(int, "number of hot pixels")


class DomeFlatFrame(Frame, CalFile, ProcessTarget):
    dimensions: ClassVar[tuple[str, ...]] = ("instrument", "chip", "filter", "night")
    raw_dome_flat_frames = Ref("RawDomeFlatFrame", many=True)
    bias = Ref("BiasFrame")
    hot = Ref("HotPixelMap")


class ColdPixelMap(Frame, CalFile, ProcessTarget):
    dimensions: ClassVar[tuple[str, ...]] = ("instrument", "chip", "filter", "night")
    flat = Ref("DomeFlatFrame")
    cold_pixels = Scalar(int, "number of cold pixels")


class TwilightFlatFrame(Frame, CalFile, ProcessTarget):
    dimensions: ClassVar[tuple[str, ...]] = ("instrument", "chip", "filter", "night")
    raw_twilight_flat_frames = Ref("RawTwilightFlatFrame", many=True)
    bias = Ref("BiasFrame")
    hot = Ref("HotPixelMap")


class MasterFlatFrame(Frame, CalFile, ProcessTarget):
    dimensions: ClassVar[tuple[str, ...]] = ("instrument", "chip", "filter", "night")
    dome = Ref("DomeFlatFrame")
    twilight = Ref("TwilightFlatFrame")


class PhotometricParameters(CalFile, ProcessTarget):
    """The night's zeropoint from its standard fields: each standard frame's astrometry
    (which leads to its reduced frame) matched to the reference catalogue's magnitudes."""
    dimensions: ClassVar[tuple[str, ...]] = ("instrument", "chip", "filter", "night")

    chip = Ref("Chip")
    filter = Ref("Filter")
    astrom = Ref("AstrometricParameters", many=True)
    refcat = Ref("ReferenceCatalog")
    zeropoint = Scalar(float, "magnitude giving 1 e-/s above the atmosphere", unit="mag")
    zeropoint_error = Scalar(float, unit="mag")
    extinction = Scalar(float, unit="mag/airmass")
    n_stars = Scalar(int, "standard stars used")


# -- science ------------------------------------------------------------------------------
class ReducedScienceFrame(Frame, ProcessTarget):
    dimensions: ClassVar[tuple[str, ...]] = ("instrument", "chip", "filter", "night", "raw")
    raw = Ref("RawScienceFrame")
    bias = Ref("BiasFrame")
    flat = Ref("MasterFlatFrame")
    hot = Ref("HotPixelMap")
    cold = Ref("ColdPixelMap")
    weight_filename = Scalar(str, "weight map in storage")
    weight_checksum = Scalar(str, "sha256 of the stored weight map")


class AstrometricParameters(ProcessTarget):
    """A TAN WCS fitted to the reference catalogue: replaces the telescope's pointing."""
    dimensions: ClassVar[tuple[str, ...]] = ("instrument", "chip", "filter", "night", "raw")

    chip = Ref("Chip")
    filter = Ref("Filter")
    reduced = Ref("ReducedScienceFrame")
    refcat = Ref("ReferenceCatalog")
    rms = Scalar(float, "residual of the fit", unit="arcsec")
    uncertainty = Scalar(float, "how far the solution itself may be off", unit="arcsec")
    n_matched = Scalar(int)
    crval1 = Scalar(float, unit="deg")
    crval2 = Scalar(float, unit="deg")
    crpix1 = Scalar(float, unit="pix")
    crpix2 = Scalar(float, unit="pix")
    cd1_1 = Scalar(float, unit="deg/pix")
    cd1_2 = Scalar(float, unit="deg/pix")
    cd2_1 = Scalar(float, unit="deg/pix")
    cd2_2 = Scalar(float, unit="deg/pix")
    pointing_offset = Scalar(float, "fitted centre minus the header's", unit="arcsec")

    @property
    def wcs(self) -> WCS:
        """The fitted WCS as an astropy WCS (pixel coordinates of the reduced frame)."""
        return wcs_from_attributes({k: getattr(self, k) for k in WCS_KEYS})


class SourceList(DataObject, ProcessTarget):
    dimensions: ClassVar[tuple[str, ...]] = ("instrument", "chip", "filter", "night", "raw")
    chip = Ref("Chip")
    filter = Ref("Filter")
    frame = Ref("ReducedScienceFrame")
    astrom = Ref("AstrometricParameters")
    photom = Ref("PhotometricParameters")
    number_of_sources = Scalar(int)
    seeing = Scalar(float, "FWHM of the stars: twice their median half-light radius",
                    unit="arcsec")


# -- survey products: over a sky tile, across nights and chips (awecore.tiles) ------------
class TileAstrometry(DataObject, ProcessTarget):
    """One astrometric solution for every exposure and chip that overlaps a sky tile: the
    per-chip solutions corrected jointly, so that a star seen on several chips and
    exposures lands on one position (and on the reference catalogue's). The file is a table
    with one row per reduced frame (its corrected WCS); the residuals are attributes."""
    dimensions: ClassVar[tuple[str, ...]] = ("instrument", "filter", "tile")

    instrument = Ref("Instrument")
    filter = Ref("Filter")
    tile = Scalar(str, "sky tile name, e.g. KIDS_150.1_2.0 (awecore.tiles)")
    astrom = Ref("AstrometricParameters", many=True)
    refcat = Ref("ReferenceCatalog")
    n_frames = Scalar(int)
    n_pairs = Scalar(int, "matched pairs of one star on two frames")
    rms_overlap_before = Scalar(float, "per-chip solutions, on the overlaps", unit="arcsec")
    rms_overlap = Scalar(float, "the joint solution, on the overlaps", unit="arcsec")
    rms_reference_before = Scalar(float, "per-chip solutions, to the reference", unit="arcsec")
    rms_reference = Scalar(float, "the joint solution, to the reference", unit="arcsec")
    pixel_scale = Scalar(float, "of the tile's grid: the instrument's", unit="arcsec")


class TilePhotometry(DataObject, ProcessTarget):
    """Relative zeropoints of every exposure and chip on a sky tile from the stars they
    share (least squares, as ubercal), anchored to the nights' standard-star zeropoints. The
    file is a table with one row per reduced frame; the residuals are attributes."""
    dimensions: ClassVar[tuple[str, ...]] = ("instrument", "filter", "tile")

    instrument = Ref("Instrument")
    filter = Ref("Filter")
    tile = Scalar(str, "sky tile name")
    astrom = Ref("TileAstrometry")
    sourcelists = Ref("SourceList", many=True)
    n_frames = Scalar(int)
    n_stars = Scalar(int, "stars measured on two frames or more")
    shift = Scalar(float, "the common level moved to the clearest exposure's (clouds only "
                          "dim): the mean cloud loss", unit="mag")
    rms = Scalar(float, "residual of the overlaps after the fit", unit="mag")


class RegriddedFrame(Frame, ProcessTarget):
    """A reduced frame resampled onto its sky tile's grid (only the part it covers: the
    file's WCS places it), its flux scaled to the coadd's zeropoint, its weights with it."""
    dimensions: ClassVar[tuple[str, ...]] = ("instrument", "chip", "filter", "night", "raw",
                                             "tile")
    reduced = Ref("ReducedScienceFrame")
    astrom = Ref("TileAstrometry")
    photom = Ref("TilePhotometry")
    tile = Scalar(str, "sky tile name")
    x0 = Scalar(int, "first column of the tile's grid this frame covers", unit="pix")
    y0 = Scalar(int, "first row of the tile's grid this frame covers", unit="pix")
    zeropoint = Scalar(float, "magnitude of 1 unit of pixel value (common to a tile)",
                       unit="mag")
    flux_scale = Scalar(float, "what the reduced frame's ADU were multiplied by")
    pixel_area_ratio = Scalar(float, "tile pixel area over the chip's")
    background = Scalar(float, "sky level subtracted before resampling", unit="adu")
    poisson = Scalar(float, "a source's photon-noise variance per unit of pixel value")
    weight_filename = Scalar(str, "weight map in storage")
    weight_checksum = Scalar(str, "sha256 of the stored weight map")


class CoaddedRegriddedFrame(Frame, ProcessTarget):
    """Every regridded frame of a tile and filter, across nights and chips, stacked: the
    inverse-variance weighted mean with outliers across exposures rejected. The file holds
    the image and an exposure-count map (extension COUNT); the weights are beside it."""
    dimensions: ClassVar[tuple[str, ...]] = ("instrument", "filter", "tile")
    regridded_frames = Ref("RegriddedFrame", many=True)
    tile = Scalar(str, "sky tile name")
    zeropoint = Scalar(float, "magnitude of 1 unit of pixel value", unit="mag")
    n_frames = Scalar(int, "regridded frames stacked")
    noise = Scalar(float, "background rms where every frame overlaps")
    depth = Scalar(float, "5-sigma point-source limit", unit="mag")
    n_rejected = Scalar(int, "values rejected as outliers (cosmic rays, trails, ...)")
    footprint = Scalar(str, "corners of the coadd's grid on the sky: 'ra dec;ra dec;ra dec;"
                            "ra dec' (deg)")
    poisson = Scalar(float, "a source's photon-noise variance per unit of pixel value")
    weight_filename = Scalar(str, "weight map in storage")
    weight_checksum = Scalar(str, "sha256 of the stored weight map")


class CoaddSourceList(SourceList):
    """The sources of a coadd: in the source table like a frame's, ``Source`` queries and
    cone searches find them."""
    dimensions: ClassVar[tuple[str, ...]] = ("instrument", "filter", "tile")
    frame = Ref("CoaddedRegriddedFrame")
    tile = Scalar(str, "sky tile name")
    depth = Scalar(float, "5-sigma point-source limit of the coadd", unit="mag")
