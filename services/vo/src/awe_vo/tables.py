"""The tables the VO service exposes, each once: its name, description, columns (datatype,
unit, UCD) and the SQL over the catalog's own tables that produces it.

TAP_SCHEMA, the VOSI ``tables`` document, the ADQL compiler's whitelist and the VOTable
FIELDs are all read from here, so they cannot disagree. Each table's SQL is a sub-select
that already applies the privilege rule of ``awecore.visibility`` to every row (the
viewer's values bound as parameters), so no query over it can reach a row its caller may
not see, whatever ADQL it was compiled from.

* ``ivoa.obscore``: one row per published image product (reduced frames, regridded frames,
  coadds) that has a file; position and footprint from the raw frame's ``footprint`` (the
  corners of its pixels on the sky), time from ``date_obs`` and ``exptime``, wavelength from
  the filter; ``access_url`` is the product's DataLink document.
* ``awe.sources``: the source table, with its HEALPix index (nested, order 14) which the
  geometry functions use as a prefilter.
* ``awe.<class>``: the main object classes, one column per scalar attribute and one
  ``<ref>_oid`` column per single reference.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote

from awecore.model import COLUMNS, Ref, Scalar, registry
from awecore.visibility import Bind, Columns, Viewer, visible_sql

from .votable import Field

__all__ = ["OBSCORE", "PRODUCT_CLASSES", "SOURCES", "TABLES", "TAP_SCHEMA", "SourceSpec",
           "TableDef", "by_name", "parse_did", "publisher_did"]

#: the classes whose objects are image products in ObsCore, and their calibration level
PRODUCT_CLASSES = {"ReducedScienceFrame": 2, "RegriddedFrame": 2, "CoaddedRegriddedFrame": 3}
_UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")


def publisher_did(site: str, oid: str) -> str:
    """The IVOA identifier of an object: ``ivo://awe.<site>/obj?<oid>``."""
    return f"ivo://awe.{site}/obj?{oid}"


def parse_did(text: str) -> str | None:
    """The oid in a publisher DID (``ivo://awe.<site>/obj?<oid>``, URL-encoded or not) or
    a bare oid; None if it is neither."""
    value = unquote(text.strip())
    if value.startswith("ivo://"):
        _, sep, value = value.partition("?")
        if not sep:
            return None
    value = value.lower()
    return value if _UUID.match(value) else None


@dataclass(frozen=True)
class SourceSpec:
    """What a table's SQL is made for: the caller and this service's public URL."""

    viewer: Viewer
    bind: Bind
    base_url: str
    oids: Sequence[str] | None = None
    """only these objects (ObsCore: SIA's candidates from its footprint index, found by
    the primary key instead of a scan of every product); None: all"""


@dataclass(frozen=True)
class TableDef:
    schema: str
    name: str
    description: str
    fields: tuple[Field, ...]
    #: the sub-select producing the table (columns named as ``fields``), privileges applied
    sql: Callable[[SourceSpec], str]
    #: (ra, dec, healpix) columns of a position indexed by HEALPix (nested, order 14)
    healpix: tuple[str, str, str] | None = None
    #: (ra, dec) columns of a position that has no index (exact tests only)
    position: tuple[str, str] | None = None
    #: (ra, dec, fov) of a region approximated by its centre and diameter (ObsCore)
    region: tuple[str, str, str, str] | None = None
    utype: str | None = None

    @property
    def qualified(self) -> str:
        return f"{self.schema}.{self.name}"

    def field(self, name: str) -> Field | None:
        for f in self.fields:
            if f.name == name:
                return f
        return None


def _visible(spec: SourceSpec, alias: str) -> str:
    return visible_sql(spec.viewer, spec.bind, Columns.at(alias))


# -- ivoa.obscore ----------------------------------------------------------------------------

