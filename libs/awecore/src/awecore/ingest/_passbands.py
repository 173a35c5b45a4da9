"""The passbands of well-known filters, so that a filter met at ingest records where it
lets light through (the Virtual Observatory's ObsCore gives every image its band,
``em_min``/``em_max``).

A camera names its filters its own way (``r_SDSS``, ``SDSS r'``, ``Rc``, ``I``): the name is
reduced to its band letter and family, and looked up here. A name not recognised keeps no
wavelengths (an observatory's own filter numbers, such as ESO's, say nothing by
themselves): better empty than wrong. Values: centre and full width at half maximum, in nm.
"""

from __future__ import annotations

import re

__all__ = ["PASSBANDS", "passband"]

#: (family, band) -> (central wavelength, FWHM) in nm
PASSBANDS: dict[tuple[str, str], tuple[float, float]] = {
    # SDSS ugriz (and the OmegaCAM / DECam-like filters built on them)
    ("sdss", "u"): (354.3, 57.0),
    ("sdss", "g"): (477.0, 137.0),
    ("sdss", "r"): (623.1, 137.0),
    ("sdss", "i"): (762.5, 153.0),
    ("sdss", "z"): (913.4, 95.0),
    # Johnson-Cousins
    ("johnson", "u"): (365.0, 66.0),
    ("johnson", "b"): (445.0, 94.0),
    ("johnson", "v"): (551.0, 88.0),
    ("johnson", "r"): (658.0, 138.0),
    ("johnson", "i"): (806.0, 149.0),
}

_SDSS = re.compile(r"^(?:sdss[ _-]*)?([ugriz])(?:'|_?prime)?(?:[ _-]*sdss)?$")
_JOHNSON = re.compile(r"^(?:johnson[ _-]*|cousins[ _-]*|bessel[l]?[ _-]*)?([ubvri])(?:c)?$")


def passband(name: str) -> tuple[float, float] | None:
    """(central wavelength, FWHM) in nm of a filter by its name, or None if not known.
    Lower-case letters (and ``r'``, ``r_SDSS``) are SDSS; capitals (``B``, ``Rc``) are
    Johnson-Cousins, as astronomers write them."""
    text = name.strip()
    sdss = _SDSS.match(text.lower())
    if sdss and (text[:1].islower() or "sdss" in text.lower()):
        return PASSBANDS[("sdss", sdss.group(1))]
    johnson = _JOHNSON.match(text.lower())
    if johnson and (text[:1].isupper() or text.lower().startswith(("johnson", "cousins",
                                                                   "bessel"))):
        return PASSBANDS[("johnson", johnson.group(1))]
    return None
