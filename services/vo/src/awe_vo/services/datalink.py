"""DataLink documents: for each identifier, what can be had of that object.

* ``#this``: the object's file (through this service, which reads it from storage as the
  caller, so the same privilege rule applies to the bytes);
* ``#weight``: its weight map, where it has one;
* ``#preview``: a PNG of the image (for images);
* ``#cutout``: the SODA service, described in the document itself (a service descriptor
  RESOURCE with the dataset's ID filled in, and the CIRCLE and POLYGON parameters), so that
  pyvo's ``processed(circle=...)`` finds it;
* ``#progenitor``: each input it was made from (its references), as that input's own
  DataLink document; ``#derivation``: what was made from it.

Inputs and products the caller may not see are left out (nothing hints that they exist);
an identifier that names nothing the caller may see gets a row with a ``NotFoundFault``
error message, as DataLink says (the document itself is still 200).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import asyncpg
from astropy.io.votable.tree import Group, Param, Resource, VOTableFile

from awecore.model import registry
from awecore.visibility import Viewer

from ..storage.dal import derived_rows, input_rows, target_rows
from ..tables import parse_did, publisher_did
from ..votable import Field, rows_votable

__all__ = ["DATALINK_TYPE", "FIELDS", "SODA_SYNC", "Link", "Target", "datalink_document",
           "find_links", "is_fits", "target"]

DATALINK_TYPE = "application/x-votable+xml;content=datalink"
SODA_SYNC = "ivo://ivoa.net/std/SODA#sync-1.0"
#: most derived products listed per object (a raw calibration frame feeds thousands)
MAX_DERIVED = 100

FIELDS = (
    Field("ID", "char", "Input identifier", ucd="meta.id;meta.main"),
    Field("access_url", "char", "Link to data or a service", ucd="meta.ref.url"),
    Field("service_def", "char", "Reference to a service descriptor resource",
          ucd="meta.ref"),
    Field("error_message", "char", "Why no link could be made", ucd="meta.code.error"),
    Field("description", "char", "What the link gives", ucd="meta.note"),
    Field("semantics", "char", "Term from the DataLink vocabulary", ucd="meta.code"),
    Field("content_type", "char", "Media type of what the link returns",
          ucd="meta.code.mime"),
    Field("content_length", "long", "Size of what the link returns", unit="byte",
          ucd="phys.size;meta.file"),
)


@dataclass(frozen=True)
class Target:
    """An object the caller may see, as far as links need it."""

    oid: str
    type: str
    site: str
    filename: str | None
    file_size: int | None
    weight: str | None
    image: bool
    """a frame (pixels: a preview)"""
    sky: bool
    """a frame of the sky, not a calibration (cutouts by sky region)"""

    @property
    def did(self) -> str:
        return publisher_did(self.site, self.oid)


@dataclass(frozen=True)
class Link:
    id: str
    access_url: str | None = None
    service_def: str | None = None
    error_message: str | None = None
    description: str | None = None
    semantics: str | None = None
    content_type: str | None = None
    content_length: int | None = None


def is_fits(filename: str | None) -> bool:
    if not filename:
        return False
    return filename.lower().rsplit("/", 1)[-1].split(".", 1)[-1] in (
        "fits", "fit", "fts", "fits.gz", "fits.fz")


def _mime(filename: str) -> str:
    return "application/fits" if is_fits(filename) else "application/octet-stream"


def _kind(type_: str, filename: str | None) -> tuple[bool, bool]:
    """Whether objects of class ``type_`` are images, and images of the sky (the model
    says: frames; calibration frames are not cut by sky regions)."""
    if type_ not in registry or not is_fits(filename):
        return False, False
    cls = registry.get(type_)
    image = issubclass(cls, registry.get("Frame"))
    return image, image and not issubclass(cls, registry.get("CalFile"))


def _target(row: asyncpg.Record) -> Target:
    image, sky = _kind(row["type"], row["filename"])
    return Target(row["oid"], row["type"], row["site"], row["filename"], row["file_size"],
                  row["weight"], image, sky)


async def target(conn: asyncpg.Connection, viewer: Viewer, oid: str) -> Target | None:
    """The object ``oid`` if the caller may see it."""
    rows = await target_rows(conn, viewer, [oid])
    return _target(rows[0]) if rows else None


async def find_links(conn: asyncpg.Connection, viewer: Viewer, ids: list[str],
                     base: str) -> tuple[list[Link], dict[str, str]]:
    """The links of every identifier, in the order asked, each identifier's consecutive;
    and the cutout services they name (service_def -> the dataset's DID)."""
    oids = {i: parse_did(i) for i in ids}
    wanted = sorted({o for o in oids.values() if o})
    targets = {r["oid"]: _target(r) for r in await target_rows(conn, viewer, wanted)}
    seen = list(targets)
    inputs: dict[str, list[asyncpg.Record]] = {}
    derived: dict[str, list[asyncpg.Record]] = {}
    if seen:
        for r in await input_rows(conn, viewer, seen):
            inputs.setdefault(r["oid"], []).append(r)
        for r in await derived_rows(conn, viewer, seen, MAX_DERIVED):
            derived.setdefault(r["oid"], []).append(r)
    links: list[Link] = []
    for given in ids:
        oid = oids[given]
        if oid is None:
            links.append(Link(given, error_message=(
                "UsageFault: not an identifier of this service (expected "
                "ivo://awe.<site>/obj?<oid> or an oid)")))
            continue
        t = targets.get(oid)
        if t is None:
            links.append(Link(given, error_message=f"NotFoundFault: {given}"))
            continue
        links.extend(_links_of(given, t, inputs.get(oid, []), derived.get(oid, []), base))
    soda = {f"soda-{t.oid}": t.did for t in targets.values() if t.sky}
    return links, soda


def _dl(base: str, site: str, oid: str) -> str:
    return f"{base}/datalink?ID={quote(publisher_did(site, oid), safe='')}"


def _links_of(given: str, t: Target, inputs: list[asyncpg.Record],
              derived: list[asyncpg.Record], base: str) -> list[Link]:
    out: list[Link] = []
    if t.filename:
        out.append(Link(given, f"{base}/datalink/file/{t.oid}",
                        description=f"the {t.type}'s file", semantics="#this",
                        content_type=_mime(t.filename), content_length=t.file_size))
    if t.weight:
        out.append(Link(given, f"{base}/datalink/weight/{t.oid}",
                        description="its weight map (inverse variance)", semantics="#weight",
                        content_type=_mime(t.weight)))
    if t.image:
        out.append(Link(given, f"{base}/datalink/preview/{t.oid}",
                        description="a preview image (PNG)", semantics="#preview",
                        content_type="image/png"))
    if t.sky:
        out.append(Link(given, service_def=f"soda-{t.oid}",
                        description="cutouts of the image (SODA: CIRCLE or POLYGON)",
                        semantics="#cutout", content_type="application/fits"))
    for r in inputs:
        out.append(Link(given, _dl(base, r["site"], r["other"]),
                        description=f"input {r['name']}: {r['type']} {r['other']}",
                        semantics="#progenitor", content_type=DATALINK_TYPE))
    for r in derived:
        out.append(Link(given, _dl(base, r["site"], r["other"]),
                        description=f"made from it: {r['type']} {r['other']} (as {r['name']})",
                        semantics="#derivation", content_type=DATALINK_TYPE))
    return out


def _text_param(vot: VOTableFile, name: str, value: str, **extra: Any) -> Param:
    return Param(vot, name=name, datatype="char", arraysize="*", value=value, **extra)


def _soda_descriptor(vot: VOTableFile, t_id: str, did: str, base: str) -> Resource:
    """The SODA sync service for one dataset, as DataLink 1.0 section 4 describes."""
    resource = Resource(type="meta", utype="adhoc:service", ID=t_id)
    resource.params.append(_text_param(vot, "standardID", SODA_SYNC))
    resource.params.append(_text_param(vot, "accessURL", f"{base}/soda"))
    group = Group(resource, name="inputParams")
    group.entries.append(_text_param(vot, "ID", did, ucd="meta.id;meta.dataset"))
    group.entries.append(Param(vot, name="CIRCLE", datatype="double", arraysize="3",
                               xtype="circle", unit="deg", ucd="phys.angArea;obs", value="",
                               ID=f"{t_id}-circle"))
    group.entries.append(Param(vot, name="POLYGON", datatype="double", arraysize="*",
                               xtype="polygon", unit="deg", ucd="pos.outline;obs", value="",
                               ID=f"{t_id}-polygon"))
    resource.groups.append(group)
    return resource


def datalink_document(links: list[Link], soda: dict[str, str], base: str) -> VOTableFile:
    """The DataLink VOTable of ``links``; ``soda`` maps each cutout service_def to the
    dataset's DID (``find_links`` gives both)."""
    vot = rows_votable(FIELDS, [(lk.id, lk.access_url, lk.service_def, lk.error_message,
                                 lk.description, lk.semantics, lk.content_type,
                                 lk.content_length) for lk in links], name="links")
    for service_def in dict.fromkeys(lk.service_def for lk in links if lk.service_def):
        assert service_def is not None
        vot.resources.append(_soda_descriptor(vot, service_def, soda[service_def], base))
    return vot