_OBSCORE_FIELDS = (
    Field("dataproduct_type", "char", "Data product type (image)", ucd="meta.id",
          utype="obscore:ObsDataset.dataProductType", std=True, principal=True),
    Field("calib_level", "short", "Calibration level: 2 calibrated frame, 3 coadd",
          ucd="meta.code;obs.calib", utype="obscore:ObsDataset.calibLevel", std=True,
          principal=True),
    Field("obs_collection", "char", "Name of the data collection", ucd="meta.id",
          utype="obscore:DataID.Collection", std=True, principal=True),
    Field("obs_id", "char", "The product's AWE object id", ucd="meta.id",
          utype="obscore:DataID.observationID", std=True, principal=True),
    Field("obs_publisher_did", "char", "IVOA dataset identifier",
          ucd="meta.ref.ivoid", utype="obscore:Curation.PublisherDID", std=True,
          principal=True, indexed=True),
    Field("access_url", "char", "The product's DataLink document (file, cutouts, inputs)",
          ucd="meta.ref.url", utype="obscore:Access.Reference", std=True, principal=True),
    Field("access_format", "char", "Format of what access_url returns",
          ucd="meta.code.mime", utype="obscore:Access.Format", std=True, principal=True),
    Field("access_estsize", "long", "Estimated size of the file", unit="kbyte",
          ucd="phys.size;meta.file", utype="obscore:Access.Size", std=True, principal=True),
    Field("target_name", "char", "Object observed (OBJECT header)", ucd="meta.id;src",
          utype="obscore:Target.Name", std=True, principal=True),
    Field("s_ra", "double", "Right ascension of the image centre (ICRS)", unit="deg",
          ucd="pos.eq.ra", utype="obscore:Char.SpatialAxis.Coverage.Location.Coord."
          "Position2D.Value2.C1", std=True, principal=True),
    Field("s_dec", "double", "Declination of the image centre (ICRS)", unit="deg",
          ucd="pos.eq.dec", utype="obscore:Char.SpatialAxis.Coverage.Location.Coord."
          "Position2D.Value2.C2", std=True, principal=True),
    Field("s_fov", "double", "Diameter of the circle that holds the image", unit="deg",
          ucd="phys.angSize;instr.fov", utype="obscore:Char.SpatialAxis.Coverage.Bounds."
          "Extent.diameter", std=True, principal=True),
    Field("s_region", "char", "Footprint on the sky (STC-S polygon)",
          ucd="pos.outline;obs.field", utype="obscore:Char.SpatialAxis.Coverage.Support."
          "Area", xtype="adql:REGION", std=True, principal=True),
    Field("s_resolution", "double", "Pixel scale (spatial resolution upper bound)",
          unit="arcsec", ucd="pos.angResolution", utype="obscore:Char.SpatialAxis."
          "Resolution.Refval.value", std=True),
    Field("s_xel1", "long", "Pixels along the first axis", ucd="meta.number",
          utype="obscore:Char.SpatialAxis.numBins1", std=True),
    Field("s_xel2", "long", "Pixels along the second axis", ucd="meta.number",
          utype="obscore:Char.SpatialAxis.numBins2", std=True),
    Field("t_min", "double", "Start of the exposure", unit="d", ucd="time.start;obs.exposure",
          utype="obscore:Char.TimeAxis.Coverage.Bounds.Limits.StartTime", std=True,
          principal=True),
    Field("t_max", "double", "End of the exposure", unit="d", ucd="time.end;obs.exposure",
          utype="obscore:Char.TimeAxis.Coverage.Bounds.Limits.StopTime", std=True,
          principal=True),
    Field("t_exptime", "double", "Exposure time", unit="s", ucd="time.duration;obs.exposure",
          utype="obscore:Char.TimeAxis.Coverage.Support.Extent", std=True, principal=True),
    Field("t_resolution", "double", "Temporal resolution", unit="s",
          ucd="time.resolution", utype="obscore:Char.TimeAxis.Resolution.Refval.value",
          std=True),
    Field("t_xel", "long", "Samples along time", ucd="meta.number",
          utype="obscore:Char.TimeAxis.numBins", std=True),
    Field("em_min", "double", "Shortest wavelength (the filter's central one)", unit="m",
          ucd="em.wl;stat.min", utype="obscore:Char.SpectralAxis.Coverage.Bounds.Limits."
          "LoLimit", std=True, principal=True),
    Field("em_max", "double", "Longest wavelength (the filter's central one)", unit="m",
          ucd="em.wl;stat.max", utype="obscore:Char.SpectralAxis.Coverage.Bounds.Limits."
          "HiLimit", std=True, principal=True),
    Field("em_res_power", "double", "Spectral resolving power", ucd="spect.resolution",
          utype="obscore:Char.SpectralAxis.Resolution.ResolPower.refVal", std=True),
    Field("em_xel", "long", "Samples along the spectral axis", ucd="meta.number",
          utype="obscore:Char.SpectralAxis.numBins", std=True),
    Field("o_ucd", "char", "What the pixels measure", ucd="meta.ucd",
          utype="obscore:Char.ObservableAxis.ucd", std=True),
    Field("pol_states", "char", "Polarisation states", ucd="meta.code;phys.polarization",
          utype="obscore:Char.PolarizationAxis.stateList", std=True),
    Field("pol_xel", "long", "Polarisation samples", ucd="meta.number",
          utype="obscore:Char.PolarizationAxis.numBins", std=True),
    Field("facility_name", "char", "Telescope", ucd="meta.id;instr.tel",
          utype="obscore:Provenance.ObsConfig.Facility.name", std=True),
    Field("instrument_name", "char", "Instrument", ucd="meta.id;instr",
          utype="obscore:Provenance.ObsConfig.Instrument.name", std=True),
    Field("awe_class", "char", "The product's AWE class", ucd="meta.code.class"),
    Field("awe_filter", "char", "The filter's name", ucd="meta.id;instr.filter"),
    Field("awe_site", "char", "The AWE site that made the product", ucd="meta.id"),
)


