"""VOTables out and DALI errors: what every VO endpoint answers with.

Results are VOTable 1.4 documents written by astropy (so they parse with
``astropy.io.votable.parse(..., verify='exception')``), with a ``QUERY_STATUS`` INFO in
the results resource: ``OK``, or ``OVERFLOW`` when MAXREC cut the answer short (DALI 1.1).
Errors are DALI error documents (``QUERY_STATUS`` = ``ERROR`` and the message) with a 4xx
status for the caller's mistakes, so that pyvo and TOPCAT show the message; nothing a caller
sends becomes a 500.

Parameters of DALI services are case-insensitive in their names and arrive by GET query
string or by an urlencoded POST body: :func:`vo_params` merges both.
"""

from __future__ import annotations

import io
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl
from xml.sax.saxutils import escape

import numpy as np
from astropy.io.votable.tree import Field as VTField
from astropy.io.votable.tree import Info, Resource, TableElement, VOTableFile
from fastapi import FastAPI, Request
from fastapi.responses import Response

from awecore.errors import AweError

__all__ = ["VOTABLE", "Field", "VOError", "VOParams", "dali_error", "install_vo_errors",
           "rows_bytes", "rows_votable", "vo_params", "votable_bytes", "votable_response"]

#: the media type of VOTable answers
VOTABLE = "application/x-votable+xml"
#: the longest POST body a VO request may have (ADQL, parameters)
MAX_BODY = 1 << 20

#: characters XML 1.0 cannot carry (written as '?')
_XML_BAD = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")
#: VOTable datatypes of the columns we expose, and the numpy type astropy holds them in
_NUMPY = {"short": np.int16, "int": np.int32, "long": np.int64, "float": np.float32,
          "double": np.float64, "boolean": np.bool_, "unsignedByte": np.uint8}


