"""The XML documents of TAP besides VOTables: VOSI capabilities, availability and tables,
and UWS job documents. Written as text from our own values (every value escaped)."""

from __future__ import annotations

import datetime as dt
from xml.sax.saxutils import escape, quoteattr

from ..tables import TABLES
from .uws import Job

__all__ = ["availability", "capabilities", "job_document", "jobs_document", "tableset"]

_XSI = 'xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"'
_HEAD = '<?xml version="1.0" encoding="UTF-8"?>\n'
#: the ADQL geometry functions this service compiles (TAPRegExt's names)
GEOMETRY = ("POINT", "CIRCLE", "POLYGON", "CONTAINS", "INTERSECTS", "DISTANCE")


def _interface(url: str, use: str = "full", role: str | None = None,
               version: str | None = None) -> str:
    attrs = ' xsi:type="vs:ParamHTTP"'
    if role:
        attrs += f' role="{role}"'
    if version:
        attrs += f' version="{version}"'
    return (f"<interface{attrs}><accessURL use={quoteattr(use)}>{escape(url)}</accessURL>"
            "</interface>")


def capabilities(base: str, default_maxrec: int, hard_maxrec: int,
                 keep_seconds: float) -> str:
    """VOSI capabilities of the whole service: TAP with ADQL and the other VO endpoints
    (cone search, SIA v2, DataLink, SODA), so a client that knows one URL finds all."""
    features = "".join(f"<feature><form>{g}</form></feature>" for g in GEOMETRY)
    tap = (
        '<capability standardID="ivo://ivoa.net/std/TAP" xsi:type="tr:TableAccess">'
        f"{_interface(base + '/tap', 'base', 'std', '1.1')}"
        "<language><name>ADQL</name>"
        '<version ivo-id="ivo://ivoa.net/std/ADQL#v2.0">2.0</version>'
        '<version ivo-id="ivo://ivoa.net/std/ADQL#v2.1">2.1</version>'
        "<description>ADQL 2.x compiled to PostgreSQL; geometry on the HEALPix index"
        "</description>"
        f'<languageFeatures type="ivo://ivoa.net/std/TAPRegExt#features-adqlgeo">{features}'
        "</languageFeatures></language>"
        "<outputFormat><mime>application/x-votable+xml</mime><alias>votable</alias>"
        "</outputFormat>"
        f"<retentionPeriod><default>{int(keep_seconds)}</default></retentionPeriod>"
        f'<outputLimit><default unit="row">{default_maxrec}</default>'
        f'<hard unit="row">{hard_maxrec}</hard></outputLimit>'
        "</capability>")
    vosi = "".join(
        f'<capability standardID="ivo://ivoa.net/std/VOSI#{what}">'
        f"{_interface(f'{base}/tap/{what}')}</capability>"
        for what in ("capabilities", "availability", "tables"))
    others = "".join(
        f'<capability standardID="{std}">{_interface(url, "base", "std", version)}'
        "</capability>"
        for std, url, version in (
            ("ivo://ivoa.net/std/ConeSearch", f"{base}/scs", "1.03"),
            ("ivo://ivoa.net/std/SIA#query-2.0", f"{base}/sia", "2.0"),
            ("ivo://ivoa.net/std/DataLink#links-1.0", f"{base}/datalink", "1.0"),
            ("ivo://ivoa.net/std/SODA#sync-1.0", f"{base}/soda", "1.0")))
    return (_HEAD + '<vosi:capabilities xmlns:vosi="http://www.ivoa.net/xml/VOSICapabilities/'
            f'v1.0" {_XSI} xmlns:vr="http://www.ivoa.net/xml/VOResource/v1.0" '
            'xmlns:vs="http://www.ivoa.net/xml/VODataService/v1.1" '
            'xmlns:tr="http://www.ivoa.net/xml/TAPRegExt/v1.0">'
            f"{tap}{vosi}{others}</vosi:capabilities>\n")


def availability(up: bool, note: str) -> str:
    return (_HEAD + '<avl:availability xmlns:avl="http://www.ivoa.net/xml/VOSIAvailability/'
            f'v1.0"><avl:available>{"true" if up else "false"}</avl:available>'
            f"<avl:note>{escape(note)}</avl:note></avl:availability>\n")