def _haversine(ra1: str, dec1: str, ra2: str, dec2: str) -> str:
    """Great-circle distance in degrees between two positions given in degrees (stable at
    small angles, unlike the arccosine of a dot product)."""
    return (f"degrees(2 * asin(least(1.0, sqrt(power(sin(radians(({dec2}) - ({dec1})) / 2), 2)"
            f" + cos(radians({dec1})) * cos(radians({dec2}))"
            f" * power(sin(radians(({ra2}) - ({ra1})) / 2), 2)))))")


def _obscore_sql(spec: SourceSpec) -> str:
    base = spec.bind("base_url", spec.base_url)
    classes = ", ".join(f"'{c}'" for c in PRODUCT_CLASSES)
    levels = " ".join(f"WHEN '{c}' THEN {level}" for c, level in PRODUCT_CLASSES.items())
    did = "'ivo://awe.' || o.site || '/obj?' || o.oid::text"
    return (
        "SELECT 'image'::text AS dataproduct_type, "
        f"(CASE o.type {levels} END)::smallint AS calib_level, "
        "'AWE'::text AS obs_collection, o.oid::text AS obs_id, "
        f"{did} AS obs_publisher_did, "
        f"{base}::text || '/datalink?ID=ivo%3A%2F%2Fawe.' || o.site || '%2Fobj%3F' "
        "|| o.oid::text AS access_url, "
        "'application/x-votable+xml;content=datalink'::text AS access_format, "
        "(o.file_size / 1024)::bigint AS access_estsize, "
        "o.attributes ->> 'object' AS target_name, "
        "m.ra AS s_ra, m.dec AS s_dec, v.fov AS s_fov, "
        "CASE WHEN k.ras IS NULL THEN NULL ELSE 'POLYGON ICRS ' || v.corners END AS s_region, "
        "(i.attributes ->> 'pixel_scale')::float8 AS s_resolution, "
        "(o.attributes ->> 'nx')::bigint AS s_xel1, (o.attributes ->> 'ny')::bigint AS s_xel2, "
        "t.mjd AS t_min, t.mjd + coalesce((o.attributes ->> 'exptime')::float8, 0) / 86400.0 "
        "AS t_max, (o.attributes ->> 'exptime')::float8 AS t_exptime, "
        "NULL::float8 AS t_resolution, 1::bigint AS t_xel, "
        # the filter's passband: centre -/+ half its width (ingest knows common filters)
        "((f.attributes ->> 'central_wavelength')::float8 - coalesce((f.attributes ->> "
        "'bandwidth')::float8, 0) / 2) * 1e-9 AS em_min, "
        "((f.attributes ->> 'central_wavelength')::float8 + coalesce((f.attributes ->> "
        "'bandwidth')::float8, 0) / 2) * 1e-9 AS em_max, "
        "NULL::float8 AS em_res_power, 1::bigint AS em_xel, 'phot.count'::text AS o_ucd, "
        "NULL::text AS pol_states, NULL::bigint AS pol_xel, "
        "i.attributes ->> 'telescope' AS facility_name, "
        "i.attributes ->> 'name' AS instrument_name, o.type AS awe_class, "
        "f.attributes ->> 'name' AS awe_filter, o.site AS awe_site "
        "FROM objects o "
        "LEFT JOIN objects rd ON rd.oid = (o.refs ->> 'reduced')::uuid "
        "LEFT JOIN objects r ON r.oid = coalesce(o.refs ->> 'raw', rd.refs ->> 'raw')::uuid "
        "LEFT JOIN objects f ON f.oid = (o.refs ->> 'filter')::uuid "
        "LEFT JOIN objects i ON i.oid = (o.refs ->> 'instrument')::uuid "
        # the product's footprint (a coadd's own), else its raw frame's:
        # 'ra dec;ra dec;ra dec;ra dec' -> corner arrays
        "LEFT JOIN LATERAL (SELECT array_agg(split_part(btrim(u.p), ' ', 1)::float8 "
        "ORDER BY u.n) AS ras, array_agg(split_part(btrim(u.p), ' ', 2)::float8 ORDER BY u.n)"
        " AS decs FROM unnest(string_to_array(coalesce(o.attributes ->> 'footprint', "
        "r.attributes ->> 'footprint'), ';')) "
        "WITH ORDINALITY AS u(p, n) WHERE btrim(u.p) <> '') k ON TRUE "
        # the centre: the mean of the corners' unit vectors (right at RA 0/360)
        "LEFT JOIN LATERAL (SELECT c.ra0 - 360 * floor(c.ra0 / 360) AS ra, c.dec FROM ("
        "SELECT degrees(atan2(avg(cos(radians(y)) * sin(radians(x))), "
        "avg(cos(radians(y)) * cos(radians(x))))) AS ra0, avg(y) AS dec "
        "FROM unnest(k.ras, k.decs) AS z(x, y)) c) m ON TRUE "
        f"LEFT JOIN LATERAL (SELECT 2 * max({_haversine('z.x', 'z.y', 'm.ra', 'm.dec')}) "
        "AS fov, string_agg(z.x::text || ' ' || z.y::text, ' ' ORDER BY z.n) AS corners "
        "FROM unnest(k.ras, k.decs) WITH ORDINALITY AS z(x, y, n)) v ON TRUE "
        "LEFT JOIN LATERAL (SELECT extract(epoch FROM (o.attributes ->> 'date_obs')"
        "::timestamptz)::float8 / 86400.0 + 40587.0 AS mjd) t ON TRUE "
        f"WHERE o.type IN ({classes}) AND o.filename IS NOT NULL AND o.is_valid <> 0 "
        f"AND {_visible(spec, 'o')}"
        + ("" if spec.oids is None else
           f" AND o.oid = ANY({spec.bind('oids', list(spec.oids))}::uuid[])")
    )


