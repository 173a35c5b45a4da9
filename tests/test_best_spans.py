"""Best calibrations for a span of time (``until``): what a planner asks for the frames of a
night at once. The answer is the catalogue's rule over the span: the best at every moment of
it, or "varies" (null, and the request's number in ``varies``) when the best changes within
it; governance applies as for a moment. Each span's answer is checked against look-ups at
moments inside it.

Against the catalog app on the session's PostgreSQL; its own chip (a fresh name) and nights in
July 2019 that no other test module uses."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

import httpx
import pytest
from conftest import Users

pytestmark = pytest.mark.integration

NIGHT = dt.datetime(2019, 7, 3, 12, tzinfo=dt.UTC)  # noon: a night runs noon to noon
H = dt.timedelta(hours=1)


async def bias(client: httpx.AsyncClient, chip: str, start: dt.datetime, end: dt.datetime,
               project: str | None = None) -> str:
    r = await client.post("/objects", json={
        "type": "BiasFrame", "privileges": 3, "refs": {"chip": chip},
        "timestamp_start": start.isoformat(), "timestamp_end": end.isoformat(),
        "attributes": {"imstat": {"stdev": 1.0}}, **({"project": project} if project else {})})
    assert r.status_code == 201, r.text
    return str(r.json()["oid"])


async def ask(client: httpx.AsyncClient, chip: str, *spans: tuple[dt.datetime, dt.datetime]
              ) -> tuple[list[str | None], list[int]]:
    r = await client.post("/calibrations/best", json={"requests": [
        {"cls": "BiasFrame", "chip": chip, "time": t.isoformat(), "until": u.isoformat()}
        for t, u in spans]})
    assert r.status_code == 200, r.text
    got: dict[str, Any] = r.json()
    return [o and o["oid"] for o in got["objects"]], got["varies"]


async def at(client: httpx.AsyncClient, chip: str, *moments: dt.datetime) -> list[str | None]:
    r = await client.post("/calibrations/best", json={"requests": [
        {"cls": "BiasFrame", "chip": chip, "time": t.isoformat()} for t in moments]})
    assert r.status_code == 200, r.text
    assert r.json()["varies"] == []
    return [o and o["oid"] for o in r.json()["objects"]]


async def test_a_span_has_one_best_or_varies(admin: httpx.AsyncClient) -> None:
    name = f"span-{uuid.uuid4().hex[:8]}"
    r = await admin.post("/objects", json={"type": "Chip", "privileges": 3,
                                           "attributes": {"name": name}})
    assert r.status_code == 201, r.text
    chip = r.json()["oid"]
    evening, morning = NIGHT + 6 * H, NIGHT + 18 * H  # the night's frames, 18:00 to 06:00
    night2 = NIGHT + 24 * H
    whole = await bias(admin, chip, NIGHT, NIGHT + 24 * H)
    # one covering the whole night: the best over the span, and at every moment in it
    assert await ask(admin, name, (evening, morning)) == ([whole], [])
    assert await at(admin, name, evening, NIGHT + 12 * H, morning) == [whole] * 3
    # a span with nothing: none at any moment (not "varies")
    later = (NIGHT + 10 * 24 * H, NIGHT + 10 * 24 * H + 12 * H)
    assert await ask(admin, name, later) == ([None], [])
    # a newer one for the second half only: the best changes within the span
    half = await bias(admin, chip, NIGHT + 12 * H, NIGHT + 24 * H)
    assert await ask(admin, name, (evening, morning), (NIGHT + 13 * H, morning),
                     (evening, NIGHT + 11 * H)) == ([None, half, whole], [0])
    assert await at(admin, name, evening, NIGHT + 11 * H, NIGHT + 13 * H, morning) == [
        whole, whole, half, half]
    # a window that ends inside the span: the best changes (to none) there
    assert await ask(admin, name, (NIGHT + 20 * H, night2 + H)) == ([None], [0])
    assert await at(admin, name, NIGHT + 20 * H, night2 + H) == [half, None]
    # invalidated, the newer one is no candidate: one best again
    r = await admin.patch(f"/objects/{half}", json={"is_valid": 0, "reason": "bad rows"})
    assert r.status_code == 200, r.text
    assert await ask(admin, name, (evening, morning)) == ([whole], [])
    # a moment is a span of no length; a span must not end before it starts
    assert await ask(admin, name, (evening, evening)) == ([whole], [])
    r = await admin.post("/calibrations/best", json={"requests": [
        {"cls": "BiasFrame", "chip": name, "time": morning.isoformat(),
         "until": evening.isoformat()}]})
    assert r.status_code in (400, 422) and "until" in r.text, r.text


async def test_a_span_is_governed_like_a_moment(admin: httpx.AsyncClient,
                                                users: Users) -> None:
    name = f"span-{uuid.uuid4().hex[:8]}"
    r = await admin.post("/objects", json={"type": "Chip", "privileges": 3,
                                           "attributes": {"name": name}})
    assert r.status_code == 201, r.text
    chip = r.json()["oid"]
    night = NIGHT + 5 * 24 * H
    span = (night + 6 * H, night + 18 * H)
    pipeline = await bias(admin, chip, night, night + 24 * H)
    project = f"span-{uuid.uuid4().hex[:6]}"
    bob = await users.make("bob", project)
    alice = await users.make("alice", project)
    # bob's own newer bias for part of the night, shared with everyone: for bob the best
    # changes within the night; for alice (not governed, not hers) it does not
    bobs = await bias(bob, chip, night + 12 * H, night + 24 * H, project)
    assert (await alice.get(f"/objects/{bobs}")).status_code == 200
    assert await ask(alice, name, span) == ([pipeline], [])
    assert await ask(bob, name, span) == ([None], [0])
    assert await at(bob, name, span[0], span[1]) == [pipeline, bobs]
