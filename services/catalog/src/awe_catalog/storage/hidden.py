"""References to objects the caller may not see are shown as hidden, never by their oid.

A shared object may reference a private one (a product shared at 3 made from a user's own
calibration). Its ``refs`` would otherwise name the private oid to everyone who may see the
product. Each reference whose target the caller may not see becomes
``awecore.visibility.HIDDEN_OID`` (the nil UUID: the field keeps its type, and following it
finds nothing).

Checking costs one query per answer whose references point outside the answer itself; most
references point at objects every signed-in user sees (chips, instruments, raw frames,
shared calibrations), and privileges only ever rise, so the oids seen at ``SITE`` or above
are remembered per process and never asked again.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence

import asyncpg

from awecore.model import ObjectOut
from awecore.records import RefValue
from awecore.visibility import HIDDEN_OID, Privilege, Viewer

from ..models import Caller
from .sql import visibility

__all__ = ["hidden_targets", "hide_refs", "remember_shared"]

#: oids known to be shared with every signed-in user (privileges only rise: never stale)
_SHARED: set[str] = set()
_MAX_SHARED = 500_000


def _remember(oids: Sequence[str]) -> None:
    if len(_SHARED) + len(oids) > _MAX_SHARED:
        _SHARED.clear()
    _SHARED.update(oids)


def _targets(value: RefValue) -> list[str]:
    return value if isinstance(value, list) else [value]


async def hidden_targets(conn: asyncpg.Connection, targets: set[str], known: set[str],
                         caller: Caller) -> set[str]:
    """Of ``targets`` (oids that objects of an answer refer to), those the caller may not
    see; ``known``: the answer's own objects (visible, by the query that found them).
    Call after remembering the answer's shared objects (``remember_shared``)."""
    if caller.sees_all:
        return set()
    signed_in = Viewer.of(caller).name is not None
    wanted = {t for t in targets if t not in known and not (signed_in and t in _SHARED)}
    if not wanted:
        return set()
    vis, params = visibility(caller, "o", 2)
    rows = await conn.fetch(
        f"SELECT o.oid::text AS oid, o.privileges FROM objects o "
        f"WHERE o.oid = ANY($1::uuid[]) AND {vis}", [uuid.UUID(t) for t in wanted], *params)
    if signed_in:
        _remember([r["oid"] for r in rows if r["privileges"] >= Privilege.SITE])
    return wanted - {r["oid"] for r in rows}


def remember_shared(shown: Sequence[tuple[str, int]], caller: Caller) -> None:
    """The objects (oid, privileges) of an answer to a signed-in caller that every
    signed-in user may see: later answers referring to them need not ask again."""
    if not caller.sees_all and Viewer.of(caller).name is not None:
        _remember([oid for oid, privileges in shown if privileges >= Privilege.SITE])


async def hide_refs(conn: asyncpg.Connection, objects: Sequence[ObjectOut],
                    caller: Caller) -> list[ObjectOut]:
    """``objects`` (all visible to the caller) with references the caller may not see
    replaced by HIDDEN_OID."""
    out = list(objects)
    if caller.sees_all or not out:
        return out
    remember_shared([(o.oid, o.privileges) for o in out], caller)
    known = {o.oid for o in out}
    hidden = await hidden_targets(
        conn, {t for o in out for v in o.refs.values() for t in _targets(v)}, known, caller)
    if not hidden:
        return out
    for i, o in enumerate(out):
        if any(t in hidden for v in o.refs.values() for t in _targets(v)):
            refs: dict[str, RefValue] = {
                name: ([HIDDEN_OID if t in hidden else t for t in v] if isinstance(v, list)
                       else (HIDDEN_OID if v in hidden else v))
                for name, v in o.refs.items()}
            out[i] = o.model_copy(update={"refs": refs})
    return out
