"""The DSL builds the AST the catalog compiles; errors name the problem early."""

from __future__ import annotations

import datetime as dt

import pytest

import awecore as awe
from awecore.errors import InvalidQuery
from awecore.query import And, Compare, In, Like, Not, Or, QuerySpec


def test_five_line_script_builds_and_of_two_paths() -> None:
    q = (awe.ReducedScienceFrame.chip.name == "ccd53") & (
        awe.ReducedScienceFrame.filter.name == "841")
    spec = q.spec()
    assert spec.cls == "ReducedScienceFrame"
    assert spec.where == And(items=(
        Compare(op="eq", path=("chip", "name"), value="ccd53"),
        Compare(op="eq", path=("filter", "name"), value="841"),
    ))


def test_operators() -> None:
    f = awe.RawScienceFrame
    assert (f.exptime < 10).where == Compare(op="lt", path=("exptime",), value=10)
    assert (f.exptime >= 1.5).where == Compare(op="ge", path=("exptime",), value=1.5)
    assert (f.object != "x").where == Compare(op="ne", path=("object",), value="x")
    assert f.filename.like("KIDS_*").where == Like(path=("filename",), pattern="KIDS_*")
    assert f.chip.name.in_(["a", "b"]).where == In(path=("chip", "name"), values=("a", "b"))
    when = dt.datetime(2003, 2, 14, tzinfo=dt.UTC)
    assert (f.date_obs > when).where == Compare(op="gt", path=("date_obs",),
                                                value=when.isoformat())
    assert isinstance((~(f.exptime < 1)).where, Not)
    assert isinstance(((f.exptime < 1) | (f.exptime > 9)).where, Or)
    b = f.exptime.between(1, 2).where
    assert (b.low, b.high) == (1, 2)  # type: ignore[union-attr]


def test_deep_paths_and_structs() -> None:
    q = awe.SourceList.frame.raw.filter.name == "841"
    assert q.where.path == ("frame", "raw", "filter", "name")  # type: ignore[union-attr]
    assert (awe.ReducedScienceFrame.flat.imstat.stdev > 1).where.path == (  # type: ignore[union-attr]
        "flat", "imstat", "stdev")


def test_unknown_attribute_is_named() -> None:
    with pytest.raises(InvalidQuery, match="Chip has no attribute 'nme'"):
        _ = awe.ReducedScienceFrame.chip.nme
    with pytest.raises(InvalidQuery, match="is a value"):
        _ = awe.RawFrame.exptime.foo


def test_combining_unrelated_classes_fails() -> None:
    with pytest.raises(InvalidQuery, match="cannot combine"):
        _ = (awe.BiasFrame.exptime > 1) & (awe.Chip.name == "x")


def test_combining_base_and_subclass_keeps_subclass() -> None:
    q = (awe.RawFrame.exptime > 1) & (awe.RawScienceFrame.object == "M31")
    assert q.root is awe.RawScienceFrame


def test_scopes_and_order() -> None:
    q = awe.BiasFrame.select().user_only().order_by("creation_date", descending=True)
    spec = q.spec()
    assert spec.scope == "user"
    assert spec.order_by[0].path == ("creation_date",) and spec.order_by[0].descending
    assert awe.BiasFrame.select().project_only("kids").spec().project == "kids"


def test_spec_round_trips_json() -> None:
    q = (awe.ReducedScienceFrame.chip.name == "ccd53") | ~(awe.ReducedScienceFrame.exptime < 3)
    spec = q.spec()
    assert QuerySpec.model_validate_json(spec.model_dump_json()) == spec


def test_malformed_ast_is_rejected() -> None:
    with pytest.raises(ValueError):
        QuerySpec.model_validate({"cls": "BiasFrame", "where": {"node": "drop", "path": ["x"]}})
    with pytest.raises(ValueError):
        QuerySpec.model_validate({"cls": "BiasFrame", "where": {"node": "compare", "op": "eq",
                                                                "path": [], "value": 1}})
    deep: dict[str, object] = {"node": "compare", "op": "eq", "path": ["oid"], "value": "x"}
    for _ in range(40):
        deep = {"node": "not", "item": deep}
    with pytest.raises(ValueError, match="deeper"):
        QuerySpec.model_validate({"cls": "BiasFrame", "where": deep})


def test_source_queries_use_the_same_ast() -> None:
    from awecore import Source
    from awecore.sources import SourceQuery

    q = (Source.mag < 20) & (Source.sourcelist.frame.chip.name == "ccd53")
    assert isinstance(q, SourceQuery)
    assert q.spec() == QuerySpec(cls="Source", where=And(items=(
        Compare(op="lt", path=("mag",), value=20),
        Compare(op="eq", path=("sourcelist", "frame", "chip", "name"), value="ccd53"),
    )))
    assert Source.sourcelist.frame.raw.filter.name.like("8*").where == Like(
        path=("sourcelist", "frame", "raw", "filter", "name"), pattern="8*")
    assert isinstance(((Source.flag == 0) | ~Source.snr.between(1, 5)).where, Or)
    ordered = q.order_by(Source.mag, descending=True).limit(100).user_only()
    assert isinstance(ordered, SourceQuery) and ordered.limit_n == 100
    assert ordered.spec().order_by[0].path == ("mag",) and ordered.spec().scope == "user"
    assert isinstance(Source.select(), SourceQuery) and Source.select().where is None


