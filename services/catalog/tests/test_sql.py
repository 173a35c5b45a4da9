"""Compiling the query AST to SQL: values are parameters, identifiers come from the model."""

from __future__ import annotations

import datetime as dt
import uuid

import pytest

import awecore as awe
from awe_catalog.models import Caller
from awe_catalog.storage.sql import (
    MAX_RESOLVED,
    SOURCE_TYPES,
    compile_count,
    compile_lookups,
    compile_select,
    compile_source_count,
    compile_source_select,
    source_filter,
)
from awecore import Source
from awecore.errors import InvalidQuery
from awecore.query import QuerySpec

ALICE = Caller(name="alice", default_project="survey", projects=["survey"])
ADMIN = Caller(name="admin", is_admin=True, default_project="admin")


def test_reference_path_becomes_subquery_with_parameters() -> None:
    q = (awe.ReducedScienceFrame.chip.name == "ccd53") & (
        awe.ReducedScienceFrame.filter.name == "841")
    sql = compile_select(q.spec(), ADMIN, 0, 10)
    # chip and filter are data-ID columns (0013): an index probe, not a walk via object_refs
    assert "o.dim_chip IN (SELECT o1.oid FROM objects o1" in sql.sql
    assert "o.dim_filter IN (SELECT o2.oid FROM objects o2" in sql.sql
    assert "object_refs" not in sql.sql
    assert "ccd53" not in sql.sql and "841" not in sql.sql
    assert "ccd53" in sql.params and "841" in sql.params
    assert "ReducedScienceFrame" in sql.params


def test_named_dimensions_are_looked_up_first_then_constants() -> None:
    q = (awe.ReducedScienceFrame.chip.name == "ccd53") & (
        awe.ReducedScienceFrame.filter.name == "841")
    lookups = compile_lookups(q.spec(), ALICE)
    assert len(lookups) == 2
    assert "SELECT t1.oid FROM objects t1 WHERE t1.type = $" in lookups[0].sql
    assert "privileges >= 3" in lookups[0].sql and "ccd53" in lookups[0].params
    assert lookups[0].sql.endswith(f"LIMIT {MAX_RESOLVED + 1}")
    chip = uuid.uuid4()
    # one chip found: an equality; too many filters: the sub-query stays
    sql = compile_select(q.spec(), ALICE, 0, 10, resolved=[[chip], None])
    assert "(o.dim_chip IS NOT NULL AND o.dim_chip = $" in sql.sql and chip in sql.params
    assert "o.dim_filter IN (SELECT" in sql.sql and "841" in sql.params
    none = compile_select(q.spec(), ALICE, 0, 10, resolved=[[], [chip, uuid.uuid4()]])
    assert "o.dim_chip IS NOT NULL AND FALSE" in none.sql
    assert "o.dim_filter = ANY($" in none.sql
    assert compile_lookups((awe.ReducedScienceFrame.exptime > 1).spec(), ALICE) == []


def test_other_references_go_through_object_refs() -> None:
    sql = compile_select((awe.ReducedScienceFrame.bias.is_valid == 1).spec(), ADMIN, 0, 10)
    assert "o.oid IN (SELECT r1.src FROM object_refs r1" in sql.sql
    many = compile_select((awe.BiasFrame.raw_bias_frames == str(uuid.uuid4())).spec(),
                          ADMIN, 0, 10)
    assert "object_refs" in many.sql and "dim_" not in many.sql


def test_data_id_attributes_are_columns() -> None:
    sql = compile_select((awe.CoaddedRegriddedFrame.tile == "KIDS_1").spec(), ADMIN, 0, 10)
    assert "o.dim_tile = $" in sql.sql and "->>" not in sql.sql
    when = compile_select((awe.RawScienceFrame.date_obs > dt.datetime(2003, 2, 14)).spec(),
                          ADMIN, 0, 10)
    assert "o.obs_time > $" in when.sql
    # a reference compared with an oid, or with None, reads the column in place
    oid = str(uuid.uuid4())
    raw = compile_select((awe.ReducedScienceFrame.raw == oid).spec(), ADMIN, 0, 10)
    assert "(o.dim_raw IS NOT NULL AND o.dim_raw = $" in raw.sql and uuid.UUID(oid) in raw.params
    none = compile_count((awe.ReducedScienceFrame.raw == None).spec(), ADMIN)  # noqa: E711
    assert "NOT (o.dim_raw IS NOT NULL AND TRUE)" in none.sql


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


def test_source_columns_compare_directly_and_the_source_list_path_joins() -> None:
    q = (Source.mag < 20) & (Source.sourcelist.frame.chip.name == "ccd53")
    sql = compile_source_select(q.spec(), ADMIN, 0, 10)
    assert sql.sql.startswith("SELECT s.sourcelist::text AS sourcelist, s.seq, s.ra")
    assert "JOIN objects l ON l.oid = s.sourcelist" in sql.sql
    assert "s.mag < $" in sql.sql and "l.oid IN (SELECT r" in sql.sql
    assert "r1.name = 'frame'" in sql.sql and "o2.dim_chip IN (SELECT" in sql.sql
    assert 20.0 in sql.params and "ccd53" in sql.params and "ccd53" not in sql.sql
    assert sql.sql.endswith("ORDER BY s.sourcelist, s.seq LIMIT $5 OFFSET $6")
    # an admin with a condition on columns only needs no join
    plain = compile_source_count((Source.flag == 0).spec(), ADMIN)
    assert plain.sql == "SELECT count(*) FROM sources s WHERE s.flag = $1" and plain.params == [0]


