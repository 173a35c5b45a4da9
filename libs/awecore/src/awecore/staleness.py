"""One notion of "stale": when an object is out of date, and how that is said.

Two parts of AWE ask the question: the planner (``awecore.targets``), which must decide
whether to use an object or make it anew, and the lineage service, which answers "why is
this stale?" over the graph. They find their facts in different places (the catalogue, the
lineage tables) but must judge them alike and say so in the same words, so the rule lives
here, once. It is a contract: stdlib only, nothing that talks to a service.

An object is stale when

- it was invalidated;
- it was made by other software than its kind is made by now (an object that records no
  version was not made by a pipeline: ingested or registered by hand, nothing to compare);
- it was made with other process parameters than those asked for (only a planner knows
  what is asked for);
- one of its inputs was invalidated, or is no longer the best of its kind (a newer valid
  calibration covers its time; a newer product of the same raw frame exists);
- a calibration it used no longer covers its time (a calibration scientist shortened or
  moved the validity window): a calibration is never used outside its window;
- one of its inputs is itself stale (it must be remade first);
- a set of inputs (the night's raw frames of a kind) is no longer the same.

Each function returns the reasons as sentences; no reasons means up to date on that count.
Where the history of a curation is known (who changed a window or a verdict, when, why),
:func:`curated` words it, and the reasons say it.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

__all__ = ["InputState", "covers", "curated", "input_reasons", "input_set_changed",
           "inputs_remade", "moment", "own_reasons", "window_change"]

@dataclass(frozen=True)
class InputState:
    """What is known of one input an object was made from."""

    ref: str  # the reference name on the object (bias, flat, frame, ...)
    oid: str | None  # the input the object was made from
    invalidated: bool = False
    best: str | None = None  # what would be used now, if known (None: unknown)
    stale: str | None = None  # why the input itself is out of date, if it is
    #: the moment (in words, see :func:`moment`) the input's window no longer covers
    uncovered: str | None = None
    #: who changed it, when and why (see :func:`curated`), if known
    change: str | None = None


def moment(when: dt.datetime) -> str:
    """A moment as the reasons say it: to the minute, in UTC."""
    return when.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")


def covers(start: dt.datetime | None, end: dt.datetime | None, when: dt.datetime) -> bool:
    """Whether a validity window covers a moment (both ends included; no window covers
    nothing)."""
    return start is not None and end is not None and start <= when <= end


def window_change(old: tuple[dt.datetime | None, dt.datetime | None],
                  new: tuple[dt.datetime | None, dt.datetime | None]) -> str:
    """How a validity window changed, in a word: shortened, extended or moved."""
    (a, b), (c, d) = old, new
    if None in (a, b, c, d):
        return "changed"
    assert a is not None and b is not None and c is not None and d is not None
    if c >= a and d <= b:
        return "shortened"
    if c <= a and d >= b:
        return "extended"
    return "moved"


def curated(what: str, by: str, at: dt.datetime, reason: str | None = None) -> str:
    """A curation in words: "shortened by alice at 2026-05-01 10:00 UTC (bad amplifier)"."""
    return f"{what} by {by} at {moment(at)}" + (f" ({reason})" if reason else "")


def input_reasons(state: InputState) -> list[str]:
    """Why an object is stale because of one input (none: not on its account)."""
    ref, oid, best = state.ref, state.oid, state.best
    better = best is not None and best != oid
    reasons = []
    if state.invalidated:
        # the change, if known, says it: "invalidated by alice at ... (why)"
        reasons.append(f"its {ref} {oid} was {state.change or 'invalidated'}"
                       + (f"; the best is {best}" if better else ""))
    elif state.uncovered is not None:
        reasons.append(f"its {ref} {oid} no longer covers {state.uncovered}"
                       + (f" since it was {state.change}" if state.change else "")
                       + (f"; the best is {best}" if better else ""))
    elif better:
        reasons.append(f"its {ref} {oid} is no longer the best; the best is {best}")
    if state.stale is not None:
        reasons.append(f"its {ref} {oid} must be remade, as it is itself stale ({state.stale})")
    return reasons


def inputs_remade(ref: str, count: int, why: str) -> str:
    """Some of a list of product inputs (one per raw frame) are stale themselves."""
    return f"{count} of its {ref} must be remade, as they are themselves stale ({why})"


def input_set_changed(ref: str, products: bool) -> str:
    """A list of inputs is no longer what would be used: other products are the best now,
    or the night's raw frames of the kind changed."""
    return f"its {ref} are no longer the night's best" if products else \
        f"the night's {ref} changed"


def own_reasons(kind: str, made_by: str | None, now: str | None, *,
                invalidated: bool = False, made_with: Mapping[str, Any] | None = None,
                asked: Mapping[str, Any] | None = None) -> list[str]:
    """Why an object is stale on its own account: invalidated, made by other software than
    ``now`` (the version its ``kind`` is made by today, if known), or made with other
    parameters (``made_with``) than ``asked`` (None: nothing asked, nothing to compare)."""
    reasons = []
    if invalidated:
        reasons.append("it was invalidated")
    if made_by is not None and now is not None and made_by != now:
        reasons.append(f"made by software {made_by}; {kind} is now made by {now}")
    if asked is not None and dict(made_with or {}) != dict(asked):
        reasons.append(f"made with {dict(made_with or {})}, asked for {dict(asked)}")
    return reasons
