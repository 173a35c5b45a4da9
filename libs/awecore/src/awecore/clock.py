"""Hybrid logical clock.

Curation changes replicate last-writer-wins; wall clocks of sites drift, so each change
carries ``physical_ms << 16 | logical``: monotonic per site, never behind what the site has
seen from others, and within clock skew of real time. Ties are broken by site id.
"""

from __future__ import annotations

import threading
import time

__all__ = ["HybridClock", "hlc_wins"]

_LOGICAL_BITS = 16


class HybridClock:
    def __init__(self, wall_ms: float | None = None) -> None:
        self._last = 0
        self._lock = threading.Lock()
        self._fixed_wall = wall_ms

    def _wall(self) -> int:
        return int(self._fixed_wall if self._fixed_wall is not None else time.time() * 1000)

    def now(self) -> int:
        """A new timestamp, greater than every one issued or observed before."""
        with self._lock:
            candidate = self._wall() << _LOGICAL_BITS
            self._last = candidate if candidate > self._last else self._last + 1
            return self._last

    def observe(self, remote: int) -> int:
        """Merge a timestamp seen from another site; returns a new local timestamp."""
        with self._lock:
            self._last = max(self._last, remote)
        return self.now()


def hlc_wins(hlc: int, site: str, other_hlc: int, other_site: str) -> bool:
    """Whether change (hlc, site) beats (other_hlc, other_site) under last-writer-wins."""
    return (hlc, site) > (other_hlc, other_site)