def tableset() -> str:
    """VOSI tables (VODataService 1.1): every table and column, from ``awe_vo.tables``."""
    out = [_HEAD, '<vosi:tableset xmlns:vosi="http://www.ivoa.net/xml/VOSITables/v1.0" '
           f'xmlns:vs="http://www.ivoa.net/xml/VODataService/v1.1" {_XSI}>']
    schemas: dict[str, list[str]] = {}
    for t in TABLES:
        columns = []
        for f in t.fields:
            parts = [f"<name>{escape(f.name)}</name>"]
            if f.description:
                parts.append(f"<description>{escape(f.description)}</description>")
            if f.unit:
                parts.append(f"<unit>{escape(f.unit)}</unit>")
            if f.ucd:
                parts.append(f"<ucd>{escape(f.ucd)}</ucd>")
            if f.utype:
                parts.append(f"<utype>{escape(f.utype)}</utype>")
            size = f' arraysize="{f.arraysize}"' if f.arraysize else ""
            xtype = f" extendedType={quoteattr(f.xtype)}" if f.xtype else ""
            parts.append(f'<dataType xsi:type="vs:VOTableType"{size}{xtype}>{f.datatype}'
                         "</dataType>")
            if f.indexed:
                parts.append("<flag>indexed</flag>")
            if f.principal:
                parts.append("<flag>principal</flag>")
            if f.std:
                parts.append("<flag>std</flag>")
            columns.append(f"<column>{''.join(parts)}</column>")
        utype = f"<utype>{escape(t.utype)}</utype>" if t.utype else ""
        schemas.setdefault(t.schema, []).append(
            f'<table type="table"><name>{escape(t.qualified)}</name>'
            f"<description>{escape(t.description)}</description>{utype}"
            f"{''.join(columns)}</table>")
    for schema, tables in schemas.items():
        out.append(f"<schema><name>{escape(schema)}</name>{''.join(tables)}</schema>")
    out.append("</vosi:tableset>\n")
    return "".join(out)


def _time(value: dt.datetime | None) -> str:
    if value is None:
        return ""
    return value.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def _element(name: str, value: str | None) -> str:
    if value is None or value == "":
        return f'<uws:{name} xsi:nil="true"/>'
    return f"<uws:{name}>{escape(value)}</uws:{name}>"


_UWS = ('xmlns:uws="http://www.ivoa.net/xml/UWS/v1.0" '
        f'xmlns:xlink="http://www.w3.org/1999/xlink" {_XSI}')


def job_document(job: Job, job_url: str) -> str:
    """A UWS 1.1 job document."""
    params = "".join(f"<uws:parameter id={quoteattr(k.lower())}>{escape(v)}</uws:parameter>"
                     for k, v in job.parameters.items())
    results = ""
    if job.phase == "COMPLETED":
        results = (f'<uws:result id="result" xlink:type="simple" '
                   f'xlink:href={quoteattr(job_url + "/results/result")}/>')
    error = ""
    if job.phase == "ERROR" and job.outcome is not None and job.outcome.error is not None:
        error = ('<uws:errorSummary type="fatal" hasDetail="true">'
                 f"<uws:message>{escape(job.outcome.error)}</uws:message></uws:errorSummary>")
    return (_HEAD + f'<uws:job {_UWS} version="1.1">'
            f"{_element('jobId', job.id)}{_element('runId', None)}"
            f"{_element('ownerId', job.owner)}{_element('phase', job.phase)}"
            f"{_element('quote', None)}{_element('creationTime', _time(job.created))}"
            f"{_element('startTime', _time(job.started))}"
            f"{_element('endTime', _time(job.ended))}"
            f"{_element('executionDuration', str(job.execution_duration))}"
            f"{_element('destruction', _time(job.destruction))}"
            f"<uws:parameters>{params}</uws:parameters>"
            f"<uws:results>{results}</uws:results>{error}</uws:job>\n")


def jobs_document(jobs: list[Job], base: str) -> str:
    refs = "".join(
        f'<uws:jobref id={quoteattr(j.id)} xlink:type="simple" '
        f'xlink:href={quoteattr(f"{base}/{j.id}")}><uws:phase>{j.phase}</uws:phase>'
        f"{_element('creationTime', _time(j.created))}</uws:jobref>"
        for j in jobs)
    return _HEAD + f'<uws:jobs {_UWS} version="1.1">{refs}</uws:jobs>\n'
