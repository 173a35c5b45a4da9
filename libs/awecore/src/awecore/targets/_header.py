"""The FITS header of a product: what makes its file stand on its own once downloaded.

A file that carries only its oid cannot be overlaid on the sky, nor told apart from another
night's. So every product with pixels carries, beside the cards its recipe wrote (a coadd's
tile WCS, units, zeropoint):

* **where on the sky**: a recipe's own WCS (regridded frames and coadds: the tile's grid)
  wins; a product on one science exposure's pixels (a reduced frame) gets its raw frame's
  WCS, moved for the trimmed prescan (the telescope's pointing: approximate, ``AWEWCS =
  'raw'``; the fitted one is its AstrometricParameters', made after the file is written);
* **what was observed**: DATE-OBS, MJD-OBS, EXPTIME, FILTER, OBJECT, INSTRUME, AIRMASS and
  GAIN of the raw frame behind it (the earliest, when several are: a calibration's), as
  ingest's header translators read them into the raw frame's record, so every camera's
  conventions (ESO HIERARCH, NOAO, the simulator's) come out as the same standard keywords;
  a product that says otherwise itself (a coadd: the summed exposure time, the first date,
  the tile as its object) wins;
* **what the pixels are**: BUNIT, and the zeropoint where known (MAGZP, PHOTZP);
* **where it came from**: AWEOID, AWETYPE, AWEVERS (software version), AWEINnnn (each input's
  oid, its reference name as the comment) and AWEPARS (the process parameters, as JSON).

Every card is a function of the product's inputs and parameters only (no time of writing):
a retried job writes the very same bytes, which storage accepts again.
"""

from __future__ import annotations

import datetime as dt
import json
import warnings
from typing import TYPE_CHECKING, Any

from astropy.io import fits
from astropy.time import Time
from astropy.wcs import WCS

from ..errors import NotFound
from ..model import ObjectOut, RawFrame, RawScienceFrame, ReferenceCatalog, registry
from ..pipelines import SOFTWARE_VERSION
from ._recipes import trimmed_header

if TYPE_CHECKING:
    from ._plan import Node
    from ._recipes import Loader, Made

__all__ = ["DESCRIPTIVE", "MAX_INPUT_CARDS", "header_cards", "observed_attributes",
           "product_header", "raws_behind"]

#: references that say what a product is for, not what it was made from
DESCRIPTIVE = frozenset({"chip", "filter", "instrument"})
#: AWEIN001 .. AWEIN999
MAX_INPUT_CARDS = 999
#: process parameters longer than this (as JSON) are left to the catalogue's record
_MAX_PARAMS = 400
#: how many products deep the raw frame behind a product is looked for
_DEPTH = 5

#: what the pixels of the chain's classes are (a recipe's own BUNIT wins)
_BUNIT = {"BiasFrame": ("adu", "overscan-corrected counts"),
          "ReducedScienceFrame": ("adu", "bias-subtracted, flat-fielded counts"),
          "DomeFlatFrame": ("", "normalised response (dimensionless)"),
          "TwilightFlatFrame": ("", "normalised response (dimensionless)"),
          "MasterFlatFrame": ("", "normalised response (dimensionless)"),
          "HotPixelMap": ("", "1 where a pixel is hot"),
          "ColdPixelMap": ("", "1 where a pixel is cold")}

Card = tuple[Any, str]
#: the cards of the observation (``_observing``), and the times a WCS header carries
_OBSERVING = frozenset({"DATE-OBS", "MJD-OBS", "EXPTIME", "FILTER", "OBJECT", "INSTRUME",
                        "AIRMASS", "GAIN", "DATEREF", "MJDREF", "MJDREFI", "MJDREFF"})


def _oids(value: str | list[str]) -> list[str]:
    return value if isinstance(value, list) else [value]


def _ascii(text: object) -> str:
    """A FITS string value: printable ASCII (anything else replaced)."""
    return "".join(c if 32 <= ord(c) < 127 else "?" for c in str(text))


def _record(loader: Loader, oid: str) -> ObjectOut | None:
    try:
        return loader.record(oid)
    except NotFound:
        return None


