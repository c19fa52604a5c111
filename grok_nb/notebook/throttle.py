"""At most N view refreshes a second, and never a lost last state (pure: the caller owns the clock)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class Throttle:
    """Decides, for each update offered, whether to draw now or once the interval has passed."""

    interval: float = 0.25
    _last: float = float("-inf")
    _pending: bool = False

    def offer(self, now: float, *, force: bool = False) -> float | None:
        """None: draw now. A number: skip, and make sure a draw happens after that many seconds."""
        if force or now - self._last >= self.interval:
            self._last, self._pending = now, False
            return None
        if self._pending:
            return float("inf")  # a trailing draw is already scheduled
        self._pending = True
        return self._last + self.interval - now

    def flushed(self, now: float) -> bool:
        """Record a trailing draw; False when a forced draw already made it unnecessary."""
        if not self._pending:
            return False
        self._last, self._pending = now, False
        return True