def test_source_paths_name_what_exists() -> None:
    from awecore import Source

    with pytest.raises(InvalidQuery, match="SourceList has no attribute 'frme'"):
        _ = Source.sourcelist.frme
    with pytest.raises(InvalidQuery, match="is a value"):
        _ = Source.mag.x
    with pytest.raises(InvalidQuery, match="cannot combine a query on Source with one on Chip"):
        _ = (Source.mag < 20) & (awe.Chip.name == "x")
    with pytest.raises(InvalidQuery, match="Source has no attribute 'colour'"):
        Source.select().order_by("colour")
    with pytest.raises(InvalidQuery, match="rows, not objects"):
        (Source.mag < 20).oids()
    with pytest.raises(InvalidQuery, match="no column"):
        (Source.mag < 20).to_table(["colour"])


def test_parse_query_text() -> None:
    from awecore.model import parse_query

    q = parse_query("ReducedScienceFrame.chip.name == 'ccd53'")
    assert q.root is awe.ReducedScienceFrame and q.spec().where == Compare(
        op="eq", path=("chip", "name"), value="ccd53")
    sources = parse_query("(Source.mag < 20) & (Source.sourcelist.frame.chip.name == 'ccd53')")
    assert sources.spec().cls == "Source"
    assert parse_query("Source").spec().where is None
    with pytest.raises(awe.InvalidQuery, match="known: Source, "):
        parse_query("Sauce.mag < 20")
    with pytest.raises(awe.InvalidQuery, match="unsupported call system"):
        parse_query("__import__('os').system('true')")


def test_a_query_has_no_truth_value() -> None:
    """The slides' `(A) and (B)` would keep only B: every truth test says to use &, |, ~."""
    chip = awe.ReducedScienceFrame.chip.name == "ccd53"
    filt = awe.ReducedScienceFrame.filter == "841"
    for attempt in (lambda: chip and filt, lambda: chip or filt, lambda: not chip,
                    lambda: bool(chip), lambda: [q for q in (chip,) if q],
                    lambda: (awe.Source.mag < 20) and chip):
        with pytest.raises(TypeError, match=r"combine conditions with & \(and\), \| \(or\) "
                                            r"and ~ \(not\)"):
            attempt()
    with pytest.raises(TypeError, match="is a path, not a condition"):
        _ = awe.ReducedScienceFrame.chip and chip
    assert (chip & filt).spec().where == And(items=(
        Compare(op="eq", path=("chip", "name"), value="ccd53"),
        Compare(op="eq", path=("filter", "name"), value="841")))


def test_a_reference_compared_with_a_string_compares_its_name() -> None:
    f = awe.ReducedScienceFrame
    oid = "01a20000-0000-7000-8000-000000000000"
    assert (f.filter == "841").where == (f.filter.name == "841").where
    assert (f.chip.like("ccd5*")).where == Like(path=("chip", "name"), pattern="ccd5*")
    assert (f.filter != "841").where == Not(item=Compare(op="eq", path=("filter", "name"),
                                                          value="841"))
    assert (f.filter != oid).where == Compare(op="ne", path=("filter",), value=oid)
    assert (f.filter == oid).where == Compare(op="eq", path=("filter",), value=oid)
    assert (f.filter == oid.upper()).where.path == ("filter",)  # type: ignore[union-attr]
    assert f.filter.in_(["841", "842"]).where == In(path=("filter", "name"),
                                                     values=("841", "842"))
    assert f.filter.in_([oid]).where == In(path=("filter",), values=(oid,))
    assert f.filter.in_(["841", oid]).where == Or(items=(
        In(path=("filter",), values=(oid,)), In(path=("filter", "name"), values=("841",))))
    assert (awe.SourceList.frame.raw.filter == "841").where.path == (  # type: ignore[union-attr]
        "frame", "raw", "filter", "name")
    assert (f.filter == None).where == Compare(op="eq", path=("filter",), value=None)  # noqa: E711
    assert (f.chip.name == "ccd53").where.path == ("chip", "name")  # type: ignore[union-attr]
    with pytest.raises(InvalidQuery, match="refers to a RawScienceFrame, which has no name"):
        _ = f.raw == "frame-1"
    with pytest.raises(InvalidQuery, match="which has no name"):
        _ = awe.Source.sourcelist == "mine"


def test_parse_query_refuses_and_or_not_saying_what_to_write() -> None:
    from awecore.model import parse_query

    assert parse_query("ReducedScienceFrame.filter == '841'").spec().where == Compare(
        op="eq", path=("filter", "name"), value="841")
    for text in ("(RawFrame.chip.name == 'a') and (RawFrame.filter == '841')",
                 "(RawFrame.exptime < 1) or (RawFrame.exptime > 9)",
                 "not (RawFrame.exptime < 1)"):
        with pytest.raises(InvalidQuery, match=r"use & \(and\), \| \(or\) and ~ \(not\)"):
            parse_query(text)
