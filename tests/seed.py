"""A small, known catalogue for API tests: two chips, two filters, calibrations, frames."""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass, field
from typing import Any

import httpx

NIGHT = dt.datetime(2003, 2, 14, 12, tzinfo=dt.UTC)


def day(offset: float) -> str:
    return (NIGHT + dt.timedelta(days=offset)).isoformat()


@dataclass
class Seeded:
    tag: str
    chips: dict[str, str] = field(default_factory=dict)
    filters: dict[str, str] = field(default_factory=dict)
    bias: dict[str, str] = field(default_factory=dict)
    flats: dict[str, str] = field(default_factory=dict)
    raws: list[str] = field(default_factory=list)
    reduced: list[str] = field(default_factory=list)


async def batch(client: httpx.AsyncClient, objects: list[dict[str, Any]]) -> list[str]:
    r = await client.post("/objects/batch", json={"objects": objects})
    assert r.status_code == 201, r.text
    return list(r.json()["oids"])


async def seed(client: httpx.AsyncClient, privileges: int = 3) -> Seeded:
    """Chips ccd53/ccd54 (names carry a unique tag), filters 841/842, per chip two bias
    frames (an old one and a newer one overlapping it), a master flat per chip and filter,
    and 3 reduced science frames per chip and filter."""
    tag = uuid.uuid4().hex[:6]
    s = Seeded(tag)
    base = {"privileges": privileges}
    (inst,) = await batch(client, [{**base, "type": "Instrument",
                                     "attributes": {"name": f"WFI-{tag}"}}])
    chip_names = [f"ccd53-{tag}", f"ccd54-{tag}"]
    for name, oid in zip(chip_names, await batch(client, [
            {**base, "type": "Chip", "attributes": {"name": n, "nx": 64, "ny": 64},
             "refs": {"instrument": inst}} for n in chip_names]), strict=True):
        s.chips[name] = oid
    filter_names = [f"841-{tag}", f"842-{tag}"]
    for name, oid in zip(filter_names, await batch(client, [
            {**base, "type": "Filter", "attributes": {"name": n}} for n in filter_names]),
            strict=True):
        s.filters[name] = oid
    for cname, chip in s.chips.items():
        raws = await batch(client, [
            {**base, "type": "RawBiasFrame", "filename": f"{tag}/{cname}/bias{i}.fits",
             "attributes": {"exptime": 0.0, "date_obs": day(0), "imstat": {"stdev": 5.0 + i}},
             "refs": {"chip": chip, "instrument": inst}} for i in range(4)])
        old, new = await batch(client, [
            {**base, "type": "BiasFrame", "refs": {"chip": chip, "raw_bias_frames": raws[:2]},
             "timestamp_start": day(-5), "timestamp_end": day(5),
             "attributes": {"imstat": {"stdev": 4.0}}},
            {**base, "type": "BiasFrame", "refs": {"chip": chip, "raw_bias_frames": raws[2:]},
             "timestamp_start": day(-1), "timestamp_end": day(1),
             "attributes": {"imstat": {"stdev": 3.0}}},
        ])
        s.bias[f"{cname}/old"], s.bias[f"{cname}/new"] = old, new
        for fname, filt in s.filters.items():
            (flat,) = await batch(client, [
                {**base, "type": "MasterFlatFrame", "refs": {"chip": chip, "filter": filt},
                 "timestamp_start": day(-1), "timestamp_end": day(1),
                 "attributes": {"imstat": {"stdev": 0.01 if fname.startswith("841") else 0.02}}}])
            s.flats[f"{cname}/{fname}"] = flat
            raws = await batch(client, [
                {**base, "type": "RawScienceFrame", "filename": f"{tag}/{cname}/{fname}/r{i}.fits",
                 "attributes": {"exptime": 300.0, "date_obs": day(0), "object": f"KIDS_{i}"},
                 "refs": {"chip": chip, "filter": filt}} for i in range(3)])
            s.raws.extend(raws)
            s.reduced.extend(await batch(client, [
                {**base, "type": "ReducedScienceFrame",
                 "attributes": {"exptime": 300.0, "imstat": {"stdev": 10.0 + i}},
                 "refs": {"chip": chip, "filter": filt, "raw": raw, "bias": new, "flat": flat}}
                for i, raw in enumerate(raws)]))
    return s