def raws_behind(cls: str, refs: dict[str, str | list[str]], loader: Loader,
                depth: int = _DEPTH) -> tuple[list[ObjectOut], bool]:
    """The raw frames a product was made from: its own raw inputs, else those of its first
    product input (in the order its class declares them), and so on down. Returns them and
    whether they are the product's own inputs (not found further down)."""
    fields = registry.get(cls).ref_fields() if cls in registry else {}
    own = [name for name, f in fields.items()
           if name in refs and issubclass(f.target, RawFrame)]
    if own:
        found = [r for name in own for o in _oids(refs[name])
                 if (r := _record(loader, o)) is not None]
        return found, True
    if depth <= 0:
        return [], False
    for name, f in fields.items():
        if name in DESCRIPTIVE or name not in refs or issubclass(f.target, ReferenceCatalog):
            continue
        oids = _oids(refs[name])
        below = _record(loader, oids[0]) if oids else None
        if below is None:
            continue
        found, _ = raws_behind(below.type, dict(below.refs), loader, depth - 1)
        if found:
            return found, False
    return [], False


def _when(text: object) -> Time | None:
    try:
        when = dt.datetime.fromisoformat(str(text))
    except ValueError:
        return None
    if when.tzinfo is not None:
        when = when.astimezone(dt.UTC).replace(tzinfo=None)
    return Time(when, scale="utc")


def _name_of(loader: Loader, oid: str | list[str] | None) -> str | None:
    if not isinstance(oid, str):
        return None
    record = _record(loader, oid)
    name = record.attributes.get("name") if record is not None else None
    return str(name) if name else None


def _instrument(refs: dict[str, str | list[str]], raw: ObjectOut | None,
                loader: Loader) -> str | None:
    """The instrument's name: the product's own reference, else its chip's, else its raw
    frame's."""
    for where in (refs, None if raw is None else raw.refs):
        if where is None:
            continue
        name = _name_of(loader, where.get("instrument"))
        if name:
            return name
        chip = where.get("chip")
        chip_record = _record(loader, chip) if isinstance(chip, str) else None
        if chip_record is not None:
            name = _name_of(loader, chip_record.refs.get("instrument"))
            if name:
                return name
    return None


