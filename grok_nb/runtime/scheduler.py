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
from dataclasses import dataclass, field, replace
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
    """Latencies of finished jobs by (model, kind, resolution, duration): what this history has seen.

    It also learns, per (model, kind), how the end of a job relates to its progress: when the
    service holds at 99 % for a last stretch, the end is a steady multiple of the moment progress
    would have reached 100 %, and the planner polls there instead of at growing steps.
    """

    MIN_SAMPLES = 3

    def __init__(self, speed: float = 1.0, keep: int = 50):
        self.speed = speed
        self._seen: dict[PriorKey, deque[float]] = defaultdict(lambda: deque(maxlen=keep))
        self._tails: dict[tuple[str, str], deque[tuple[float, float]]] = defaultdict(lambda: deque(maxlen=12))

    @staticmethod
    def key(model: str | None, kind: str, resolution: str | None, duration: float | None) -> PriorKey:
        """The bucket a job's latency is learned in."""
        return (model or "", kind, resolution or "", round(float(duration), 1) if duration else None)

    def learn(self, key: PriorKey, latency_s: float | None) -> None:
        """Remember one finished job's latency."""
        if latency_s is not None and latency_s > 0 and math.isfinite(latency_s):
            self._seen[key].append(float(latency_s))

    def learn_end(self, key: PriorKey, observations: Sequence[Observation]) -> None:
        """Remember how a finished job's end (its last observation, the done answer) followed its progress."""
        bounds = tail_bounds(observations)
        if bounds is not None:
            self._tails[key[:2]].append(bounds)

    def tail(self, key: PriorKey) -> tuple[float, float] | None:
        """The end as a multiple of the progress end: what recent jobs' bounds agree on; None before any.

        Each finished job bounds the multiple from below (its last pending answer) and from above (its
        done answer). Their intersection is kept, less the most extreme tenth of each side, so one
        job held back (a render that lagged, a slow answer) does not make every later job wait as long.
        Bounds that do not meet (a tail that varies) give the medians instead.
        """
        seen = self._tails.get(key[:2])
        if not seen:
            return None
        skip = int(len(seen) * TAIL_OUTLIERS)
        lows = sorted((a for a, _ in seen), reverse=True)
        highs = sorted(b for _, b in seen if math.isfinite(b))
        lo = lows[skip]
        if not highs:  # no job has yet been seen done soon enough to bound it from above
            return lo, lo
        hi = highs[min(skip, len(highs) - 1)]
        if lo <= hi:
            return lo, hi
        middle = (len(seen) - 1) // 2
        lows.reverse()
        return lows[middle], max(lows[middle], highs[min(middle, len(highs) - 1)])

    def prior(self, key: PriorKey) -> LatencyPrior:
        """Learned bounds when there are enough samples, else the documented ones."""
        model, kind, resolution, duration = key
        seen = self._seen.get(key)
        if seen and len(seen) >= self.MIN_SAMPLES:
            prior = LatencyPrior(0.85 * min(seen), statistics.median(seen), 1.2 * max(seen), "history")
        else:
            prior = documented_prior(kind, duration, resolution, self.speed)
        tail = self.tail(key)
        return prior if tail is None else replace(prior, tail_low=tail[0], tail_high=tail[1])


@dataclass(frozen=True)
class Observation:
    """One poll answer: seconds since the job was accepted, the progress it reported (None if absent), and
    how far the server's moment may lie from ``t`` (half the round trip: a slow answer dates itself loosely)."""

    t: float
    progress: int | None
    spread: float = 0.0


def done_window(observations: Sequence[Observation]) -> tuple[float, float] | None:
    """When the job's progress will reach 100 % (seconds since accepted), from its readings; None without any.

    A reading of p % at time t, progress growing linearly from the submit and rounded down,
    puts that moment between 100·t/(p+1) and 100·t/p. Readings are intersected newest first and
    the oldest that disagree are dropped, so a job whose progress is not linear is followed
    by its recent readings. Readings of 99 % are left out: the service holds there for a last
    stretch, so they say nothing about the pace.
    """
    lo, hi = 0.0, math.inf
    used = 0
    for ob in reversed(observations):
        p = ob.progress
        if p is None or not 0 < p < 99 or ob.t <= 0:
            continue
        a, b = 100.0 * max(0.0, ob.t - ob.spread) / (p + 1), 100.0 * (ob.t + ob.spread) / p
        if used and (max(lo, a) > min(hi, b)):
            break
        lo, hi, used = max(lo, a), min(hi, b), used + 1
    return (lo, hi) if used else None


