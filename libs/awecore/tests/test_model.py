"""The object model: declarations, validation and the wire format."""

from __future__ import annotations

import datetime as dt

import pytest

import awecore as awe
from awecore.errors import InvalidObject
from awecore.ids import new_oid
from awecore.model import ObjectIn, ObjectOut, registry, validate_object


def test_polymorphic_subclasses() -> None:
    names = registry.subclass_names(awe.RawFrame)
    assert {"RawBiasFrame", "RawDomeFlatFrame", "RawTwilightFlatFrame", "RawScienceFrame",
            "RawStandardFrame"} <= set(names)
    assert "BiasFrame" not in names
    assert "BiasFrame" in registry.subclass_names(awe.CalFile)
    assert "ReadNoise" in registry.subclass_names(awe.CalFile)


def test_every_chain_class_is_declared() -> None:
    chain = ["RawBiasFrame", "RawDomeFlatFrame", "RawTwilightFlatFrame", "RawScienceFrame",
             "ReadNoise", "BiasFrame", "HotPixelMap", "DomeFlatFrame", "ColdPixelMap",
             "TwilightFlatFrame", "MasterFlatFrame", "ReducedScienceFrame",
             "AstrometricParameters", "PhotometricParameters", "SourceList", "RegriddedFrame",
             "CoaddedRegriddedFrame", "Instrument", "Chip", "Filter"]
    for name in chain:
        assert name in registry
        assert not registry.get(name).abstract


def test_to_record_splits_columns_attributes_and_refs() -> None:
    chip_oid = new_oid()
    frame = awe.RawBiasFrame(exptime=0.0, chip=chip_oid, filename="raw/b1.fits",
                             imstat=awe.ImStat(mean=400.0, stdev=5.0))
    rec = frame.to_record()
    assert rec.type == "RawBiasFrame"
    assert rec.filename == "raw/b1.fits"
    assert rec.attributes == {"exptime": 0.0, "imstat": {"mean": 400.0, "median": None,
                                                          "stdev": 5.0, "min": None,
                                                          "max": None}}
    assert rec.refs == {"chip": chip_oid}


def test_unknown_field_on_instance() -> None:
    with pytest.raises(AttributeError, match="no field 'colour'"):
        awe.RawBiasFrame(colour="red")


def test_validate_rejects_unknown_attribute_and_wrong_type() -> None:
    obj = ObjectIn(type="RawScienceFrame", attributes={"exptime": "long", "seeing": 1.0})
    with pytest.raises(InvalidObject) as info:
        validate_object(obj)
    fields = {e["field"] for e in info.value.errors}
    assert fields == {"attributes.exptime", "attributes.seeing"}
    assert "no attribute 'seeing'" in info.value.detail


def test_validate_rejects_bad_refs_and_abstract_classes() -> None:
    with pytest.raises(InvalidObject, match="no reference 'bias'"):
        validate_object(ObjectIn(type="RawScienceFrame", refs={"bias": new_oid()}))
    with pytest.raises(InvalidObject, match="expected a list"):
        validate_object(ObjectIn(type="BiasFrame", refs={"raw_bias_frames": new_oid()}))
    with pytest.raises(InvalidObject, match="abstract"):
        validate_object(ObjectIn(type="RawFrame"))
    with pytest.raises(InvalidObject, match="unknown class"):
        validate_object(ObjectIn(type="NoSuchFrame"))


def test_validity_only_on_calibrations() -> None:
    now = dt.datetime(2003, 2, 14, tzinfo=dt.UTC)
    with pytest.raises(InvalidObject, match="no field timestamp_start"):
        validate_object(ObjectIn(type="RawBiasFrame", timestamp_start=now))
    cls, _ = validate_object(ObjectIn(type="BiasFrame", timestamp_start=now,
                                      timestamp_end=now + dt.timedelta(days=1)))
    assert cls is awe.BiasFrame
    with pytest.raises(InvalidObject, match="ends before it starts"):
        validate_object(ObjectIn(type="BiasFrame", timestamp_start=now,
                                 timestamp_end=now - dt.timedelta(days=1)))


def test_record_round_trip_and_instance_access() -> None:
    out = ObjectOut(type="ReducedScienceFrame", oid=new_oid(), project="p", site="s",
                    creation_date=dt.datetime.now(dt.UTC), creator="me", hlc=1,
                    curation_hlc=1, curation_site="s",
                    attributes={"imstat": {"stdev": 2.5}, "exptime": 300.0})
    again = ObjectOut.model_validate(out.model_dump(mode="json"))
    assert again == out
    obj = awe.DBObject.from_record(again)
    assert isinstance(obj, awe.ReducedScienceFrame)
    assert obj.imstat.stdev == 2.5
    assert obj.exptime == 300.0
    assert obj.creator == "me"
    with pytest.raises(AttributeError, match="immutable"):
        obj.exptime = 1.0


def test_oids_are_uuid7_and_time_ordered() -> None:
    a, b = new_oid(), new_oid()
    assert a[14] == "7" and a < b
