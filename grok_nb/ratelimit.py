"""One request rate for a whole client: every job's submits and polls share it."""

from __future__ import annotations

import asyncio
import time
from typing import Callable


class RateLimiter:
    """Spaces requests at least ``1/rate`` seconds apart, first come first served."""

    def __init__(self, rate: float, clock: Callable[[], float] = time.monotonic):
        if rate <= 0:
            raise ValueError(f"rate must be positive requests per second, not {rate!r}")
        self.interval = 1.0 / rate
        self._clock = clock
        self._next = 0.0

    def reserve(self, now: float | None = None) -> float:
        """Claim the next free slot; returns how long to wait for it (pure, no sleeping)."""
        now = self._clock() if now is None else now
        slot = max(now, self._next)
        self._next = slot + self.interval
        return slot - now

    def pause(self, seconds: float, now: float | None = None) -> None:
        """Hold every request back ``seconds`` from now (after a 429 with Retry-After)."""
        now = self._clock() if now is None else now
        self._next = max(self._next, now + seconds)

    async def acquire(self) -> None:
        """Wait for this request's slot."""
        delay = self.reserve()
        if delay > 0:
            await asyncio.sleep(delay)
