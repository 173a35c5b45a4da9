"""Where every image product is on the sky, kept in memory: the prefilter of SIA's POS.

ObsCore's position columns are computed from each product's raw footprint (a string in
JSON attributes), so the database has no index to find the images near a position: a query
would compute them for every image (seconds at 10^5 images). This index holds each image
product's centre (a unit vector) and the radius of the circle through its farthest corner,
built once from the catalog and then kept up to date from the changelog (its gapless
sequence: only objects created since the last look are read). A search gives candidate oids;
the ObsCore SQL (privileges applied there) and the exact footprint test decide.

It holds oids and positions only, of objects whoever may see them, and never answers a
caller by itself. Any image whose footprint overlaps a region is inside its circle, so a
candidate list is never short of an answer.
"""

from __future__ import annotations

import asyncio

import asyncpg
import numpy as np

from ..storage.dal import created_since, footprint_rows, last_change
from ..tables import PRODUCT_CLASSES
from .regions import footprint_polygon

__all__ = ["INDEX", "FootprintIndex"]

#: changelog entries read per refresh step
_STEP = 50_000


def _unit(ra: np.ndarray, dec: np.ndarray) -> np.ndarray:
    a, d = np.radians(ra), np.radians(dec)
    return np.stack([np.cos(d) * np.cos(a), np.cos(d) * np.sin(a), np.sin(d)], axis=-1)


class FootprintIndex:
    def __init__(self) -> None:
        self.seq = -1
        self._at: dict[str, int] = {}
        self._oids: list[str] = []
        self._vec = np.zeros((0, 3))
        self._radius = np.zeros(0)
        self._lock = asyncio.Lock()

    def __len__(self) -> int:
        return len(self._oids)

    def _add(self, rows: list[asyncpg.Record]) -> None:
        oids, vecs, radii = [], [], []
        for r in rows:
            corners = footprint_polygon(r["footprint"])
            if corners is None or r["oid"] in self._at:
                continue
            v = _unit(corners[:, 0], corners[:, 1])
            c = v.sum(axis=0)
            c /= np.linalg.norm(c)
            radius = float(np.degrees(np.arccos(np.clip(v @ c, -1.0, 1.0))).max())
            oids.append(r["oid"])
            vecs.append(c)
            radii.append(radius + 1e-5)  # arccos near 1 is good to ~1e-6 deg
        if not oids:
            return
        for i, oid in enumerate(oids, start=len(self._oids)):
            self._at[oid] = i
        self._oids.extend(oids)
        self._vec = np.concatenate([self._vec, np.array(vecs)])
        self._radius = np.concatenate([self._radius, np.array(radii)])

    async def refresh(self, conn: asyncpg.Connection) -> None:
        """Catch up with the catalog: everything the first time, then what was created."""
        types = list(PRODUCT_CLASSES)
        async with self._lock:
            if self.seq < 0:
                # the sequence first: what is created during the scan comes next time
                seq = await last_change(conn)
                self._add(await footprint_rows(conn, types))
                self.seq = seq
                return
            while True:
                new = await created_since(conn, self.seq, _STEP)
                if not new:
                    return
                self._add(await footprint_rows(conn, types, [r["oid"] for r in new]))
                self.seq = int(new[-1]["seq"])
                if len(new) < _STEP:
                    return

    def near(self, ra: float, dec: float, radius: float) -> list[str]:
        """Oids of the images whose circle meets the circle (ra, dec, radius) (deg)."""
        if not self._oids:
            return []
        q = _unit(np.array(ra), np.array(dec))
        # compared as cosines: no arccos over every image
        limit = np.cos(np.radians(np.minimum(radius + self._radius, 180.0)))
        return [self._oids[i] for i in np.flatnonzero(self._vec @ q >= limit)]


#: the process's index (one catalog database per process)
INDEX = FootprintIndex()
