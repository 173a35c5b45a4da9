"""How far each peer has been followed, and the digest that shows two sites agree."""

from __future__ import annotations

import datetime as dt
from typing import Any

import asyncpg
from pydantic import BaseModel

from awecore.client import AsyncCatalogClient
from awecore.errors import AweError

from ..storage.cursors import CursorStore
from .follow import PeerFollower

__all__ = ["PeerStatus", "SiteStatus", "StatusService"]


class PeerStatus(BaseModel):
    site: str
    applied_sequence: int
    peer_sequence: int | None
    lag_changes: int | None
    lag_seconds: float | None
    waiting: int
    applied_since_start: int
    last_error: str | None


class SiteStatus(BaseModel):
    site: str
    peers: list[PeerStatus]
    digest: dict[str, Any]


class StatusService:
    def __init__(self, pool: asyncpg.Pool, local: AsyncCatalogClient,
                 followers: dict[str, PeerFollower], site: str) -> None:
        self.pool = pool
        self.local = local
        self.followers = followers
        self.site = site

    async def status(self) -> SiteStatus:
        peers = []
        now = dt.datetime.now(dt.UTC)
        for name, follower in self.followers.items():
            async with self.pool.acquire() as conn:
                store = CursorStore(conn)
                row = await store.get(name)
                waiting = await store.count_waiting(name)
            try:
                page = await follower.remote.request("GET", "/changes", params={"limit": 1})
                peer_seq: int | None = int(page["last_sequence"])
            except (AweError, OSError):
                peer_seq = None
            lag = None if peer_seq is None else max(0, peer_seq - row["last_seq"])
            seconds = None
            if lag == 0:
                seconds = 0.0
            elif lag and row["last_time"] is not None:
                seconds = (now - row["last_time"]).total_seconds()
            peers.append(PeerStatus(site=name, applied_sequence=row["last_seq"],
                                    peer_sequence=peer_seq, lag_changes=lag, lag_seconds=seconds,
                                    waiting=waiting, applied_since_start=follower.applied,
                                    last_error=row["last_error"]))
        digest = dict(await self.local.request("GET", "/digest"))
        return SiteStatus(site=self.site, peers=peers, digest=digest)