def _raw_wcs(raw: ObjectOut, loader: Loader) -> dict[str, Any]:
    """A raw frame's WCS for its trimmed pixels, as clean standard cards; none when its
    header has no celestial WCS."""
    if not raw.filename:
        return {}
    header = trimmed_header(loader.hdus(str(raw.filename))[0].header, raw)
    if "CTYPE1" not in header:
        return {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # non-standard cards of a camera's own
        try:
            wcs = WCS(header, naxis=2)
        except (ValueError, KeyError, TypeError, MemoryError):
            return {}
        if not wcs.has_celestial:
            return {}
        return {k: (v, header.comments[k] if k in header else "")
                for k, v in wcs.to_header(relax=True).items()
                if k not in _OBSERVING}


def _observing(raws: list[ObjectOut], refs: dict[str, str | list[str]], loader: Loader,
               filter: str | None, attributes: dict[str, Any]) -> dict[str, Card]:
    raw = min(raws, key=lambda r: str(r.attributes.get("date_obs") or "")) if raws else None
    a = dict(raw.attributes) if raw is not None else {}
    combined = "n_frames" in attributes  # a stack of exposures: its own date and time
    for key in ("date_obs", "exptime", "object"):
        if attributes.get(key) is not None:
            a[key] = attributes[key]
    cards: dict[str, Card] = {}
    when = _when(a["date_obs"]) if a.get("date_obs") else None
    if when is not None:
        cards["DATE-OBS"] = (when.isot, "start of the (first) exposure, UTC")
        cards["MJD-OBS"] = (round(float(when.mjd), 8), "DATE-OBS as a modified Julian date")
    if a.get("exptime") is not None:
        cards["EXPTIME"] = (float(a["exptime"]),
                            "total exposure time [s]" if combined else "exposure time [s]")
    filter_name = filter or _name_of(loader, refs.get("filter"))
    if filter_name:
        cards["FILTER"] = (_ascii(filter_name), "filter name")
    if a.get("object"):
        cards["OBJECT"] = (_ascii(a["object"]), "target (of a coadd: its sky tile)")
    instrument = _instrument(refs, raw, loader)
    if instrument:
        cards["INSTRUME"] = (_ascii(instrument), "instrument")
    if a.get("airmass") is not None and not combined:
        cards["AIRMASS"] = (float(a["airmass"]), "airmass at the start of the exposure")
    poisson = attributes.get("poisson")
    if poisson:
        cards["GAIN"] = (round(1.0 / float(poisson), 6),
                         "effective gain: electrons per unit of pixel value")
    elif a.get("gain") is not None:
        cards["GAIN"] = (float(a["gain"]), "electrons per ADU")
    return cards


def _provenance(node: Node, refs: dict[str, str | list[str]], oid: str) -> dict[str, Card]:
    cards: dict[str, Card] = {"AWEOID": (oid, "this object's id in the AWE catalogue"),
                              "AWETYPE": (node.cls, "its class"),
                              "AWEVERS": (SOFTWARE_VERSION, "AWE software version")}
    inputs = [(name, o) for name, value in refs.items() if name not in DESCRIPTIVE
              for o in _oids(value)]
    cards["AWENIN"] = (len(inputs), "inputs (AWEINnnn, reference name as comment)")
    for i, (name, o) in enumerate(inputs[:MAX_INPUT_CARDS], start=1):
        cards[f"AWEIN{i:03d}"] = (o, _ascii(name))
    if node.params:
        text = json.dumps(node.params, sort_keys=True, separators=(",", ":"), default=str)
        if len(text) <= _MAX_PARAMS:
            cards["AWEPARS"] = (_ascii(text), "process parameters (JSON)")
    return cards


def observed_attributes(cls: str, refs: dict[str, str | list[str]],
                        loader: Loader) -> dict[str, Any]:
    """What a product on one science exposure's pixels (a reduced frame) records of its
    exposure, where its class has the fields: its date, exposure time and object, so that
    a query (or the VO's ObsCore) finds it by them without reaching for the raw frame."""
    fields = registry.get(cls).fields if cls in registry else {}
    wanted = [k for k in ("date_obs", "exptime", "object") if k in fields]
    if not wanted:
        return {}
    raws, own = raws_behind(cls, refs, loader)
    if not own or len(raws) != 1 or not issubclass(registry.get(raws[0].type),
                                                   RawScienceFrame):
        return {}
    return {k: raws[0].attributes[k] for k in wanted
            if raws[0].attributes.get(k) is not None}


def product_header(node: Node, refs: dict[str, str | list[str]], loader: Loader,
                   made: Made, oid: str) -> dict[str, Any]:
    """The cards of a product's primary header (see the module's docstring), in order:
    identity, observation, units and zeropoint, WCS, the recipe's own, inputs."""
    raws, own = raws_behind(node.cls, refs, loader)
    cards: dict[str, Any] = {}
    provenance = _provenance(node, refs, oid)
    for key in ("AWEOID", "AWETYPE", "AWEVERS"):
        cards[key] = provenance.pop(key)
    cards.update(_observing(raws, refs, loader, node.filter, made.attributes))
    if node.cls in _BUNIT:
        cards["BUNIT"] = _BUNIT[node.cls]
    zeropoint = made.attributes.get("zeropoint")
    if zeropoint is not None and node.cls != "PhotometricParameters":
        cards["MAGZP"] = (float(zeropoint), "magnitude of one unit of pixel value")
        cards["PHOTZP"] = (float(zeropoint), "magnitude of one unit of pixel value")
    if "CTYPE1" not in made.header and own and len(raws) == 1 \
            and issubclass(registry.get(raws[0].type), RawScienceFrame):
        wcs = _raw_wcs(raws[0], loader)
        if wcs:
            cards["AWEWCS"] = ("raw", "WCS of the raw header (the telescope's pointing)")
            cards.update(wcs)
    elif "CTYPE1" in made.header:
        cards["AWEWCS"] = ("tile" if "AWETILE" in made.header else "fitted",
                           "WCS of the product's own grid")
    # the observation is said once, above: a recipe says its own through its attributes
    # (a coadd's date and exposure time); a WCS it copied from an input's header would
    # bring that input's DATE-OBS and MJD-OBS
    cards.update({k: v for k, v in made.header.items() if k not in _OBSERVING})
    cards.update(provenance)
    return cards


def header_cards(cards: dict[str, Any]) -> fits.Header:
    """The cards as a FITS header (a value may be a (value, comment) pair); None left out."""
    header = fits.Header()
    for key, value in cards.items():
        value, comment = value if isinstance(value, tuple) else (value, "")
        if value is None:
            continue
        header[key] = (value, _fitted(key, value, str(comment)))
    return header


def _fitted(key: str, value: Any, comment: str) -> str:
    """A comment cut to what is left of the card's 80 characters (astropy would warn)."""
    if not comment:
        return ""
    image = fits.Card(key, value).image
    # a value fills at least 30 columns before its comment's " / "
    room = 80 - max(len(image.rstrip()), 30) - 3
    return comment[:room] if len(image) <= 80 and room > 0 else ""
