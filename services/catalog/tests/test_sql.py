"""Compiling the query AST to SQL: values are parameters, identifiers come from the model."""

from __future__ import annotations

import datetime as dt
import uuid

import pytest

import awecore as awe
from awe_catalog.models import Caller
from awe_catalog.storage.sql import compile_count, compile_select
from awecore.errors import InvalidQuery
from awecore.query import QuerySpec

ALICE = Caller(name="alice", default_project="survey", projects=["survey"])
ADMIN = Caller(name="admin", is_admin=True, default_project="admin")


def test_reference_path_becomes_subquery_with_parameters() -> None:
    q = (awe.ReducedScienceFrame.chip.name == "ccd53") & (
        awe.ReducedScienceFrame.filter.name == "841")
    sql = compile_select(q.spec(), ADMIN, 0, 10)
    assert sql.sql.count("o.oid IN (SELECT r") == 2
    assert "ccd53" not in sql.sql and "841" not in sql.sql
    assert "ccd53" in sql.params and "841" in sql.params
    assert ["ReducedScienceFrame"] in sql.params


def test_polymorphic_type_filter() -> None:
    sql = compile_select(awe.RawFrame.select().spec(), ADMIN, 0, 10)
    types = sql.params[0]
    assert "RawBiasFrame" in types and "RawStandardFrame" in types and "BiasFrame" not in types


def test_visibility_filter_applies_to_root_and_joined_objects() -> None:
    sql = compile_select((awe.RawFrame.chip.name == "a").spec(), ALICE, 0, 10)
    assert sql.sql.count("privileges >= 3") == 2
    assert "alice" in sql.params and ["survey"] in sql.params
    assert "privileges >=" not in compile_select(awe.RawFrame.select().spec(), ADMIN, 0, 1).sql


@pytest.mark.parametrize("evil", [
    "x'; DROP TABLE objects; --",
    "' OR '1'='1",
    "ccd53\\' OR 1=1 --",
    "$99 OR TRUE",
])
def test_sql_fragments_in_values_stay_parameters(evil: str) -> None:
    sql = compile_select((awe.Chip.name == evil).spec(), ALICE, 0, 10)
    assert evil not in sql.sql
    assert evil in sql.params
    like = compile_select(awe.Chip.name.like(evil).spec(), ALICE, 0, 10)
    assert "DROP" not in like.sql and "OR '1'" not in like.sql


def test_like_translates_wildcards_and_escapes() -> None:
    sql = compile_select(awe.RawFrame.filename.like("KIDS_*?%").spec(), ADMIN, 0, 10)
    assert "KIDS\\_%_\\%" in sql.params


def test_struct_and_attribute_casts() -> None:
    sql = compile_select((awe.ReducedScienceFrame.imstat.stdev > 3).spec(), ADMIN, 0, 10)
    assert "(o.attributes -> 'imstat' ->> 'stdev')::double precision >" in sql.sql
    when = dt.datetime(2003, 2, 14, 12, tzinfo=dt.UTC)
    sql = compile_select((awe.RawFrame.date_obs < when).spec(), ADMIN, 0, 10)
    assert when in sql.params


def test_reference_equality_by_object_id() -> None:
    oid = str(uuid.uuid4())
    sql = compile_select((awe.ReducedScienceFrame.bias == oid).spec(), ADMIN, 0, 10)
    assert uuid.UUID(oid) in sql.params


@pytest.mark.parametrize(("spec", "message"), [
    ({"cls": "Nope"}, "unknown class 'Nope'"),
    ({"cls": "RawFrame", "where": {"node": "compare", "op": "eq", "path": ["colour"],
                                   "value": 1}}, "RawFrame has no attribute 'colour'"),
    ({"cls": "RawFrame", "where": {"node": "compare", "op": "eq", "path": ["exptime"],
                                   "value": "long"}}, "exptime is a float; 'long' is a str"),
    ({"cls": "RawFrame", "where": {"node": "compare", "op": "lt", "path": ["date_obs"],
                                   "value": "yesterday"}}, "not ISO 8601"),
    ({"cls": "RawFrame", "where": {"node": "compare", "op": "eq", "path": ["privileges"],
                                   "value": 1.5}}, "is an int"),
    ({"cls": "RawFrame", "where": {"node": "compare", "op": "eq", "path": ["chip"],
                                   "value": "ccd53"}}, "not an oid"),
    ({"cls": "RawFrame", "where": {"node": "compare", "op": "eq", "path": ["exptime", "x"],
                                   "value": 1}}, "is a value"),
    ({"cls": "RawFrame", "where": {"node": "like", "path": ["exptime"], "pattern": "1*"}},
     "text attributes only"),
    ({"cls": "ReducedScienceFrame", "where": {"node": "compare", "op": "eq",
                                              "path": ["imstat"], "value": 1}}, "group of values"),
    ({"cls": "RawFrame", "order_by": [{"path": ["chip", "name"]}]}, "ordering follows no"),
])
def test_bad_queries_name_the_problem(spec: dict[str, object], message: str) -> None:
    with pytest.raises(InvalidQuery, match=message):
        compile_select(QuerySpec.model_validate(spec), ALICE, 0, 10)


def test_count_and_scopes() -> None:
    sql = compile_count(awe.BiasFrame.select().user_only().spec(), ALICE)
    assert sql.sql.startswith("SELECT count(*)") and "o.creator = " in sql.sql
    sql = compile_count(awe.BiasFrame.select().project_only().spec(), ALICE)
    assert "survey" in sql.params
