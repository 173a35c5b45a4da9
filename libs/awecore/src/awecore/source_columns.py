"""A source list's rows as columns: the rules both wire forms keep, and the FITS form.

``POST /sources/{oid}`` takes the rows of a SourceList as columns of equal length, either as
JSON arrays (``SourceColumns``) or as a FITS binary table (``application/fits``, one row a
source, one column per name of :data:`COLUMNS`). Our clients send FITS: a table of 10^6 rows
is 56 MB of numbers that the catalog reads as numpy views of the body, where the same rows
as JSON are some 200 MB of text to parse into Python floats one by one. FITS is what
astronomers' tools write already (``astropy.table.Table.write(f, format="fits")``), and its
numbers are big-endian like PostgreSQL's binary COPY, which the catalog builds from them.

:func:`checked` holds the rules for both forms, so the two cannot drift: ra and dec finite
and in range, equal lengths, known names, real (4-byte) columns within a real's range, flag
a 4-byte integer. In the optional float columns NaN (or infinity) is "not measured" and is
stored as NULL: JSON's null and a FITS NaN say the same.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

import numpy as np
from astropy.io import fits

from .errors import InvalidRequest, PayloadTooLarge

__all__ = ["COLUMNS", "FITS_MEDIA_TYPES", "MAX_SOURCES", "MEDIA_TYPE", "checked", "decode_fits",
           "encode_fits"]

#: sources in one source list (one load)
MAX_SOURCES = 1_000_000
MEDIA_TYPE = "application/fits"
#: media types read as FITS (RFC 4047 registers both)
FITS_MEDIA_TYPES = frozenset({"application/fits", "image/fits"})
#: the source table's columns a load may give, as the table stores them (real: 4 bytes)
COLUMNS: dict[str, str] = {"ra": ">f8", "dec": ">f8", "x": ">f4", "y": ">f4", "flux": ">f8",
                           "flux_err": ">f8", "mag": ">f4", "mag_err": ">f4", "snr": ">f4",
                           "flag": ">i4"}
_UNITS = {"ra": "deg", "dec": "deg", "x": "pix", "y": "pix", "flux": "adu", "flux_err": "adu",
          "mag": "mag", "mag_err": "mag"}
_REAL_MAX = float(np.finfo(np.float32).max)
_INT32 = (-(2**31), 2**31 - 1)
_BLOCK = 2880
_CARD = 80
_END = b"END" + b" " * 77
#: FITS binary table formats a column of ours may have (scalars only), as numpy types
_FORMATS = {"B": "u1", "I": ">i2", "J": ">i4", "K": ">i8", "E": ">f4", "D": ">f8"}
_TFORM = re.compile(r"^\s*(\d*)([A-Z])")
_MAX_HDUS = 16
_MAX_HEADER_BLOCKS = 64


def _first_bad(ok: np.ndarray, values: np.ndarray) -> Any:
    return values[int(np.flatnonzero(~ok)[0])].item()


def checked(columns: Mapping[str, Any]) -> dict[str, np.ndarray]:
    """The columns as numpy arrays if they keep the rules of a load, else InvalidRequest
    (PayloadTooLarge beyond MAX_SOURCES). Float columns keep their dtype (a FITS body's
    columns stay views of it); flag becomes int32 (zeros when absent is the table's own
    default, so an absent flag stays absent)."""
    unknown = sorted(set(columns) - set(COLUMNS))
    if unknown:
        raise InvalidRequest(f"unknown source column(s) {unknown}; the source table has "
                             f"{list(COLUMNS)}")
    for name in ("ra", "dec"):
        if name not in columns:
            raise InvalidRequest(f"the sources have no {name} column; ra and dec are required")
    out: dict[str, np.ndarray] = {}
    n = len(columns["ra"])
    if n > MAX_SOURCES:
        raise PayloadTooLarge(f"{n} sources in one load; a source list has at most "
                              f"{MAX_SOURCES}")
    if n == 0:
        raise InvalidRequest("no sources: a load has at least one row")
    for name, values in columns.items():
        arr = np.asarray(values)
        if arr.ndim != 1:
            raise InvalidRequest(f"column {name} is not a list of numbers")
        if len(arr) != n:
            raise InvalidRequest(f"column {name} has {len(arr)} values; ra has {n}")
        if arr.dtype.kind not in ("iuf" if name != "flag" else "iu"):
            what = "integers" if name == "flag" else "numbers"
            raise InvalidRequest(f"column {name} must hold {what}, not {arr.dtype}")
        out[name] = arr
    for name, lo, hi in (("ra", 0.0, 360.0), ("dec", -90.0, 90.0)):
        arr = out[name]
        ok = np.isfinite(arr) & (arr >= lo) & (arr <= hi)
        if not ok.all():
            raise InvalidRequest(f"{name} {_first_bad(ok, arr)} is outside [{lo}, {hi}]")
    for name, arr in out.items():
        if COLUMNS[name] == ">f4" and arr.dtype.kind == "f" and arr.dtype.itemsize > 4:
            ok = ~(np.isfinite(arr) & (np.abs(arr) > _REAL_MAX))
            if not ok.all():
                raise InvalidRequest(f"{name} {_first_bad(ok, arr)} is beyond the range of "
                                     f"the column (a 4-byte real)")
    if "flag" in out:
        flag = out["flag"]
        ok = (flag >= _INT32[0]) & (flag <= _INT32[1])
        if not ok.all():
            raise InvalidRequest(f"flag {_first_bad(ok, flag)} is outside a 4-byte integer")
        out["flag"] = flag.astype(np.int32, copy=False)
    return out


def _array(name: str, values: Any) -> np.ndarray:
    """One column as numpy: None in a float column is NaN (not measured)."""
    try:
        return np.asarray(values, dtype=np.int64 if name == "flag" else np.float64)
    except (TypeError, ValueError, OverflowError) as exc:
        raise InvalidRequest(f"column {name} is not a list of numbers: {exc}") from None


def encode_fits(columns: Mapping[str, Any]) -> bytes:
    """The columns (lists or numpy arrays; None where not measured) as a FITS file: an empty
    primary HDU and one binary table, each column in the table's own type. Checked first by
    the catalog's rules, so a bad column fails here, before anything is sent."""
    arrays = checked({name: _array(name, values) for name, values in columns.items()})
    names = [c for c in COLUMNS if c in arrays]
    dtype = np.dtype([(c, COLUMNS[c]) for c in names])
    n = len(arrays["ra"])
    primary = fits.Header([("SIMPLE", True), ("BITPIX", 8), ("NAXIS", 0), ("EXTEND", True)])
    table = fits.Header([("XTENSION", "BINTABLE"), ("BITPIX", 8), ("NAXIS", 2),
                         ("NAXIS1", dtype.itemsize), ("NAXIS2", n),
                         ("PCOUNT", 0), ("GCOUNT", 1), ("TFIELDS", len(names)),
                         ("EXTNAME", "SOURCES")])
    fmt = {v: k for k, v in _FORMATS.items()}
    for i, c in enumerate(names, 1):
        table[f"TTYPE{i}"] = c
        table[f"TFORM{i}"] = fmt[COLUMNS[c]]
        if c in _UNITS:
            table[f"TUNIT{i}"] = _UNITS[c]
    head = (primary.tostring() + table.tostring()).encode("ascii")
    size = dtype.itemsize * n
    out = bytearray(len(head) + size + (-size % _BLOCK))  # the padding stays zeros
    out[:len(head)] = head
    rows = np.frombuffer(out, dtype=dtype, count=n, offset=len(head))
    for c in names:  # written in place: no copy of the table until bytes()
        rows[c] = arrays[c]
    return bytes(out)


