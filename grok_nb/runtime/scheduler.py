"""Which request goes next: one request budget per client, spent where it tells the most.

The scheduler owns the request budget (submits and polls together, 1 request/s by default):
whenever a request slot is free it grants it to the most urgent due request, polls before new
submits, so a finished video is seen promptly even while a large grid is still being submitted.
When to poll a job is the planner's decision (``jobs/pollplan.py``); the scheduler only keeps
the order. Each grant costs O(log n) in the number of waiting requests.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from ..jobs.policy import Pace
from .ratelimit import Limiter, RateLimiter

log = logging.getLogger("grok_nb")


# -- the request budget ---------------------------------------------------------------------------
SUBMIT, POLL = 1, 0  # polls of running jobs go before new submits


@dataclass(order=True)
class _Ticket:
    rank: tuple[float, int]  # (due, arrival): earliest due first, then first come
    kind: int = field(compare=False)
    future: asyncio.Future[None] = field(compare=False)
    #: Asked again when the ticket comes due: a later answer puts it back (what finished jobs taught meanwhile).
    replan: Callable[[], float] | None = field(default=None, compare=False)


class Scheduler:
    """Grants request slots, one at a time, at the limiter's rate: the most urgent due request first.

    ``limiter`` has ``async acquire()`` (wait for a slot) and ``pause(seconds)``; it may be shared
    with other processes using the same key. Requests not yet due wait in one heap (by due time);
    once due, and asked again (once) when they can replan, they move to one heap per kind: polls
    go before submits, each kind earliest due first. A grant costs O(log n) in the requests waiting.
    ``pace`` (``jobs.policy.Pace``) slows the grants below the limiter's rate after 429s, until good answers
    win the rate back.
    """

    def __init__(self, limiter: Limiter, clock: Callable[[], float] = time.monotonic):
        self.limiter: Limiter = limiter
        self._clock = clock
        self._later: list[_Ticket] = []  # not due yet
        self._ready: dict[int, list[_Ticket]] = {POLL: [], SUBMIT: []}  # due, one heap per kind
        self._seq = itertools.count()
        self._wake: asyncio.Event | None = None
        self._task: asyncio.Task[None] | None = None
        self.granted = {SUBMIT: 0, POLL: 0}
        self.pace = Pace()
        self._last_grant = -float("inf")

    @property
    def epoch(self) -> int:
        """The pace's epoch: read it when a turn is granted, give it back with the answer."""
        return self.pace.cuts

    def slowed(self, epoch: int) -> None:
        """The service answered 429 to a request granted at ``epoch``: go slower (``pace``), and say so."""
        rate = float(self.limiter.rate)
        if self.pace.slowed(epoch):
            log.info("grok_nb: 429 from the service: this bucket now sends at most %.3g request(s)/s (of %g), "
                     "and speeds up again with each good answer", rate * self.pace.share, rate)

    def answered(self, epoch: int) -> None:
        """A good answer came to a request granted at ``epoch``: the pace wins a little back."""
        self.pace.ok(epoch)

    def gap(self) -> float:
        """The least time between two grants now (the limiter's rate at the pace kept); 0 without a rate."""
        rate = float(self.limiter.rate or 0.0)
        return self.pace.gap(rate) if rate > 0 else 0.0

    @property
    def queued(self) -> int:
        """Requests waiting for a slot or for their time."""
        return sum(1 for t in self._tickets() if not t.future.done())

    def _tickets(self) -> list[_Ticket]:
        return [*self._later, *self._ready[POLL], *self._ready[SUBMIT]]

    async def turn(self, kind: int, due: float | None = None, replan: Callable[[], float] | None = None) -> None:
        """Wait until this request (``SUBMIT`` or ``POLL``, not before monotonic ``due``) may be sent.

        ``replan`` is called when ``due`` comes: a later time it gives postpones the request (never earlier).
        """
        loop = asyncio.get_running_loop()
        if self._task is None or self._task.done():
            self._wake = asyncio.Event()
            self._task = loop.create_task(self._run(), name="grok-nb-scheduler")
            self._task.add_done_callback(self._ended)
        due = self._clock() if due is None else due
        ticket = _Ticket((due, next(self._seq)), kind, loop.create_future(), replan)
        heapq.heappush(self._later, ticket)
        assert self._wake is not None
        self._wake.set()
        await ticket.future  # cancelled with its job: the ticket is skipped when its turn comes

    def _promote(self, now: float) -> bool:
        """Move the tickets that came due to their kind's heap, asking each that can replan once; True when one
        of them was put off past ``now``."""
        moved = False
        while self._later and self._later[0].rank[0] <= now:
            ticket = heapq.heappop(self._later)
            if ticket.future.done():
                continue
            if ticket.replan is not None:
                later = ticket.replan()
                ticket.replan = None  # asked once: a request is never put off twice
                if later > ticket.rank[0]:
                    ticket.rank = (later, ticket.rank[1])
                    if later > now:
                        heapq.heappush(self._later, ticket)
                        moved = True
                        continue
            heapq.heappush(self._ready[ticket.kind], ticket)
        return moved

    def _next_due(self) -> float | None:
        """When the earliest waiting request is due (None: none waits)."""
        for heap in (self._ready[POLL], self._ready[SUBMIT], self._later):
            while heap and heap[0].future.done():
                heapq.heappop(heap)
        due = [heap[0].rank[0] for heap in (self._ready[POLL], self._ready[SUBMIT], self._later) if heap]
        return min(due) if due else None

    def _pick(self, now: float) -> _Ticket | None:
        """The most urgent due request (polls first), what came due by ``now`` included."""
        self._promote(now)
        for kind in (POLL, SUBMIT):
            heap = self._ready[kind]
            while heap:
                ticket = heapq.heappop(heap)
                if not ticket.future.done():
                    return ticket
        return None

    async def _run(self) -> None:
        assert self._wake is not None
        while True:
            self._wake.clear()
            first = self._next_due()
            if first is None:
                await self._wake.wait()
                continue
            delay = first - self._clock()
            if delay > 0:
                try:  # sleep until it is due, unless an earlier request arrives
                    await asyncio.wait_for(self._wake.wait(), delay)
                except asyncio.TimeoutError:
                    pass
                continue
            if self._promote(self._clock()) and not (self._ready[POLL] or self._ready[SUBMIT]):
                continue
            if self.pace.share < 1.0:  # slowed by 429s: a longer gap than the limiter's own
                hold = self._last_grant + self.gap() - self._clock()
                if hold > 0:
                    try:
                        await asyncio.wait_for(self._wake.wait(), hold)
                    except asyncio.TimeoutError:
                        pass
                    continue
            try:
                await self.limiter.acquire()
            except Exception as exc:  # its store failed (a damaged or full file, Redis or PostgreSQL down)
                await self._fall_back(exc)
                continue
            ticket = self._pick(self._clock())  # what came due while the slot was awaited competes for it too
            if ticket is not None:
                self.granted[ticket.kind] += 1
                self._last_grant = self._clock()
                ticket.future.set_result(None)

    async def _fall_back(self, exc: Exception) -> None:
        """The limiter's store failed: go on with a limiter of this process alone, and say so once."""
        broken, rate = self.limiter, float(self.limiter.rate)
        self.limiter = RateLimiter(rate)
        log.warning("grok_nb: the key's shared request budget stopped working (%s: %s); this process alone now "
                    "spaces its requests (%g/s), without counting other processes on the key. Check the store named "
                    "above; a new client tries it again.", type(exc).__name__, exc, rate)
        try:
            await asyncio.to_thread(broken.close)
        except Exception:  # the store is broken already: nothing more to release
            pass

    def _ended(self, task: asyncio.Task[None]) -> None:
        # A scheduler that stops for any reason but aclose() must not leave requests waiting forever.
        exc = None if task.cancelled() else task.exception()
        if exc is None:
            return
        error = RuntimeError(f"grok_nb's request scheduler stopped ({type(exc).__name__}: {exc}); the jobs keep "
                             "their request ids in the history: client.resume() picks them up again")
        for ticket in self._tickets():
            if not ticket.future.done():
                ticket.future.set_exception(error)
        self._clear()

    def _clear(self) -> None:
        self._later.clear()
        for heap in self._ready.values():
            heap.clear()

    async def aclose(self) -> None:
        """Stop granting (the client is closing)."""
        for ticket in self._tickets():
            if not ticket.future.done():
                ticket.future.cancel()
        self._clear()
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass
