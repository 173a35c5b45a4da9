"""A source list's rows as PostgreSQL's binary COPY, built from numpy columns.

Why: the rows of a load were Python tuples that asyncpg encoded value by value, some 10 us
a row; here every column is written into the COPY stream by numpy at once, so the catalog
loads at nearly the rate of a raw COPY of the same rows (bench/catalog.py, bench/scale.py).

A binary COPY row is its field count, then each field's length and bytes, big-endian; a NULL
is a length of -1 and no bytes, so rows with a NULL are shorter. Rows are grouped by which
of their fields are NULL (a few groups: a column not given is NULL in every row, a
magnitude where the flux was not positive in some), each group one numpy record array of
fixed width. Groups go one after another, so a NULL-bearing row may sit away from its
neighbours by seq on disk; ``(sourcelist, seq)`` is the key, the heap order is no contract.
"""

from __future__ import annotations

import struct
import uuid
from collections.abc import Mapping

import numpy as np

from awecore.healpix import healpix_of

__all__ = ["COPY_COLUMNS", "HEADER", "TRAILER", "tuples"]

HEADER = b"PGCOPY\n\xff\r\n\x00" + struct.pack(">ii", 0, 0)
TRAILER = struct.pack(">h", -1)
#: the sources table's columns in the order of the stream, with their binary forms
_FIELDS = (("sourcelist", "V16"), ("seq", ">i4"), ("ra", ">f8"), ("dec", ">f8"),
           ("healpix", ">i8"), ("x", ">f4"), ("y", ">f4"), ("flux", ">f8"),
           ("flux_err", ">f8"), ("mag", ">f4"), ("mag_err", ">f4"), ("snr", ">f4"),
           ("flag", ">i4"))
COPY_COLUMNS = tuple(name for name, _ in _FIELDS)
#: the columns that may be NULL: "not measured" (NaN, infinity, or not given)
_NULLABLE = ("x", "y", "flux", "flux_err", "mag", "mag_err", "snr")


def _group(values: dict[str, np.ndarray], null: frozenset[str], oid: bytes) -> bytes:
    """Rows whose NULL fields are ``null``, as fixed-width COPY tuples."""
    n = len(values["seq"])
    layout: list[tuple[str, str]] = [("count", ">i2")]
    for name, fmt in _FIELDS:
        layout.append((f"len_{name}", ">i4"))
        if name not in null:
            layout.append((name, fmt))
    dtype = np.dtype(layout)
    # what every row of the group shares (field count, lengths, the list's oid) is one
    # row's bytes repeated; then each column is written over its field
    template = np.zeros(1, dtype=dtype)
    template["count"] = len(_FIELDS)
    for name, fmt in _FIELDS:
        template[f"len_{name}"] = -1 if name in null else np.dtype(fmt).itemsize
    template["sourcelist"] = np.frombuffer(oid, dtype="V16")[0]
    rows = np.empty(n, dtype=dtype)
    rows.view(np.uint8).reshape(n, dtype.itemsize)[:] = template.view(np.uint8)
    for name, _ in _FIELDS[1:]:
        if name not in null:
            rows[name] = values[name]
    return rows.tobytes()


def tuples(sourcelist: uuid.UUID, columns: Mapping[str, np.ndarray], start: int,
           stop: int) -> bytes:
    """Rows ``start`` to ``stop`` (seq numbers) of checked columns as binary COPY tuples
    (no header or trailer): with their HEALPix index (awecore.healpix, the one rule of the
    cone search), a missing flag as 0 and a non-finite measurement as NULL."""
    ra, dec = columns["ra"][start:stop], columns["dec"][start:stop]
    n = stop - start
    values: dict[str, np.ndarray] = {
        "seq": np.arange(start, stop, dtype=np.int32), "ra": ra, "dec": dec,
        "healpix": healpix_of(np.asarray(ra, dtype=np.float64),
                              np.asarray(dec, dtype=np.float64)),
        "flag": columns["flag"][start:stop] if "flag" in columns else np.zeros(n, np.int32)}
    absent = frozenset(c for c in _NULLABLE if c not in columns)
    given = [c for c in _NULLABLE if c in columns]
    pattern = np.zeros(n, dtype=np.uint8)
    for bit, name in enumerate(given):
        values[name] = columns[name][start:stop]
        pattern |= (~np.isfinite(values[name])).astype(np.uint8) << bit
    oid = sourcelist.bytes
    kinds = np.unique(pattern)
    if len(kinds) == 1:  # the usual case: no row-by-row NULLs, one block
        null = absent | {c for bit, c in enumerate(given) if int(kinds[0]) >> bit & 1}
        return _group(values, frozenset(null), oid)
    parts = []
    for kind in kinds.tolist():
        at = np.flatnonzero(pattern == kind)
        null = absent | {c for bit, c in enumerate(given) if kind >> bit & 1}
        parts.append(_group({k: v[at] for k, v in values.items()}, frozenset(null), oid))
    return b"".join(parts)
