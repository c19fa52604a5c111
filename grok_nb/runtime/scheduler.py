"""Which job to ask about next: one request budget per client, spent where it tells the most.

Two halves. The planner (pure) says when a job is worth polling, from its ``progress`` trend
(one answer bounds the finish time, two pin it), from latencies learned from finished jobs,
and from xAI's documented latencies when there is nothing else. The scheduler (async) owns the
request budget (submits and polls together, 1 request/s by default): whenever a request slot is
free it grants it to the most urgent due request, polls before new submits, so a finished video
is seen promptly even while a large grid is still being submitted.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import logging
import math
import statistics
import time
from collections import defaultdict, deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

# The latency model lives in api.latency (the simulator uses it too); re-exported for the planner's callers.
from ..api.latency import LatencyPrior as LatencyPrior
from ..api.latency import documented_prior as documented_prior
from ..jobs.policy import PollPolicy
from .ratelimit import RateLimiter

log = logging.getLogger("grok_nb")


#: (model, kind, resolution, duration rounded to 0.1 s): the bucket a job's latency is learned in.
PriorKey = tuple[str, str, str, float | None]
class PriorBook:
    """Latencies of finished jobs by (model, kind, resolution, duration): what this history has seen."""

    MIN_SAMPLES = 3

    def __init__(self, speed: float = 1.0, keep: int = 50):
        self.speed = speed
        self._seen: dict[PriorKey, deque[float]] = defaultdict(lambda: deque(maxlen=keep))

    @staticmethod
    def key(model: str | None, kind: str, resolution: str | None, duration: float | None) -> PriorKey:
        """The bucket a job's latency is learned in."""
        return (model or "", kind, resolution or "", round(float(duration), 1) if duration else None)

    def learn(self, key: PriorKey, latency_s: float | None) -> None:
        """Remember one finished job's latency."""
        if latency_s is not None and latency_s > 0 and math.isfinite(latency_s):
            self._seen[key].append(float(latency_s))

    def prior(self, key: PriorKey) -> LatencyPrior:
        """Learned bounds when there are enough samples, else the documented ones."""
        model, kind, resolution, duration = key
        seen = self._seen.get(key)
        if seen and len(seen) >= self.MIN_SAMPLES:
            return LatencyPrior(0.85 * min(seen), statistics.median(seen), 1.2 * max(seen), "history")
        return documented_prior(kind, duration, resolution, self.speed)


@dataclass(frozen=True)
class Observation:
    """One poll answer: seconds since the job was accepted, and the progress it reported (None if absent)."""

    t: float
    progress: int | None


def done_window(observations: Sequence[Observation]) -> tuple[float, float] | None:
    """When the job will be done (seconds since accepted), from its progress readings; None without any.

    A reading of p % at time t, progress growing linearly from the submit and rounded down,
    puts the end between 100·t/(p+1) and 100·t/p. Readings are intersected newest first and
    the oldest that disagree are dropped, so a job whose progress is not linear is followed
    by its recent readings.
    """
    lo, hi = 0.0, math.inf
    used = 0
    for ob in reversed(observations):
        p = ob.progress
        if p is None or not 0 < p < 100 or ob.t <= 0:
            continue
        a, b = 100.0 * ob.t / (p + 1), 100.0 * ob.t / p
        if used and (max(lo, a) > min(hi, b)):
            break
        lo, hi, used = max(lo, a), min(hi, b), used + 1
    return (lo, hi) if used else None


#: Poll at the end of the window once it is this narrow (a share of the job's latency).
PRECISE_WINDOW = 0.025
#: A wide window is narrowed by one reading taken at this share of its earliest end.
NEAR_END = 0.9


def plan_next_poll(observations: Sequence[Observation], prior: LatencyPrior, policy: PollPolicy,
                   now: float, rtt: float = 0.0) -> float:
    """When (seconds since accepted) to poll a pending job next; ``now`` is the same clock.

    With progress: narrow the finish window with one reading near its end, then poll just
    after it closes, about three polls a job. Without progress: first at the fastest expected
    latency, then every ``lag_target`` share of the time waited, which bounds how late "done" is seen.
    A job that sits at 99 % is polled at growing steps (1 %, 2 %, 4 % of the time waited).
    """
    window = done_window(observations)
    stuck = 0  # readings of 99 % in a row: the server holds at "almost", so its progress no longer dates the end
    for ob in reversed(observations):
        if ob.progress is None or ob.progress < 99:
            break
        stuck += 1
    if not observations:
        at = policy.first_poll_share * prior.low
    elif stuck >= 2:
        at = now * (1.0 + min(policy.lag_target, 0.01 * 2 ** (stuck - 2)))
    elif window is not None:
        lo, hi = window
        margin = 0.004 * hi + 2.0 * rtt
        if hi - lo <= PRECISE_WINDOW * hi:
            at = hi + margin
        else:
            at = min(max(NEAR_END * lo, now), hi + margin)
    elif now < prior.low:
        at = prior.low
    else:
        at = now * (1.0 + policy.lag_target)
    return min(max(at, now + policy.interval), now + policy.max_interval)


