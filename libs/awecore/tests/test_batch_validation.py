"""check_batch (a batch validated in one pass per class) against the exact path (ObjectIn,
then validate_object): what it takes comes out the same; whatever the exact path refuses,
or must bring to another form, it leaves to that path."""

from __future__ import annotations

import json
from typing import Any

import pytest
from pydantic import ValidationError

from awecore.errors import InvalidObject
from awecore.ids import new_oid
from awecore.model import ObjectIn, check_batch, validate_object

CHIP, FILTER, RAW = new_oid(), new_oid(), new_oid()

VALID: list[dict[str, Any]] = [
    {"type": "Chip", "attributes": {"name": "ccd01"}},
    {"type": "Filter", "privileges": 3, "project": "survey", "comments": "r band",
     "attributes": {"name": "r"}},
    {"type": "ReducedScienceFrame", "privileges": 3, "is_valid": 2, "quality_flags": 5,
     "attributes": {"exptime": 300, "object": "KIDS_1", "imstat": {"mean": 1000, "stdev": None},
                    "date_obs": "2003-02-14T01:02:03"},
     "refs": {"chip": CHIP, "filter": FILTER}, "filename": "red/1.fits", "file_size": 10,
     "checksum": "abc", "software_version": "1.0", "process_params": {"a": None, "b": [1]}},
    {"type": "BiasFrame", "refs": {"chip": CHIP, "raw_bias_frames": [RAW, new_oid()]},
     "timestamp_start": "2003-02-13T00:00:00", "timestamp_end": "2003-02-15T00:00:00+02:00"},
    {"type": "BiasFrame", "refs": {"raw_bias_frames": []}, "oid": new_oid(),
     "timestamp_start": None, "attributes": {"exptime": None}},
    {"type": "RawScienceFrame", "attributes": {"date_obs": "2003-02-14T01:02:03.5+00:00",
                                               "imstat": {"mean": 1.5}}},
    {"type": "Chip", "attributes": {}, "refs": {}},
]

#: objects the exact path refuses: check_batch must leave them to it (which words why)
REFUSED: list[Any] = [
    {"type": "Chip", "attributes": {"seeing": 0.8}},
    {"type": "RawScienceFrame", "attributes": {"exptime": "long"}},
    {"type": "Chip", "colour": "red"},
    {"type": "NoSuchClass"},
    {"type": "RawFrame"},
    {"type": "Chip", "privileges": 9},
    {"type": "Chip", "refs": {"instrument": "x' OR 1=1"}},
    {"type": "Chip", "refs": {"nope": CHIP}},
    {"type": "BiasFrame", "refs": {"raw_bias_frames": RAW}},
    {"type": "BiasFrame", "refs": {"chip": [CHIP]}},
    {"type": "Chip", "timestamp_start": "2003-02-13T00:00:00"},
    {"type": "Chip", "process_params": {"a": 1}},
    {"type": "BiasFrame", "timestamp_start": "2003-02-15T00:00:00",
     "timestamp_end": "2003-02-13T00:00:00"},
    {"type": "Chip", "attributes": None},
    {"type": "Chip", "refs": {"instrument": None}},
    {"type": "Chip", "comments": "x" * 10_001},
    {"type": 5},
    {"attributes": {}},
    "Chip",
]
#: objects the exact path takes in another form (an oid to bring to its canonical form) or
#: takes although they name what their class lacks (as null): left to it too
OTHER_FORM: list[Any] = [
    {"type": "Chip", "refs": {"instrument": CHIP.upper()}},
    {"type": "Chip", "oid": "{" + CHIP + "}"},
    {"type": "Chip", "filename": None},
]


def exact(item: Any) -> dict[str, Any]:
    """What the catalogue's exact path makes of an object (services/objects.py: prepare)."""
    obj = ObjectIn.model_validate(item)
    _, attributes = validate_object(obj)
    return {**{k: getattr(obj, k) for k in ObjectIn.model_fields}, "attributes": attributes}


@pytest.mark.parametrize("item", VALID)
def test_what_it_takes_comes_out_as_the_exact_path_makes_it(item: dict[str, Any]) -> None:
    decoded = json.loads(json.dumps(item))
    got = check_batch([decoded])
    assert got is not None
    assert got == [exact(decoded)]
    assert list(got[0]) == list(ObjectIn.model_fields)


def test_a_batch_keeps_its_order_across_classes() -> None:
    decoded = json.loads(json.dumps(VALID * 3))
    got = check_batch(decoded)
    assert got == [exact(d) for d in decoded]
    assert got[0]["refs"] is not got[6]["refs"]  # each object its own dicts
    assert got[3]["attributes"] is not got[3 + len(VALID)]["attributes"]  # given none


@pytest.mark.parametrize("item", REFUSED + OTHER_FORM)
def test_what_it_leaves_goes_the_exact_path(item: Any) -> None:
    decoded = json.loads(json.dumps(item))
    assert check_batch([decoded]) is None
    assert check_batch([json.loads(json.dumps(VALID[0])), decoded]) is None  # one spoils all
    if item in OTHER_FORM:
        exact(decoded)
    else:
        with pytest.raises((ValidationError, InvalidObject)):
            exact(decoded)