def _header(body: bytes | memoryview, start: int) -> tuple[fits.Header, int]:
    """The header that starts at ``start`` and where its data starts."""
    end = start
    for _ in range(_MAX_HEADER_BLOCKS):
        block = bytes(body[end:end + _BLOCK])
        if len(block) < _BLOCK:
            raise InvalidRequest(f"the FITS file is truncated: a header at byte {start} has no "
                                 "END card (or is not whole 2880-byte blocks)")
        end += _BLOCK
        at = next((k for k in range(0, _BLOCK, _CARD) if block[k:k + _CARD] == _END), None)
        if at is not None:
            text = bytes(body[start:end]).decode("latin-1")
            try:
                header = fits.Header.fromstring(text)
                for card in header.cards:  # astropy parses a card's value when it is read
                    card.value  # noqa: B018
            except Exception as exc:  # any failure to read it is the body's fault
                raise InvalidRequest(f"a FITS header cannot be read: {exc}") from None
            return header, end
    raise InvalidRequest(f"a FITS header at byte {start} has no END card in "
                         f"{_MAX_HEADER_BLOCKS} blocks")


def _int(header: fits.Header, key: str, lo: int = 0, hi: int = 2**40) -> int:
    value = header.get(key)
    if not isinstance(value, int) or isinstance(value, bool) or not lo <= value <= hi:
        raise InvalidRequest(f"the FITS keyword {key} must be an integer in [{lo}, {hi}], "
                             f"not {value!r}")
    return value