OBSCORE = TableDef(
    "ivoa", "obscore", "Published image products (IVOA ObsCore 1.1): reduced frames, "
    "regridded frames and coadds, one row each, with a DataLink access URL",
    _OBSCORE_FIELDS, _obscore_sql, region=("s_ra", "s_dec", "s_fov", "s_region"),
    position=("s_ra", "s_dec"), utype="ivo://ivoa.net/std/ObsCore#core-1.1")


# -- awe.sources -------------------------------------------------------------------------

_SOURCE_FIELDS = (
    Field("source_id", "char", "Source id: the source list's oid and the row number",
          ucd="meta.id;meta.main", principal=True),
    Field("sourcelist", "char", "The SourceList object the source belongs to (oid)",
          ucd="meta.id.parent", indexed=True),
    Field("seq", "int", "Row number within its source list", ucd="meta.number"),
    Field("ra", "double", "Right ascension (ICRS)", unit="deg", ucd="pos.eq.ra;meta.main",
          principal=True),
    Field("dec", "double", "Declination (ICRS)", unit="deg", ucd="pos.eq.dec;meta.main",
          principal=True),
    Field("healpix", "long", "HEALPix index, nested, order 14 (about 13 arcsec pixels)",
          ucd="pos.healpix", indexed=True),
    Field("x", "float", "Pixel position along the first axis of its frame", unit="pix",
          ucd="pos.cartesian.x;instr.det"),
    Field("y", "float", "Pixel position along the second axis of its frame", unit="pix",
          ucd="pos.cartesian.y;instr.det"),
    Field("flux", "double", "Flux in the aperture", unit="adu", ucd="phot.flux"),
    Field("flux_err", "double", "Error of flux", unit="adu", ucd="stat.error;phot.flux"),
    Field("mag", "float", "Calibrated magnitude", unit="mag", ucd="phot.mag", indexed=True,
          principal=True),
    Field("mag_err", "float", "Error of mag", unit="mag", ucd="stat.error;phot.mag"),
    Field("snr", "float", "Signal-to-noise ratio", ucd="stat.snr"),
    Field("flag", "int", "Extraction flags", ucd="meta.code.qual"),
)


