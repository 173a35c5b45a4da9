"""The make page's reading of a plan and of a run: the planner's own lines, back as rows."""

from __future__ import annotations

import datetime as dt

from awe_portal.pages._makeplan import (
    parse_line,
    parse_plan,
    plan_summary,
    run_state,
    split_reasons,
)
from awecore.targets import Node

OID = "01a23457-8bf8-7751-82d6-71f2453afba5"


def test_rows_from_the_planners_own_words() -> None:
    """The lines compute sends are ``Node.describe``'s: read back, they give what made them."""
    night = dt.date(2006, 6, 6)
    used = Node("BiasFrame", "ccd50", None, night, action="use", oid=OID,
                notes=["left out raw 1 (is_valid 0)"])
    made = Node("ReducedScienceFrame", "ccd50", "841", night, raw=OID, action="make",
                reasons=["its bias must be remade (no valid BiasFrame exists; stale)",
                         "new software"])
    refused = Node("HotPixelMap", "ccd51", None, night, action="refuse",
                   reasons=["QC refused its bias"])
    rows = parse_plan([used.describe(), made.describe(), refused.describe(), ""])
    assert [(r.action, r.cls) for r in rows] == [("use", "BiasFrame"),
                                                  ("make", "ReducedScienceFrame"),
                                                  ("refuse", "HotPixelMap")]
    assert rows[0].oid == OID and rows[0].data_id == "ccd50 2006-06-06"
    assert rows[0].notes == ["left out raw 1 (is_valid 0)"] and rows[0].reasons == []
    assert rows[1].data_id == f"ccd50/841 2006-06-06 raw {OID}" and rows[1].oid is None
    assert rows[1].reasons == made.reasons  # a reason quoting others stays whole
    assert rows[2].reasons == ["QC refused its bias"]
    assert plan_summary(rows) == {"use": 1, "make": 1, "refuse": 1}


def test_a_line_of_another_shape_is_kept_whole() -> None:
    row = parse_line("something new: the planner said more")
    assert row.cls == "" and row.data_id == "something new: the planner said more"
    assert split_reasons("a; b [c; d]; e") == ["a", "b [c; d]", "e"]


def test_the_state_of_a_run() -> None:
    def jobs(*statuses: str) -> list[dict[str, str]]:
        return [{"status": s} for s in statuses]

    assert run_state(jobs("done", "done")) == "done"
    assert run_state(jobs("done", "running", "waiting")) == "running"
    # a failure ends the run only once nothing else can move
    assert run_state(jobs("failed", "running")) == "running"
    assert run_state(jobs("failed", "failed", "done")) == "failed"
    assert run_state(jobs("cancelled")) == "failed"
    assert run_state([]) == "running"