class VOError(Exception):
    """A caller's error (or a refusal) as a DALI error document with an HTTP status."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.message = message
        self.status = status


@dataclass(frozen=True)
class Field:
    """One column of a VO table (TAP_SCHEMA.columns and the VOTable FIELD agree on it)."""

    name: str
    datatype: str
    description: str = ""
    unit: str | None = None
    ucd: str | None = None
    utype: str | None = None
    xtype: str | None = None
    arraysize: str | None = None
    principal: bool = False
    indexed: bool = False
    std: bool = False

    def __post_init__(self) -> None:
        if self.datatype not in _NUMPY and self.datatype != "char":
            raise ValueError(f"unsupported VOTable datatype {self.datatype!r}")
        if self.datatype == "char" and self.arraysize is None:
            object.__setattr__(self, "arraysize", "*")


def rows_votable(fields: Sequence[Field], rows: Iterable[Sequence[Any]], *,
                 overflow: bool = False, infos: dict[str, str] | None = None,
                 name: str = "result") -> VOTableFile:
    """A VOTable of ``rows`` (sequences in ``fields`` order; None is null)."""
    data = [tuple(r) for r in rows]
    vot = VOTableFile(version="1.4")
    resource = Resource(type="results")
    vot.resources.append(resource)
    resource.infos.append(Info(name="QUERY_STATUS", value="OVERFLOW" if overflow else "OK"))
    for key, value in (infos or {}).items():
        resource.infos.append(Info(name=key, value=value))
    table = TableElement(vot, name=name)
    resource.tables.append(table)
    for f in fields:
        table.fields.append(VTField(
            vot, name=f.name, datatype=f.datatype, arraysize=f.arraysize, unit=f.unit,
            ucd=f.ucd, utype=f.utype, xtype=f.xtype))
    table.create_arrays(len(data))
    for i, f in enumerate(fields):
        values = [r[i] for r in data]
        mask = np.array([v is None for v in values], dtype=bool)
        if f.datatype == "char":
            column = np.array(["" if v is None else str(v) for v in values], dtype=object)
        else:
            kind = _NUMPY[f.datatype]
            filler = False if kind is np.bool_ else 0
            column = np.array([filler if v is None else v for v in values], dtype=kind)
        table.array[f.name] = column
        table.array.mask[f.name] = mask
    return vot


#: how non-finite reals are written in VOTable (Python's repr says nan, inf, -inf)
_NON_FINITE = {"<TD>nan</TD>": "<TD>NaN</TD>", "<TD>inf</TD>": "<TD>+Inf</TD>",
               "<TD>-inf</TD>": "<TD>-Inf</TD>"}


def _cells(datatype: str, values: Sequence[Any]) -> list[str]:
    """One column's TABLEDATA cells (None is an empty cell), a list comprehension per
    type: the fastest Python has for this."""
    if datatype in ("double", "float"):
        cells = ["<TD/>" if v is None else f"<TD>{float(v)!r}</TD>" for v in values]
        return [_NON_FINITE.get(c, c) for c in cells]
    if datatype == "boolean":
        return ["<TD/>" if v is None else ("<TD>T</TD>" if v else "<TD>F</TD>")
                for v in values]
    if datatype == "char":
        return ["<TD/>" if v is None else f"<TD>{escape(_XML_BAD.sub('?', str(v)))}</TD>"
                for v in values]
    return ["<TD/>" if v is None else f"<TD>{int(v)}</TD>" for v in values]


def rows_bytes(fields: Sequence[Field], rows: Sequence[Sequence[Any]], *,
               overflow: bool = False, infos: dict[str, str] | None = None,
               name: str = "result") -> bytes:
    """The same document as ``votable_bytes(rows_votable(...))``, written fast: astropy
    writes the metadata and the rows are formatted here, column by column (astropy's
    TABLEDATA writer costs about 0.2 ms a row), so large TAP results are not dominated by
    their serialisation. The output parses with astropy in strict mode."""
    skeleton = votable_bytes(rows_votable(fields, [], overflow=overflow, infos=infos,
                                          name=name)).decode()
    columns = list(zip(*rows, strict=True)) if rows else [() for _ in fields]
    cells = [_cells(f.datatype, c) for f, c in zip(fields, columns, strict=True)]
    body = "".join(f"<TR>{''.join(r)}</TR>\n" for r in zip(*cells, strict=True))
    cut = skeleton.rindex("</TABLE>")
    return (skeleton[:cut] + f"<DATA><TABLEDATA>\n{body}</TABLEDATA></DATA>\n"
            + skeleton[cut:]).encode()


def votable_bytes(vot: VOTableFile) -> bytes:
    out = io.BytesIO()
    vot.to_xml(out, tabledata_format="tabledata")
    return out.getvalue()


def votable_response(vot: VOTableFile, status: int = 200) -> Response:
    return Response(votable_bytes(vot), status_code=status, media_type=VOTABLE)


def dali_error(message: str, status: int = 400) -> Response:
    """A DALI error document: a results resource whose QUERY_STATUS is ERROR."""
    vot = VOTableFile(version="1.4")
    resource = Resource(type="results")
    vot.resources.append(resource)
    info = Info(name="QUERY_STATUS", value="ERROR")
    info.content = message
    resource.infos.append(info)
    return votable_response(vot, status)


def install_vo_errors(app: FastAPI) -> None:
    """VOError becomes a DALI error document (the kit's problem documents stay for the
    operations routes and the JSON parts)."""
    async def on_vo_error(_request: Request, exc: Exception) -> Response:
        assert isinstance(exc, VOError)
        return dali_error(exc.message, exc.status)
    app.add_exception_handler(VOError, on_vo_error)


class VOParams:
    """A request's DALI parameters: names case-insensitive, values in order of arrival."""

    def __init__(self, pairs: Iterable[tuple[str, str]]) -> None:
        self._values: dict[str, list[str]] = {}
        for key, value in pairs:
            self._values.setdefault(key.upper(), []).append(value)

    def get(self, name: str, default: str | None = None) -> str | None:
        """The one value of ``name`` (400 if it was given more than once)."""
        values = self._values.get(name.upper())
        if not values:
            return default
        if len(values) > 1:
            raise VOError(f"parameter {name} given {len(values)} times; give it once")
        return values[0]

    def getall(self, name: str) -> list[str]:
        return list(self._values.get(name.upper(), []))

    def require(self, name: str) -> str:
        value = self.get(name)
        if value is None or not value.strip():
            raise VOError(f"parameter {name} is required")
        return value

    def integer(self, name: str, default: int | None = None, *,
                minimum: int = 0) -> int | None:
        value = self.get(name)
        if value is None or not value.strip():
            return default
        try:
            number = int(value)
        except ValueError:
            raise VOError(f"parameter {name} must be an integer, not {value!r}") from None
        if number < minimum:
            raise VOError(f"parameter {name} must be at least {minimum}")
        return number

    def number(self, name: str, default: float | None = None) -> float | None:
        value = self.get(name)
        if value is None or not value.strip():
            return default
        try:
            number = float(value)
        except ValueError:
            raise VOError(f"parameter {name} must be a number, not {value!r}") from None
        if not np.isfinite(number):
            raise VOError(f"parameter {name} must be a finite number")
        return number

    def names(self) -> set[str]:
        return set(self._values)


async def vo_params(request: Request) -> VOParams:
    """The query string's parameters, then an urlencoded POST body's (DALI allows both)."""
    pairs = list(request.query_params.multi_items())
    if request.method == "POST":
        kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
        body = await request.body()
        if len(body) > MAX_BODY:
            raise VOError(f"the request body is over {MAX_BODY} bytes", status=413)
        if kind == "multipart/form-data":
            raise VOError("multipart requests (table UPLOAD) are not supported: send the "
                          "parameters urlencoded")
        if body:
            try:
                pairs += parse_qsl(body.decode(), keep_blank_values=True, strict_parsing=False)
            except UnicodeDecodeError:
                raise VOError("the request body is not UTF-8") from None
    return VOParams(pairs)


def aweerror_as_vo(exc: AweError) -> VOError:
    """An AWE error (a bad token, a dependency out of reach) as a DALI error."""
    return VOError(str(exc) or exc.__class__.__name__, exc.status_code)
