"""Who a token is, remembered in this catalog process, and forgotten the moment it may change.

Every request is authenticated; asking the database each time (a pool connection, a query
joining tokens, users and memberships, the connection's reset) was a third of a small
request's cost. The answer for a token is therefore kept here, under the token's hash, and
only while it cannot be stale:

- the table triggers of migration 0009 announce at commit every revocation and every change
  to users and memberships (``NOTIFY awe_auth``); every catalog process listens and forgets
  all it knows when it hears one; the process that revokes (or changes a user) forgets
  before it answers, so its own next request is refused whatever the notification's timing;
- nothing is kept while this process is not listening (before the first connection, after
  one is lost, until it listens again; what was announced meanwhile is missed, so it starts
  empty), and an answer read while a change was heard is not kept (``generation``);
- an answer is kept at most ``ttl`` seconds, so the database still notes a token's use
  (``last_used``, at most once a minute) and a missed notification is short-lived.

Unknown and revoked tokens are never kept: they are refused by the database every time.
"""

from __future__ import annotations

import asyncio
import time

import asyncpg

from awecore.server import pg

from ..models import Caller

__all__ = ["CHANNEL", "TokenCache", "follow_tokens"]

#: what the triggers of migration 0009 notify on
CHANNEL = "awe_auth"


class TokenCache:
    """Callers by token hash, for ``ttl`` seconds, while ``listening``."""

    def __init__(self, ttl: float = 30.0, most: int = 10_000) -> None:
        self.ttl = ttl
        self.most = most  # tokens kept at once (then all are forgotten: a burst of new ones)
        self.listening = False
        #: bumped by every forgetting: an answer read across one is not kept
        self.generation = 0
        self._callers: dict[str, tuple[Caller, float]] = {}

    def get(self, token_hash: str) -> Caller | None:
        """The caller of a token, if known and fresh (a copy: a handler may not change
        what the next request sees)."""
        if not self.listening:
            return None
        found = self._callers.get(token_hash)
        if found is None:
            return None
        caller, at = found
        if time.monotonic() - at > self.ttl:
            self._callers.pop(token_hash, None)
            return None
        return caller.model_copy(update={"projects": list(caller.projects)})

    def put(self, token_hash: str, caller: Caller, generation: int) -> None:
        """Keep what the database said, unless something changed since it was asked
        (``generation`` as it was before the query) or this process is not listening."""
        if not self.listening or generation != self.generation:
            return
        if len(self._callers) >= self.most:
            self._callers.clear()
        self._callers[token_hash] = (caller.model_copy(
            update={"projects": list(caller.projects)}), time.monotonic())

    def forget(self) -> None:
        """Forget every token (a revocation, a user's or a membership's change)."""
        self.generation += 1
        self._callers.clear()

    def deaf(self) -> None:
        """The process stopped listening: keep nothing until it listens again."""
        self.listening = False
        self.forget()


async def follow_tokens(pool: asyncpg.Pool, cache: TokenCache, stop: asyncio.Event) -> None:
    """Listen for changes to who tokens are until ``stop``; the cache is used only while a
    connection listens (it starts empty on every connection)."""

    def heard(_conn: object, _pid: int, _channel: str, _payload: str) -> None:
        cache.forget()

    async def listening() -> None:
        cache.forget()
        cache.listening = True

    await pg.listen(pool, CHANNEL, "tokens", stop, heard, listening, cache.deaf)