def test_source_visibility_applies_to_the_list_and_every_object_on_the_path() -> None:
    sql = compile_source_select((Source.sourcelist.frame.chip.name == "a").spec(), ALICE, 0, 10)
    assert "(l.creator = $1 OR l.privileges >= 3" in sql.sql
    assert sql.sql.count("privileges >= 3") == 3  # the list, the frame, the chip
    assert sql.params[:2] == ["alice", ["survey"]]
    bare = compile_source_count(Source.select().spec(), ALICE)
    assert "JOIN objects l" in bare.sql and "l.privileges >= 3" in bare.sql


def test_source_list_by_oid_is_the_column() -> None:
    oid = str(uuid.uuid4())
    sql = compile_source_count((Source.sourcelist == oid).spec(), ADMIN)
    assert sql.sql == "SELECT count(*) FROM sources s WHERE (s.sourcelist = $1)"
    assert sql.params == [uuid.UUID(oid)]
    sql = compile_source_count(Source.sourcelist.in_([oid]).spec(), ADMIN)
    assert "s.sourcelist = ANY($1::uuid[])" in sql.sql


def test_source_order_scope_and_types() -> None:
    q = Source.select().order_by(Source.mag, descending=True).project_only("kids")
    sql = compile_source_select(q.spec(), ADMIN, 20, 10)
    assert "ORDER BY s.mag DESC NULLS LAST, s.sourcelist DESC, s.seq DESC" in sql.sql
    assert "l.project = $1" in sql.sql and sql.params == ["kids", 10, 20]
    # in_() on a real column compares as real, as == does, so 18.3 finds a stored 18.3
    assert "s.mag = ANY($1::real[])" in compile_source_count(
        Source.mag.in_([18.3]).spec(), ADMIN).sql
    assert set(SOURCE_TYPES) == set(Source.fields)


@pytest.mark.parametrize("evil", ["x'; DROP TABLE sources; --", "' OR '1'='1", "$1 OR TRUE"])
def test_source_values_stay_parameters(evil: str) -> None:
    q = (Source.sourcelist.frame.chip.name == evil) | Source.sourcelist.chip.name.like(evil)
    sql = compile_source_select(q.spec(), ALICE, 0, 10)
    assert "DROP" not in sql.sql and "'1'='1" not in sql.sql and evil in sql.params


@pytest.mark.parametrize(("where", "message"), [
    ({"node": "compare", "op": "lt", "path": ["colour"], "value": 1},
     "Source has no attribute 'colour'; it has dec, flag, flux"),
    ({"node": "compare", "op": "lt", "path": ["mag"], "value": "20"}, "mag is a float"),
    ({"node": "compare", "op": "eq", "path": ["flag"], "value": 2**40}, "4-byte integer"),
    ({"node": "compare", "op": "lt", "path": ["mag"], "value": 1e300}, "4-byte float"),
    ({"node": "compare", "op": "eq", "path": ["sourcelist"], "value": "x"}, "not an oid"),
    ({"node": "compare", "op": "eq", "path": ["mag", "x"], "value": 1}, "is a value"),
    ({"node": "compare", "op": "eq", "path": ["sourcelist", "frme"], "value": 1},
     "SourceList has no attribute 'frme' \\(in Source.sourcelist.frme\\)"),
    ({"node": "like", "path": ["mag"], "pattern": "1*"}, "text attributes only"),
])
def test_bad_source_queries_name_the_problem(where: dict[str, object], message: str) -> None:
    spec = QuerySpec.model_validate({"cls": "Source", "where": where})
    with pytest.raises(InvalidQuery, match=message):
        compile_source_select(spec, ALICE, 0, 10)


def test_source_queries_select_source_only() -> None:
    with pytest.raises(InvalidQuery, match="selects Source, not 'RawFrame'"):
        compile_source_count(awe.RawFrame.select().spec(), ALICE)
    with pytest.raises(InvalidQuery, match="sources are queried at /sources/query"):
        compile_count(Source.select().spec(), ALICE)
    with pytest.raises(InvalidQuery, match="ordering follows no references"):
        compile_source_select(Source.select().order_by("sourcelist.frame.exptime").spec(),
                              ALICE, 0, 10)
    with pytest.raises(InvalidQuery, match="its own order"):
        source_filter(Source.select().order_by(Source.mag).spec(), ALICE, 8)
    cone = source_filter((Source.snr > 5).spec(), ALICE, 8)
    assert "s.snr > $10" in cone.sql and cone.params == ["alice", ["survey"], 5.0]
