"""The target maker's words: a dry-run plan and a run of jobs, shaped for the make page.

The compute service answers a plan as lines (``awecore.targets.Node.describe``: ``use  WHAT:
OID [note]``, ``make WHAT: reason; reason [note]``, ``refuse WHAT: reason``); the portal holds
no model of its own, so it reads those lines back into rows (action, class, data ID, the
object used, why) that a template lays out as a table. A run's jobs are summed up in one state
(``running``, ``done``, ``failed``) that the page carries as ``data-state``: what a person
reads as "finished" and what a test waits for are the same thing.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

__all__ = ["PlanRow", "RunState", "parse_plan", "plan_summary", "run_state", "split_reasons"]

RunState = Literal["running", "done", "failed"]

#: a trailing note of a plan line: `` [left out ... (…)]``
_NOTE = re.compile(r" \[([^\[\]]*)\]$")


@dataclass(frozen=True)
class PlanRow:
    """One node of a plan: what the planner will do with one product, and why."""

    action: str  # "use", "make" or "refuse"
    cls: str
    data_id: str  # the rest of the target in words: chip/filter, night, raw, tile
    oid: str | None = None  # the object used (for "use")
    reasons: list[str] = field(default_factory=list)  # why it is made, or refused
    notes: list[str] = field(default_factory=list)  # inputs left out by the QC policy, ...


def split_reasons(text: str) -> list[str]:
    """``a; b (c; d); e`` as ``[a, b (c; d), e]``: a reason may quote others in brackets."""
    out, depth, start = [], 0, 0
    for i, ch in enumerate(text):
        if ch in "([":
            depth += 1
        elif ch in ")]":
            depth = max(0, depth - 1)
        elif ch == ";" and depth == 0 and text[i + 1:i + 2] == " ":
            out.append(text[start:i].strip())
            start = i + 2
    out.append(text[start:].strip())
    return [r for r in out if r]


def parse_line(line: str) -> PlanRow:
    """One line of ``Submitted.plan`` as a row; a line of another shape is kept whole as
    its ``data_id`` (the page still shows it, rather than fail on a newer wording)."""
    action, _, rest = line.strip().partition(" ")
    rest = rest.strip()
    notes: list[str] = []
    while (m := _NOTE.search(rest)) is not None:
        notes.insert(0, m.group(1))
        rest = rest[:m.start()]
    what, sep, tail = rest.partition(": ")
    if not sep or action not in ("use", "make", "refuse"):
        return PlanRow(action=action or "?", cls="", data_id=line.strip())
    cls, _, data_id = what.partition(" ")
    if action == "use":
        return PlanRow(action, cls, data_id.strip(), oid=tail.strip() or None, notes=notes)
    return PlanRow(action, cls, data_id.strip(), reasons=split_reasons(tail), notes=notes)


def parse_plan(lines: Iterable[str]) -> list[PlanRow]:
    return [parse_line(line) for line in lines if line.strip()]


def plan_summary(rows: Sequence[PlanRow]) -> dict[str, int]:
    """How many products are used, made and refused (every key present)."""
    counts = Counter(r.action for r in rows)
    return {a: counts.get(a, 0) for a in ("use", "make", "refuse")}


def run_state(jobs: Iterable[Mapping[str, Any]]) -> RunState:
    """A run's state from its jobs: ``failed`` once any failed or was cancelled and nothing
    else can move (the rest done, or waiting on the failed one), ``done`` when all are done,
    else ``running``."""
    statuses = [str(j["status"]) for j in jobs]
    if statuses and all(s == "done" for s in statuses):
        return "done"
    if any(s in ("failed", "cancelled") for s in statuses) and not any(
            s in ("waiting", "ready", "running") for s in statuses):
        return "failed"
    return "running"
