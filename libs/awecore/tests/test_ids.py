"""Oids made in blocks (``new_oids``): canonical UUIDv7 text, in creation order, each its own."""

from __future__ import annotations

import uuid

from awecore.ids import new_oid, new_oids


def test_oids_made_together_are_uuid7_in_order() -> None:
    made = [*new_oids(5000), new_oid(), *new_oids(3)]
    ids = [uuid.UUID(o) for o in made]
    assert [str(i) for i in ids] == made  # canonical text: stored and compared as is
    assert all(i.version == 7 and i.variant == uuid.RFC_4122 for i in ids)
    assert made == sorted(made) and len(set(made)) == len(made)
    stamps = [i.int >> 80 for i in ids]
    assert stamps == sorted(set(stamps))  # a millisecond of its own each
    random = {i.int & ((1 << 62) - 1) for i in ids}
    assert len(random) == len(ids)  # the random bits differ too (74 of them)


def test_no_oids() -> None:
    assert new_oids(0) == []