# -- the request budget ---------------------------------------------------------------------------
SUBMIT, POLL = 1, 0  # polls of running jobs go before new submits


@dataclass(order=True)
class _Ticket:
    rank: tuple[float, int]
    kind: int
    future: asyncio.Future[None]


class Scheduler:
    """Grants request slots, one at a time, at the limiter's rate: the most urgent due request first.

    ``limiter`` has ``async acquire()`` (wait for a slot) and ``pause(seconds)``; it may be shared
    with other processes using the same key.
    """

    def __init__(self, limiter: Any, clock: Callable[[], float] = time.monotonic):
        self.limiter = limiter
        self._clock = clock
        self._heap: list[_Ticket] = []
        self._seq = itertools.count()
        self._wake: asyncio.Event | None = None
        self._task: asyncio.Task[None] | None = None
        self.granted = {SUBMIT: 0, POLL: 0}

    @property
    def queued(self) -> int:
        """Requests waiting for a slot or for their time."""
        return sum(1 for t in self._heap if not t.future.done())

    async def turn(self, kind: int, due: float | None = None) -> None:
        """Wait until this request (``SUBMIT`` or ``POLL``, not before monotonic ``due``) may be sent."""
        loop = asyncio.get_running_loop()
        if self._task is None or self._task.done():
            self._wake = asyncio.Event()
            self._task = loop.create_task(self._run(), name="grok-nb-scheduler")
            self._task.add_done_callback(self._ended)
        due = self._clock() if due is None else due
        ticket = _Ticket((due, next(self._seq)), kind, loop.create_future())
        heapq.heappush(self._heap, ticket)
        assert self._wake is not None
        self._wake.set()
        await ticket.future  # cancelled with its job: the ticket is skipped when its turn comes

    def _due(self) -> float | None:
        while self._heap and self._heap[0].future.done():
            heapq.heappop(self._heap)
        return self._heap[0].rank[0] if self._heap else None

    def _pick(self, now: float) -> _Ticket | None:
        due = [t for t in self._heap if not t.future.done() and t.rank[0] <= now]
        if not due:
            return None
        best = min(due, key=lambda t: (t.kind, t.rank))
        self._heap.remove(best)
        heapq.heapify(self._heap)
        return best

    async def _run(self) -> None:
        assert self._wake is not None
        while True:
            self._wake.clear()
            first = self._due()
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
            try:
                await self.limiter.acquire()
            except Exception as exc:  # its store failed (a damaged or full file, Redis or PostgreSQL down)
                await self._fall_back(exc)
                continue
            ticket = self._pick(self._clock())
            if ticket is not None:
                self.granted[ticket.kind] += 1
                ticket.future.set_result(None)

    async def _fall_back(self, exc: Exception) -> None:
        """The limiter's store failed: go on with a limiter of this process alone, and say so once."""
        broken, rate = self.limiter, float(getattr(self.limiter, "rate", 1.0))
        self.limiter = RateLimiter(rate)
        log.warning("grok_nb: the key's shared request budget stopped working (%s: %s); this process alone now "
                    "spaces its requests (%g/s), without counting other processes on the key. Check the store named "
                    "above; a new client tries it again.", type(exc).__name__, exc, rate)
        close = getattr(broken, "close", None)
        if close is not None:
            try:
                await asyncio.to_thread(close)
            except Exception:  # the store is broken already: nothing more to release
                pass

    def _ended(self, task: asyncio.Task[None]) -> None:
        # A scheduler that stops for any reason but aclose() must not leave requests waiting forever.
        exc = None if task.cancelled() else task.exception()
        if exc is None:
            return
        error = RuntimeError(f"grok_nb's request scheduler stopped ({type(exc).__name__}: {exc}); the jobs keep "
                             "their request ids in the history: client.resume() picks them up again")
        for ticket in self._heap:
            if not ticket.future.done():
                ticket.future.set_exception(error)
        self._heap.clear()

    async def aclose(self) -> None:
        """Stop granting (the client is closing)."""
        for ticket in self._heap:
            if not ticket.future.done():
                ticket.future.cancel()
        self._heap.clear()
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass
