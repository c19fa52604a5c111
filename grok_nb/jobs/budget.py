"""A spending ledger: every submit reserves its estimate before a byte is sent; the actual cost replaces it.

Thread-safe and all-or-nothing: jobs started from several threads, tasks and grids at once can
never pass the budget together, and a grid that does not fit is refused whole.
"""

from __future__ import annotations

import logging
import threading
import weakref
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from ..api.pricing import usd_text
from ..errors import BudgetExceeded, ValidationError

log = logging.getLogger(__name__)

#: What money is spent on: video jobs, and vision-judge calls. Every kind counts against the one limit.
KINDS = ("video", "judge")


@dataclass
class Reservation:
    """Money held for one call (a video job, a judge call) until its cost is known."""

    usd: float
    settled: bool = False
    #: What the money is for: one of ``KINDS`` (what it cost is counted under it in ``Budget.spent_by_kind``).
    kind: str = "video"


@dataclass(frozen=True)
class BudgetSnapshot:
    """The ledger at one moment: the limit (None: none), what finished jobs cost, what is held for jobs under way,
    and what may still be committed. Every view that speaks of money reads one of these, so their figures agree."""

    limit_usd: float | None
    spent_usd: float
    reserved_usd: float
    #: Of ``spent_usd``, what vision-judge calls cost (the rest is videos).
    judge_usd: float = 0.0

    @property
    def left_usd(self) -> float | None:
        """What may still be committed (never below 0); None without a limit."""
        if self.limit_usd is None:
            return None
        return round(max(0.0, self.limit_usd - self.spent_usd - self.reserved_usd), 6)

    @property
    def over_usd(self) -> float:
        """How far spent and reserved together passed the limit (a job that cost more than its estimate); else 0."""
        if self.limit_usd is None:
            return 0.0
        return round(max(0.0, self.spent_usd + self.reserved_usd - self.limit_usd), 6)


class Budget:
    """``limit_usd`` None means no limit (the ledger still counts what was spent)."""

    def __init__(self, limit_usd: float | None = None):
        self._lock = threading.Lock()
        self._spent = 0.0
        self._spent_by_kind = dict.fromkeys(KINDS, 0.0)
        self._held = 0.0
        self._watchers: list[Callable[[], Callable[[BudgetSnapshot], object] | None]] = []
        self.limit_usd: float | None = None
        self.set_limit(limit_usd)

    def snapshot(self) -> BudgetSnapshot:
        """Limit, spent and reserved read together (under the ledger's lock), so they always add up."""
        with self._lock:
            # "+ 0.0" turns the -0.0 that float noise leaves after the last settle into 0.0.
            return BudgetSnapshot(self.limit_usd, round(self._spent, 6) + 0.0, round(self._held, 6) + 0.0,
                                  round(self._spent_by_kind["judge"], 6) + 0.0)

    def watch(self, callback: Callable[[BudgetSnapshot], object]) -> None:
        """Call ``callback(snapshot)`` after every change (from the thread that made it). A bound method is held
        weakly: a view that is gone stops being called, and is never kept alive by the ledger."""
        ref: Callable[[], Callable[[BudgetSnapshot], object] | None]
        if hasattr(callback, "__self__") and hasattr(callback, "__func__"):
            ref = weakref.WeakMethod(callback)
        else:
            ref = lambda: callback  # noqa: E731  (a plain function is held as it is)
        with self._lock:
            self._watchers.append(ref)

    def _changed(self) -> None:
        snapshot = self.snapshot()
        with self._lock:
            alive = [(ref, ref()) for ref in self._watchers]
            self._watchers = [ref for ref, fn in alive if fn is not None]
        for _ref, fn in alive:
            if fn is None:
                continue
            try:
                fn(snapshot)
            except Exception:  # a view that fails to redraw must never stop a job being settled
                log.exception("a budget watcher failed")

    def set_limit(self, limit_usd: float | None) -> None:
        """Change the limit; what is already spent or held still counts against it."""
        if limit_usd is not None and (isinstance(limit_usd, bool) or not isinstance(limit_usd, (int, float))
                                      or not 0 <= limit_usd < float("inf")):
            raise ValidationError("budget_usd", limit_usd, "a finite number of dollars, 0 or more (or None)")
        with self._lock:
            self.limit_usd = None if limit_usd is None else float(limit_usd)
        if getattr(self, "_watchers", None):
            self._changed()

    def __repr__(self) -> str:
        limit = "none" if self.limit_usd is None else usd_text(self.limit_usd)
        return f"<Budget limit={limit} spent={usd_text(self.spent_usd)} reserved={usd_text(self.reserved_usd)}>"

    @property
    def spent_usd(self) -> float:
        """What finished jobs and judge calls cost, together (actual where reported, else estimated)."""
        return round(self._spent, 6)

    @property
    def spent_by_kind(self) -> dict[str, float]:
        """What was spent per kind: ``{"video": ..., "judge": ...}`` (they add up to ``spent_usd``)."""
        with self._lock:
            return {kind: round(usd, 6) for kind, usd in self._spent_by_kind.items()}

    @property
    def reserved_usd(self) -> float:
        """Estimates held for jobs sent but not finished."""
        return round(max(0.0, self._held), 6)  # floating-point dust after settling is not a negative hold

    @property
    def remaining_usd(self) -> float | None:
        """What may still be committed; None without a limit."""
        return self.snapshot().left_usd

    def reserve(self, amounts: Sequence[float], *, kind: str = "video") -> list[Reservation]:
        """Hold every amount, or none of them: raises BudgetExceeded (nothing held) when they do not fit.

        ``kind`` (one of ``KINDS``) says what the money is for; the limit is one for every kind.
        """
        if kind not in KINDS:
            raise ValidationError("kind", kind, "one of " + ", ".join(KINDS))
        for amount in amounts:
            # An estimate that is negative or not finite would make room in the budget instead of taking it.
            if isinstance(amount, bool) or not isinstance(amount, (int, float)) or not 0 <= amount < float("inf"):
                raise ValidationError("amount", amount, "a finite estimate of dollars, 0 or more")
        held = [Reservation(float(a), kind=kind) for a in amounts]
        exact = sum(r.usd for r in held)  # what settling them gives back, to the last digit
        total = round(exact, 6)
        with self._lock:
            if self.limit_usd is not None and self._spent + self._held + total > self.limit_usd + 1e-9:
                raise BudgetExceeded(total, self.limit_usd, len(amounts), committed_usd=self._spent + self._held)
            self._held += exact
        self._changed()
        return held

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
            self._spent_by_kind[reservation.kind] = self._spent_by_kind.get(reservation.kind, 0.0) + cost_usd
        self._changed()

    def release(self, reservation: Reservation) -> None:
        """Nothing was spent (the submit was refused before a job could start)."""
        self.settle(reservation, 0.0)
