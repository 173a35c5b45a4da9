"""A source list's columns on the wire: the FITS form the client sends, read back by the
catalog's decoder and by astropy, and the rules both forms keep (issue 17)."""

from __future__ import annotations

import io
import random

import numpy as np
import pytest
from astropy.io import fits
from astropy.table import Table

from awecore.errors import InvalidRequest, PayloadTooLarge
from awecore.source_columns import MAX_SOURCES, checked, decode_fits, encode_fits
from awecore.sources import SourceColumns


def columns(n: int, seed: int = 1) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    mag = rng.uniform(15, 25, n)
    mag[::5] = np.nan  # not measured
    return {"ra": rng.uniform(0, 360, n), "dec": rng.uniform(-90, 90, n),
            "x": rng.uniform(0, 2048, n), "y": rng.uniform(0, 4096, n),
            "flux": rng.uniform(1, 1e5, n), "flux_err": rng.uniform(1, 10, n),
            "mag": mag, "mag_err": rng.uniform(0, 1, n), "snr": rng.uniform(1, 100, n),
            "flag": rng.integers(0, 4, n)}


def test_fits_round_trip_in_the_tables_types() -> None:
    cols = columns(1000)
    body = encode_fits(cols)
    got = checked(decode_fits(body))
    assert set(got) == set(cols)
    for name in ("ra", "dec", "flux", "flux_err"):  # double precision: every bit
        assert np.array_equal(got[name], cols[name])
    for name in ("x", "y", "mag", "mag_err", "snr"):  # real: as the table would round them
        assert got[name].dtype == np.dtype(">f4")
        assert np.array_equal(got[name], cols[name].astype(np.float32), equal_nan=True)
    assert np.array_equal(got["flag"], cols["flag"]) and got["flag"].dtype == np.int32
    # a FITS file astropy reads as such, with units
    table = Table.read(io.BytesIO(body), format="fits")
    assert table.colnames == list(cols) and str(table["ra"].unit) == "deg"
    assert np.array_equal(np.asarray(table["ra"]), cols["ra"])


def test_lists_with_none_encode_as_json_would() -> None:
    sent = {"ra": [1.0, 2.0, 3.0], "dec": [0.5, 0.6, 0.7], "mag": [20.0, None, 21.5],
            "flag": [0, 1, 2]}
    got = checked(decode_fits(encode_fits(sent)))
    as_json = SourceColumns.model_validate(sent).arrays()
    assert set(got) == set(as_json)
    for name, values in as_json.items():
        assert np.array_equal(got[name], values.astype(got[name].dtype), equal_nan=True)
    assert np.isnan(got["mag"][1])


def test_a_table_written_by_astropy_is_read() -> None:
    """A user's own file: upper-case names, unsigned flags (stored with TZERO), two HDUs
    before the table."""
    table = Table({"RA": [10.0, 11.0], "DEC": [-5.0, -6.0],
                   "FLAG": np.array([1, 40000], dtype=np.uint16),
                   "MAG": np.array([19.5, np.nan], dtype=np.float32)})
    buf = io.BytesIO()
    fits.HDUList([fits.PrimaryHDU(np.zeros((3, 3))), fits.ImageHDU(np.ones(5)),
                  fits.BinTableHDU(table)]).writeto(buf)
    got = checked(decode_fits(buf.getvalue()))
    assert got["ra"].tolist() == [10.0, 11.0] and got["flag"].tolist() == [1, 40000]
    assert got["mag"][0] == np.float32(19.5) and np.isnan(got["mag"][1])


def fits_table(**cols: fits.Column) -> bytes:
    buf = io.BytesIO()
    fits.HDUList([fits.PrimaryHDU(), fits.BinTableHDU.from_columns(
        [fits.Column(name=k, **v) for k, v in cols.items()])]).writeto(buf)
    return buf.getvalue()


