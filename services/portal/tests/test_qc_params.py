"""What the QC and timeline pages read from a form and from a record, without services:
dates, names and verdicts refused with a 400 (never passed on), a point's place in time,
and the query each QC quantity sends."""

from __future__ import annotations

import datetime as dt

import pytest

from awe_portal.pages._params import check_name, oid, optional_time, reason, verdict
from awe_portal.pages._qcseries import METRICS, _spec, _value, object_time
from awecore.errors import InvalidRequest
from awecore.query import Between, Compare
from awecore.records import ObjectOut

T = dt.datetime(2004, 5, 1, 12, tzinfo=dt.UTC)


def _record(**fields: object) -> ObjectOut:
    base: dict[str, object] = {
        "oid": "01234567-89ab-7def-8123-456789abcdef", "type": "ReadNoise", "project": "p",
        "site": "s", "creation_date": T + dt.timedelta(days=30), "creator": "carol",
        "hlc": 1, "curation_hlc": 1, "curation_site": "s"}
    return ObjectOut.model_validate({**base, **fields})


def test_form_values_are_checked() -> None:
    assert optional_time("2004-05-01", "from") == dt.datetime(2004, 5, 1, tzinfo=dt.UTC)
    assert optional_time("2004-05-01", "to", end_of_day=True) == \
        dt.datetime(2004, 5, 1, 23, 59, 59, 999999, tzinfo=dt.UTC)
    assert optional_time("2004-05-01T12:30", "start") == T + dt.timedelta(minutes=30)
    assert optional_time(" ", "from") is None
    assert check_name(" ccd50 ", "chip") == "ccd50" and check_name("", "chip") is None
    assert check_name("ESO_CCD_#65", "chip") == "ESO_CCD_#65"
    assert verdict("0") == 0 and reason(" why ") == "why"
    assert oid("01234567-89AB-7DEF-8123-456789ABCDEF") == "01234567-89ab-7def-8123-456789abcdef"
    for bad in (lambda: optional_time("yesterday", "from"), lambda: check_name("<b>", "chip"),
                lambda: verdict("3"), lambda: reason(""), lambda: reason("x" * 2001),
                lambda: oid("nope")):
        with pytest.raises(InvalidRequest):
            bad()


def test_a_point_sits_at_its_exposure_or_the_middle_of_its_window() -> None:
    assert object_time(_record(attributes={"date_obs": "2004-05-02T03:00:00"})) == \
        dt.datetime(2004, 5, 2, 3, tzinfo=dt.UTC)
    windowed = _record(timestamp_start=T, timestamp_end=T + dt.timedelta(days=1))
    assert object_time(windowed) == T + dt.timedelta(hours=12)
    assert object_time(_record()) == T + dt.timedelta(days=30)  # when it was made


def test_values_are_read_from_nested_attributes() -> None:
    record = _record(attributes={"imstat": {"median": 301.5}, "n": True, "s": "x"})
    assert _value(record, ("imstat", "median")) == 301.5
    assert _value(record, ("imstat", "stdev")) is None
    assert _value(record, ("n",)) is None and _value(record, ("s",)) is None


def test_each_quantity_asks_its_class_for_the_chip_filter_and_dates() -> None:
    by_key = {m.key: m for m in METRICS}
    assert set(by_key) == {"read_noise", "bias_level", "flat_rms", "hot_pixels", "cold_pixels",
                           "zeropoint", "astrometric_rms", "seeing", "source_count"}
    spec = _spec(by_key["read_noise"], "ccd50", "r", T, T + dt.timedelta(days=9))
    assert spec.cls == "ReadNoise" and spec.where is not None
    items = spec.where.items  # type: ignore[union-attr]
    assert Compare(op="eq", path=("chip", "name"), value="ccd50") in items
    assert not any(getattr(i, "path", None) == ("filter", "name") for i in items)  # per chip
    assert Compare(op="ge", path=("timestamp_end",), value=T.isoformat()) in items
    spec = _spec(by_key["seeing"], "ccd50", "r", T, None)
    items = spec.where.items  # type: ignore[union-attr]
    assert Compare(op="eq", path=("filter", "name"), value="r") in items
    between = next(i for i in items if isinstance(i, Between))
    assert between.path == ("frame", "raw", "date_obs") and between.low == T.isoformat()
