"""A spending ledger: every submit reserves its estimate before a byte is sent; the actual cost replaces it.

Thread-safe and all-or-nothing: jobs started from several threads, tasks and grids at once can
never pass the budget together, and a grid that does not fit is refused whole.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass

from ..errors import BudgetExceeded, ValidationError


@dataclass
class Reservation:
    """Money held for one job until its cost is known."""

    usd: float
    settled: bool = False


class Budget:
    """``limit_usd`` None means no limit (the ledger still counts what was spent)."""

    def __init__(self, limit_usd: float | None = None):
        self._lock = threading.Lock()
        self._spent = 0.0
        self._held = 0.0
        self.limit_usd: float | None = None
        self.set_limit(limit_usd)

    def set_limit(self, limit_usd: float | None) -> None:
        """Change the limit; what is already spent or held still counts against it."""
        if limit_usd is not None and (isinstance(limit_usd, bool) or not isinstance(limit_usd, (int, float))
                                      or not 0 <= limit_usd < float("inf")):
            raise ValidationError("budget_usd", limit_usd, "a finite number of dollars, 0 or more (or None)")
        with self._lock:
            self.limit_usd = None if limit_usd is None else float(limit_usd)

    def __repr__(self) -> str:
        limit = "none" if self.limit_usd is None else f"${self.limit_usd:.2f}"
        return f"<Budget limit={limit} spent=${self.spent_usd:.3f} reserved=${self.reserved_usd:.3f}>"

    @property
    def spent_usd(self) -> float:
        """What finished jobs cost (actual where reported, else estimated)."""
        return round(self._spent, 6)

    @property
    def reserved_usd(self) -> float:
        """Estimates held for jobs sent but not finished."""
        return round(self._held, 6)

    @property
    def remaining_usd(self) -> float | None:
        """What may still be committed; None without a limit."""
        if self.limit_usd is None:
            return None
        return round(max(0.0, self.limit_usd - self._spent - self._held), 6)

    def reserve(self, amounts: Sequence[float]) -> list[Reservation]:
        """Hold every amount, or none of them: raises BudgetExceeded (nothing held) when they do not fit."""
        total = round(sum(amounts), 6)
        with self._lock:
            if self.limit_usd is not None and self._spent + self._held + total > self.limit_usd + 1e-9:
                raise BudgetExceeded(total, self.limit_usd, len(amounts), committed_usd=self._spent + self._held)
            self._held += total
            return [Reservation(float(a)) for a in amounts]

    def settle(self, reservation: Reservation, cost_usd: float) -> None:
        """The job finished: replace its estimate by what it cost (0 when nothing was billed).

        A negative or non-finite cost can never be right (it would refill the budget): the estimate held
        counts instead. Which figure to trust is decided before (``lifecycle.count_cost``); this is the last guard.
        """
        if not 0 <= cost_usd < float("inf"):
            cost_usd = reservation.usd
        with self._lock:
            if reservation.settled:
                return
            reservation.settled = True
            self._held -= reservation.usd
            self._spent += cost_usd

    def release(self, reservation: Reservation) -> None:
        """Nothing was spent (the submit was refused before a job could start)."""
        self.settle(reservation, 0.0)