def tail_bounds(observations: Sequence[Observation]) -> tuple[float, float] | None:
    """A finished job's end as a multiple of its progress window's end: (low, high), or None if unknown.

    The last observation is the done answer; the one before it, the last pending answer. The end
    lies between the two (and not before progress runs out), and the progress end within its window.
    ``high`` is infinite when the done answer came too late to say anything.
    """
    if len(observations) < 2:
        return None
    window = done_window(observations[:-1])
    if window is None or window[1] - window[0] > 2 * PRECISE_WINDOW * window[1]:
        return None
    before = observations[-2].t - observations[-2].spread
    after = observations[-1].t + observations[-1].spread
    # Done comes once progress has run out, never before: a pending answer taken earlier says nothing.
    lo, hi = max(1.0, before / window[1]), after / window[0]
    if hi < lo:  # not a steady pace
        return None
    # Each side teaches on its own: a done answer long after the last pending one still bounds from above.
    return min(lo, MAX_TAIL), (hi if hi <= MAX_TAIL else math.inf)


#: Poll at the end of the window once it is this narrow (a share of the job's latency).
PRECISE_WINDOW = 0.04
#: Poll once at the latest foreseen end while it is known this closely (a share of the job's latency); while
#: wider, poll halfway (at most ``lag_target`` on): whichever answer comes, it narrows the learned tail.
END_WINDOW = 0.02
#: The learned tail leaves out this share of the most extreme bounds on each side (jobs held back, or early).
TAIL_OUTLIERS = 0.1
#: Where in a wide end window to poll: this share of the way from its earliest end to its latest.
BISECT = 0.5
#: A job's end is never foreseen past this multiple of the moment its progress would reach 100 %.
MAX_TAIL = 3.0
#: A wide window is narrowed by one reading taken at this share of its earliest end.
NEAR_END = 0.9
#: Two polls of one job are at least this share of the time waited apart: no hot loop at any progress.
MIN_STEP = 0.01


def plan_next_poll(observations: Sequence[Observation], prior: LatencyPrior, policy: PollPolicy,
                   now: float, rtt: float = 0.0) -> float:
    """When (seconds since accepted) to poll a pending job next; ``now`` is the same clock.

    With progress: narrow the window in which progress reaches 100 % with one reading near its end
    (when the first left it wide); the job ends in that window times the prior's tail (learned from
    finished jobs; 1 until then). Poll at the window's latest end once it is narrow, else halfway
    into it, at most ``lag_target`` on: about three polls a job. Past that (a job held at 99 % longer
    than foreseen), and without progress, it polls every ``lag_target`` share of the time waited,
    which bounds how late "done" is seen; without progress the first is at the fastest expected latency.
    """
    window = done_window(observations)
    held = bool(observations) and observations[-1].progress is not None and observations[-1].progress >= 99
    if not observations:
        at = policy.first_poll_share * prior.low
    elif window is not None:
        lo, hi = window
        end_lo, end_hi = prior.tail_low * lo, prior.tail_high * hi
        if not held and hi - lo > PRECISE_WINDOW * hi:
            at = min(max(NEAR_END * lo, now), end_hi)  # one more reading, before 99 %
        elif end_hi - max(end_lo, now) <= END_WINDOW * end_hi:
            at = end_hi  # the readings' spread is in the window; the poll reaches the server a little after
        else:  # the end is not known closely yet: halve what is left, by a bounded step (the answer teaches)
            start = max(end_lo, now)
            at = min(start + BISECT * (end_hi - start), start * (1.0 + policy.lag_target))
        if at <= now:  # later than foreseen
            at = now * (1.0 + policy.lag_target)
    elif now < prior.low and not held:
        at = prior.low
    else:
        at = now * (1.0 + policy.lag_target)
    at = max(at, now * (1.0 + MIN_STEP))
    return min(max(at, now + policy.interval), now + policy.max_interval)


# -- the request budget ---------------------------------------------------------------------------
SUBMIT, POLL = 1, 0  # polls of running jobs go before new submits


@dataclass(order=True)
class _Ticket:
    rank: tuple[float, int]
    kind: int
    future: asyncio.Future[None] = field(compare=False)
    #: Asked again when the ticket comes due: a later answer puts it back (what finished jobs taught meanwhile).
    replan: Callable[[], float] | None = field(default=None, compare=False)


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
        heapq.heappush(self._heap, ticket)
        assert self._wake is not None
        self._wake.set()
        await ticket.future  # cancelled with its job: the ticket is skipped when its turn comes

    def _due(self) -> float | None:
        while self._heap and self._heap[0].future.done():
            heapq.heappop(self._heap)
        return self._heap[0].rank[0] if self._heap else None

    def _replan_due(self, now: float) -> bool:
        """Ask the due tickets that can replan; True when one of them moved later."""
        moved = False
        for ticket in self._heap:
            if ticket.replan is not None and not ticket.future.done() and ticket.rank[0] <= now:
                later = ticket.replan()
                ticket.replan = None  # asked once: a request is never put off twice
                if later > ticket.rank[0]:
                    ticket.rank = (later, ticket.rank[1])
                    moved = moved or later > now
        if moved:
            heapq.heapify(self._heap)
        return moved

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
            if self._replan_due(self._clock()):
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