@pytest.mark.parametrize(("body", "message"), [
    (b"", "not a FITS file"),
    (b"<html>hello</html>", "not a FITS file"),
    (b"SIMPLE  =                    T" + b" " * 100, "truncated"),
    (fits_table(ra={"format": "D", "array": [1.0]}, colour={"format": "E", "array": [1.0]}),
     "unknown source column 'colour'"),
    (fits_table(ra={"format": "D", "array": [1.0]}, ra_={"format": "D", "array": [1.0]}),
     "unknown source column 'ra_'"),
    (fits_table(ra={"format": "D", "array": [1.0]}, dec={"format": "10A", "array": ["a"]}),
     "TFORM2"),
    (fits_table(ra={"format": "D", "array": [1.0]}, dec={"format": "2D", "array": [[1, 2]]}),
     "TFORM2"),
    (fits_table(ra={"format": "D", "array": [1.0]}), "no dec column"),
    (fits_table(ra={"format": "D", "array": [np.nan]}, dec={"format": "D", "array": [1.0]}),
     "ra nan is outside"),
    (fits_table(ra={"format": "D", "array": [1.0]}, dec={"format": "D", "array": [91.0]}),
     "dec 91.0 is outside"),
    (fits_table(ra={"format": "D", "array": [1.0]}, dec={"format": "D", "array": [1.0]},
                flag={"format": "E", "array": [1.0]}), "flag must hold integers"),
    (fits_table(ra={"format": "D", "array": [1.0]}, dec={"format": "D", "array": [1.0]},
                x={"format": "D", "array": [1e39]}), "beyond the range"),
    (fits.PrimaryHDU(np.zeros(4)).header.tostring().encode() + b"\0" * 2880,
     "no binary table"),
])
def test_bad_fits_is_invalid_request(body: bytes, message: str) -> None:
    with pytest.raises(InvalidRequest, match=message):
        checked(decode_fits(body))


def test_truncated_table_is_refused() -> None:
    body = encode_fits(columns(500))
    for cut in (len(body) - 2880 - 100, 2880 + 400, 2880 * 2 + 8):
        with pytest.raises(InvalidRequest, match="truncated"):
            decode_fits(body[:cut])


def test_mangled_fits_is_only_ever_invalid_request() -> None:
    """Bytes flipped, cut or repeated anywhere: the decoder answers a 4xx error or columns
    that pass the checks, never another exception (a 500)."""
    good = encode_fits(columns(50))
    rng = random.Random(17)
    for _ in range(400):
        body = bytearray(good)
        for _ in range(rng.randint(1, 6)):
            at = rng.randrange(len(body))
            body[at] = rng.randrange(256) if rng.random() < 0.7 else ord(rng.choice("0123 =-"))
        if rng.random() < 0.3:
            body = body[:rng.randrange(len(body))]
        try:
            got = checked(decode_fits(bytes(body)))
        except (InvalidRequest, PayloadTooLarge):
            continue
        assert 1 <= len(got["ra"]) <= MAX_SOURCES


def test_rules_of_both_forms() -> None:
    with pytest.raises(PayloadTooLarge, match="at most 1000000"):
        checked({"ra": np.zeros(MAX_SOURCES + 1), "dec": np.zeros(MAX_SOURCES + 1)})
    with pytest.raises(InvalidRequest, match="no sources"):
        checked({"ra": np.zeros(0), "dec": np.zeros(0)})
    with pytest.raises(InvalidRequest, match="column dec has 2 values; ra has 3"):
        checked({"ra": np.zeros(3), "dec": np.zeros(2)})
    with pytest.raises(InvalidRequest, match="outside a 4-byte integer"):
        checked({"ra": [1.0], "dec": [1.0], "flag": np.array([2**40])})
    ok = checked({"ra": [0.0, 360.0], "dec": [-90.0, 90.0], "mag": [np.inf, np.nan]})
    assert ok["ra"].tolist() == [0.0, 360.0]  # the limits are in range; infinity is "none"
    with pytest.raises(InvalidRequest, match="beyond the range"):
        encode_fits({"ra": [1.0], "dec": [1.0], "mag": [1e39]})  # the client checks first
    with pytest.raises(InvalidRequest, match="not a list of numbers"):
        encode_fits({"ra": ["a"], "dec": [1.0]})