def _data_size(header: fits.Header) -> int:
    naxis = _int(header, "NAXIS", 0, 999)
    if naxis == 0:
        return 0
    bitpix = header.get("BITPIX")
    if bitpix not in (8, 16, 32, 64, -32, -64):
        raise InvalidRequest(f"the FITS keyword BITPIX must be 8, 16, 32, 64, -32 or -64, "
                             f"not {bitpix!r}")
    cells = 1
    for i in range(1, naxis + 1):
        cells *= _int(header, f"NAXIS{i}")
    pcount = _int(header, "PCOUNT") if "PCOUNT" in header else 0
    gcount = _int(header, "GCOUNT", 1) if "GCOUNT" in header else 1
    return abs(int(bitpix)) // 8 * gcount * (pcount + cells)


def _scaled(header: fits.Header, i: int, name: str, values: np.ndarray) -> np.ndarray:
    """TSCALn and TZEROn applied (unsigned integers are stored with TZERO, say)."""
    scale, zero = header.get(f"TSCAL{i}", 1), header.get(f"TZERO{i}", 0)
    if not all(isinstance(v, int | float) and not isinstance(v, bool) and np.isfinite(v)
               for v in (scale, zero)):
        raise InvalidRequest(f"TSCAL{i} and TZERO{i} must be finite numbers")
    if scale == 1 and zero == 0:
        return values
    if name == "flag":
        if scale != 1 or zero != int(zero) or values.dtype.kind not in "iu":
            raise InvalidRequest("column flag is integers: a TSCAL or TZERO may only shift "
                                 "it by an integer")
        return values.astype(np.int64) + int(zero)
    return values.astype(np.float64) * float(scale) + float(zero)


def _table(header: fits.Header, body: bytes | memoryview, start: int) -> dict[str, np.ndarray]:
    """The columns of a binary table whose data starts at ``start``: views of the body."""
    if header.get("BITPIX") != 8 or _int(header, "NAXIS", 2, 2) != 2 or _int(
            header, "GCOUNT", 1, 1) != 1:
        raise InvalidRequest("a FITS binary table has BITPIX = 8, NAXIS = 2 and GCOUNT = 1")
    width, rows = _int(header, "NAXIS1"), _int(header, "NAXIS2")
    if rows > MAX_SOURCES:
        raise PayloadTooLarge(f"{rows} sources in one load; a source list has at most "
                              f"{MAX_SOURCES}")
    fields = _int(header, "TFIELDS", 1, 999)
    names: list[str] = []
    formats: list[str] = []
    offsets: list[int] = []
    offset = 0
    for i in range(1, fields + 1):
        name = str(header.get(f"TTYPE{i}", "")).strip().lower()
        if name not in COLUMNS:
            raise InvalidRequest(f"unknown source column {name or f'#{i} (no TTYPE{i})'!r} in "
                                 f"the FITS table; the source table has {list(COLUMNS)}")
        if name in names:
            raise InvalidRequest(f"the FITS table has column {name} twice")
        m = _TFORM.match(str(header.get(f"TFORM{i}", "")))
        if m is None or m.group(1) not in ("", "1") or m.group(2) not in _FORMATS:
            raise InvalidRequest(f"column {name} has TFORM{i} = {header.get(f'TFORM{i}')!r}; "
                                 f"a source column is one number a row: "
                                 f"{', '.join(_FORMATS)}")
        names.append(name)
        formats.append(_FORMATS[m.group(2)])
        offsets.append(offset)
        offset += np.dtype(formats[-1]).itemsize
    if offset != width:
        raise InvalidRequest(f"the FITS table's columns take {offset} bytes a row; NAXIS1 "
                             f"says {width}")
    dtype = np.dtype({"names": names, "formats": formats, "offsets": offsets,
                      "itemsize": width})
    data = np.frombuffer(body, dtype=dtype, count=rows, offset=start)
    return {name: _scaled(header, i, name, data[name]) for i, name in enumerate(names, 1)}


def decode_fits(body: bytes | memoryview) -> dict[str, np.ndarray]:
    """The columns of the first binary table of a FITS file (names case-insensitive), as
    views of the body; InvalidRequest if it is not one, or is truncated. Not yet checked by
    :func:`checked`. Headers are read with astropy; the data is never copied."""
    if bytes(body[:9]) != b"SIMPLE  =":
        raise InvalidRequest("the body is not a FITS file (it does not start with SIMPLE); "
                             "send a FITS binary table of the columns as application/fits")
    start = 0
    for index in range(_MAX_HDUS):
        header, data_start = _header(body, start)
        size = _data_size(header)
        if data_start + size > len(body):
            raise InvalidRequest(f"the FITS file is truncated: HDU {index} needs "
                                 f"{data_start + size} bytes, the body has {len(body)}")
        if index > 0 and header.get("XTENSION") == "BINTABLE":
            return _table(header, body, data_start)
        start = data_start + size + (-size % _BLOCK)
        if start >= len(body):
            break
    raise InvalidRequest("the FITS file has no binary table (XTENSION = 'BINTABLE') of "
                         "the sources")