def _sources_sql(spec: SourceSpec) -> str:
    return ("SELECT s.sourcelist::text || '-' || s.seq::text AS source_id, "
            "s.sourcelist, s.seq, s.ra, s.dec, s.healpix, s.x, s.y, s.flux, s.flux_err, "
            "s.mag, s.mag_err, s.snr, s.flag FROM sources s "
            f"JOIN objects l ON l.oid = s.sourcelist WHERE {_visible(spec, 'l')}")


SOURCES = TableDef("awe", "sources", "Sources measured on the images (every source list's "
                   "rows), indexed on the sky by HEALPix", _SOURCE_FIELDS, _sources_sql,
                   healpix=("ra", "dec", "healpix"))


# -- the main object classes ---------------------------------------------------------------

_CLASS_TABLES = ("Instrument", "Chip", "Filter", "RawScienceFrame", "ReducedScienceFrame",
                 "AstrometricParameters", "PhotometricParameters", "SourceList",
                 "RegriddedFrame", "CoaddedRegriddedFrame")
_SQL_TYPES = {"bool": ("boolean", "boolean"), "int": ("bigint", "long"),
              "float": ("float8", "double"), "str": ("text", "char"),
              "datetime": ("timestamptz", "char")}
_BASE = (
    Field("oid", "char", "Object id", ucd="meta.id;meta.main", principal=True, indexed=True),
    Field("type", "char", "Class of the object", ucd="meta.code.class"),
    Field("site", "char", "Site that made the object", ucd="meta.id"),
    Field("creation_date", "char", "When it was made", ucd="time.creation",
          xtype="timestamp"),
    Field("creator", "char", "User who made it", ucd="meta.id.PI"),
    Field("project", "char", "Project it belongs to", ucd="meta.id"),
    # 'privileges' is a reserved word of ADQL: the column is named in the singular
    Field("privilege", "short", "Who may see it: its privilege level (awecore.visibility)",
          ucd="meta.code"),
    Field("is_valid", "short", "QC verdict: 0 bad, 1 good, 2 proposed", ucd="meta.code.qual"),
    Field("quality_flags", "long", "Automatic QC findings (bits)", ucd="meta.code.qual"),
    Field("filename", "char", "Name of its file in storage", ucd="meta.ref"),
)
_BASE_SQL = ("o.oid, o.type, o.site, o.creation_date, o.creator, o.project, "
             "o.privileges AS privilege, "
             "o.is_valid, o.quality_flags, o.filename")


def _snake(name: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()


def _class_table(cls_name: str) -> TableDef:
    cls = registry.get(cls_name)
    fields = list(_BASE)
    columns = [_BASE_SQL]
    for name, f in cls.fields.items():
        if name in COLUMNS or name in {b.name for b in _BASE}:
            continue
        if isinstance(f, Scalar):
            sql_type, datatype = _SQL_TYPES[f.type_name]
            xtype = "timestamp" if f.type_name == "datetime" else None
            fields.append(Field(name, datatype, f.doc, unit=f.unit, xtype=xtype))
            columns.append(f"(o.attributes ->> '{name}')::{sql_type} AS {name}")
        elif isinstance(f, Ref) and not f.many:
            fields.append(Field(f"{name}_oid", "char", f"The {f.target} it refers to (oid)",
                                ucd="meta.id.cross"))
            columns.append(f"(o.refs ->> '{name}')::uuid AS {name}_oid")
    types = ", ".join(f"'{n}'" for n in registry.subclass_names(cls))
    select = ", ".join(columns)

    def sql(spec: SourceSpec) -> str:
        return (f"SELECT {select} FROM objects o WHERE o.type IN ({types}) "
                f"AND {_visible(spec, 'o')}")

    doc = (cls.__doc__ or "").strip().split("\n")[0]
    return TableDef("awe", _snake(cls_name), f"{cls_name} objects" + (f": {doc}" if doc else ""),
                    tuple(fields), sql)


# -- TAP_SCHEMA ------------------------------------------------------------------------------

def _values(spec: SourceSpec, rows: Sequence[Sequence[Any]], names: Sequence[str],
            types: Sequence[str]) -> str:
    """A VALUES table of our own constants, every value bound (nothing is quoted by hand)."""
    counter = iter(range(1_000_000))
    body = ", ".join(
        "(" + ", ".join(f"{spec.bind(f'ts{next(counter)}', v)}::{t}"
                        for v, t in zip(row, types, strict=True)) + ")"
        for row in rows)
    if not rows:
        body = "(" + ", ".join(f"NULL::{t}" for t in types) + ")"
        return f"SELECT * FROM (VALUES {body}) AS v({', '.join(names)}) WHERE FALSE"
    return f"SELECT * FROM (VALUES {body}) AS v({', '.join(names)})"


_TS = "TAP_SCHEMA"


def _ts_table(name: str, description: str, fields: tuple[Field, ...],
              rows: Callable[[], list[tuple[Any, ...]]]) -> TableDef:
    types = [{"char": "text", "int": "integer", "short": "smallint", "long": "bigint"}[f.datatype]
             for f in fields]

    def sql(spec: SourceSpec) -> str:
        return _values(spec, rows(), [f.name for f in fields], types)

    return TableDef(_TS, name, description, fields, sql)


def _schemas_rows() -> list[tuple[Any, ...]]:
    described = {"ivoa": "IVOA standard tables (ObsCore)", "awe": "AWE's own tables",
                 _TS: "This service's tables and columns (TAP 1.1)"}
    seen: list[str] = []
    for t in TABLES:
        if t.schema not in seen:
            seen.append(t.schema)
    return [(s, described.get(s, ""), None, i) for i, s in enumerate(seen)]


def _tables_rows() -> list[tuple[Any, ...]]:
    return [(t.schema, t.qualified, "table", t.description, t.utype, i)
            for i, t in enumerate(TABLES)]


def _columns_rows() -> list[tuple[Any, ...]]:
    out = []
    for t in TABLES:
        for i, f in enumerate(t.fields):
            size = None if f.arraysize in (None, "*") else int(str(f.arraysize).rstrip("*"))
            out.append((t.qualified, f.name, f.description, f.unit, f.ucd, f.utype,
                        f.datatype, f.arraysize, f.xtype, size, int(f.principal),
                        int(f.indexed), int(f.std), i))
    return out


TAP_SCHEMA: tuple[TableDef, ...] = (
    _ts_table("schemas", "Schemas of this service", (
        Field("schema_name", "char", "Schema name", ucd="meta.id"),
        Field("description", "char", "Description", ucd="meta.note"),
        Field("utype", "char", "Utype", ucd="meta.ucd"),
        Field("schema_index", "int", "Order", ucd="meta.number")), _schemas_rows),
    _ts_table("tables", "Tables of this service", (
        Field("schema_name", "char", "Schema name", ucd="meta.id"),
        Field("table_name", "char", "Table name, qualified", ucd="meta.id;meta.main"),
        Field("table_type", "char", "table or view", ucd="meta.code"),
        Field("description", "char", "Description", ucd="meta.note"),
        Field("utype", "char", "Utype", ucd="meta.ucd"),
        Field("table_index", "int", "Order", ucd="meta.number")), _tables_rows),
    _ts_table("columns", "Columns of this service's tables", (
        Field("table_name", "char", "Table name, qualified", ucd="meta.id"),
        Field("column_name", "char", "Column name", ucd="meta.id;meta.main"),
        Field("description", "char", "Description", ucd="meta.note"),
        Field("unit", "char", "Unit (VOUnit)", ucd="meta.unit"),
        Field("ucd", "char", "UCD", ucd="meta.ucd"),
        Field("utype", "char", "Utype", ucd="meta.ucd"),
        Field("datatype", "char", "VOTable datatype", ucd="meta.code"),
        Field("arraysize", "char", "VOTable arraysize", ucd="meta.code"),
        Field("xtype", "char", "VOTable xtype", ucd="meta.code"),
        Field("size", "int", "Length of fixed-size values (deprecated)", ucd="meta.number"),
        Field("principal", "int", "1: shown by default", ucd="meta.code"),
        Field("indexed", "int", "1: indexed", ucd="meta.code"),
        Field("std", "int", "1: defined by a standard", ucd="meta.code"),
        Field("column_index", "int", "Order", ucd="meta.number")), _columns_rows),
    _ts_table("keys", "Foreign keys between tables", (
        Field("key_id", "char", "Key id", ucd="meta.id"),
        Field("from_table", "char", "Table with the foreign key", ucd="meta.id"),
        Field("target_table", "char", "Table it points to", ucd="meta.id"),
        Field("description", "char", "Description", ucd="meta.note"),
        Field("utype", "char", "Utype", ucd="meta.ucd")),
        lambda: [("sources_sourcelist", "awe.sources", "awe.source_list",
                  "The source list of a source", None)]),
    _ts_table("key_columns", "Columns of the foreign keys", (
        Field("key_id", "char", "Key id", ucd="meta.id"),
        Field("from_column", "char", "Column in from_table", ucd="meta.id"),
        Field("target_column", "char", "Column in target_table", ucd="meta.id")),
        lambda: [("sources_sourcelist", "sourcelist", "oid")]),
)

#: every table, as TAP_SCHEMA lists them
TABLES: tuple[TableDef, ...] = (OBSCORE, SOURCES, *(_class_table(c) for c in _CLASS_TABLES),
                                *TAP_SCHEMA)
_BY_NAME = {t.qualified.lower(): t for t in TABLES}


def by_name(qualified: str) -> TableDef | None:
    """A table by its qualified name (case-insensitive, as ADQL's regular identifiers)."""
    return _BY_NAME.get(qualified.lower())
