"""What happens after each request, given what it got and the clock (pure: no I/O, no sleeping).

One rule decides, for every request (submits, polls, downloads, uploads, batch calls), whether it is
tried again and how long to wait first (:func:`retry_step`); :func:`next_step` says what follows a poll
that was answered. The one request path (``runtime/sender.py``) drives these; tests run them with no
network at all.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

from ..api.responses import JobStatus
from ..settings import MAX_RETRY_AFTER_S

#: HTTP statuses worth retrying on a poll or a download: the request changes nothing server-side.
RETRYABLE_STATUS = frozenset({408, 425, 429, 500, 502, 503, 504})


@dataclass(frozen=True)
class PollPolicy:
    """Timing knobs for waiting on jobs; all in seconds of wall-clock time."""

    interval: float = 1.0  # the shortest gap between two polls of one job (the official SDK's fixed interval)
    max_interval: float = 600.0  # the longest gap: a prediction is never trusted for longer than this
    deadline: float = 15 * 60.0
    #: What one more poll is worth, as lag (a share of the job's latency): the planner spends a poll where it
    #: saves more lag than this, on average.
    poll_cost: float = 0.03
    retry_base: float = 1.0
    retry_max: float = 30.0
    jitter: float = 0.25
    submit_retries: int = 5  # only for submits that certainly did not start a job
    unreadable_retries: int = 2  # answers that cannot be read are asked again this often, then reported
    max_retry_after: float = MAX_RETRY_AFTER_S  # the longest wait a Retry-After header may impose

    def cap_retry_after(self, seconds: float | None) -> float | None:
        """What a ``Retry-After`` may ask: None for nonsense (negative, infinite, not a number), at most the cap."""
        if seconds is None or not math.isfinite(seconds) or seconds < 0:
            return None
        return min(seconds, self.max_retry_after)

    def retry_delay(self, attempt: int, retry_after: float | None = None, rand: float = 0.5) -> float:
        """Backoff before retry number ``attempt`` (0-based); honours a sane Retry-After, capped.

        ``rand`` in [0, 1) supplies the jitter, so callers own the randomness.
        """
        asked = self.cap_retry_after(retry_after)
        if asked is not None:
            return asked
        base = min(self.retry_max, self.retry_base * 2.0 ** max(0, attempt))
        return base * (1.0 - self.jitter + 2.0 * self.jitter * rand)

    def scaled(self, factor: float) -> PollPolicy:
        """The same policy in time running ``factor`` times faster (the simulator's clock)."""
        return replace(self, interval=self.interval / factor, max_interval=self.max_interval / factor,
                       retry_base=self.retry_base / factor, retry_max=self.retry_max / factor,
                       max_retry_after=self.max_retry_after / factor)


@dataclass(frozen=True)
class Wait:
    """Sleep ``delay`` seconds, then send again."""

    delay: float
    reason: str


@dataclass(frozen=True)
class Stop:
    """Stop; ``outcome`` is done, moderated, failed, expired, no_video (a poll's answer), deadline, fatal,
    unreadable (any request), accepted, uncertain or refused (a submit)."""

    outcome: str


@dataclass(frozen=True)
class HttpProblem:
    """A request answered with an HTTP error status."""

    status_code: int
    retry_after: float | None = None  # as the header said it (the policy caps it)
    out_of_credits: bool = False  # a 429 about money: waiting does not help


@dataclass(frozen=True)
class TransportProblem:
    """A request that got no answer (connection refused, reset, timed out)."""

    detail: str = ""
    never_sent: bool = False  # the connection was never made: the server saw nothing
    final: bool = False  # trying again cannot help (an unsupported URL scheme, a video too large)


@dataclass(frozen=True)
class Unreadable:
    """An answer that came but cannot be read (not JSON, not an object, too large)."""

    status_code: int
    detail: str = ""


Problem = HttpProblem | TransportProblem | Unreadable


def retry_step(policy: PollPolicy, problem: Problem, *, resend_safe: bool, attempt: int, elapsed: float,
               rand: float = 0.5, remaining: float | None = None) -> Wait | Stop:
    """The one retry rule: try again after ``problem`` (and wait how long), or stop and say why.

    ``resend_safe`` is True for GETs; a POST is False: once it may have reached the server it is
    never resent (``uncertain``), and it is retried only when it surely did not start a job (a 429
    not about credits, a connection never made: ``submit_retries`` times). ``attempt`` is how many
    tries of this request failed before this one (0 for the first failure), ``elapsed`` the seconds
    since the wait began; ``remaining`` the seconds left before its deadline, when that is not the policy's
    deadline less ``elapsed`` (a download's own). A wait never runs past the deadline: a GET gets one last try at it.
    """
    if isinstance(problem, Unreadable):
        if not resend_safe:
            return Stop("uncertain")
        if attempt >= policy.unreadable_retries:
            return Stop("unreadable")
        retry_after = None
    elif isinstance(problem, HttpProblem):
        retry_after = problem.retry_after
        if problem.out_of_credits:
            return Stop("refused" if not resend_safe else "fatal")
        if not resend_safe:
            if problem.status_code != 429:  # a 5xx came from something that read the POST: a gateway may pass it on
                return Stop("uncertain" if problem.status_code >= 500 else "refused")
        elif problem.status_code not in RETRYABLE_STATUS:
            return Stop("fatal")  # 400/401/403/404 will not heal by waiting
    else:
        retry_after = None
        if problem.final:
            return Stop("fatal" if resend_safe else "refused")
        if not resend_safe:
            if not problem.never_sent:
                return Stop("uncertain")
            if attempt >= policy.submit_retries:
                return Stop("refused")
    remaining = policy.deadline - elapsed if remaining is None else remaining
    if remaining <= 0:
        return Stop("deadline")
    delay = policy.retry_delay(attempt, retry_after, rand)
    reason = (f"HTTP {problem.status_code}" if isinstance(problem, HttpProblem)
              else f"unreadable answer ({problem.detail})" if isinstance(problem, Unreadable)
              else f"no answer ({problem.detail})")
    if delay > remaining:
        if not resend_safe:
            return Stop("refused")
        return Wait(remaining, reason + "; last try at the deadline")
    return Wait(delay, reason)


def rate_limited(problem: Problem | None) -> bool:
    """True for a 429 about the request rate (not about credits): the bucket should hold and slow down."""
    return isinstance(problem, HttpProblem) and problem.status_code == 429 and not problem.out_of_credits


class Pace:
    """How much of a bucket's request rate to use now: a 429 cuts it, each good answer wins a little back.

    ``Retry-After`` says how long to hold, but not how fast to go after: a limit the client cannot see (a judge
    model's tokens per minute, another program on the key, a rate lower than configured) answers 429 again as
    soon as the hold ends. So the share is multiplied by ``cut`` on a 429 (down to ``floor``) and by ``regain``
    on each good answer (back to 1: the configured rate); benchmarks/bench_rate_limits.py measured these against
    a limit a quarter of the configured rate. Answers to requests sent before the latest cut speak for the old
    pace and change nothing: each request carries the ``cuts`` count of when it was granted (its epoch).
    """

    def __init__(self, floor: float = 1 / 64, cut: float = 0.7, regain: float = 1.05):
        self.floor = floor
        self.cut = cut
        self.regain = regain
        self.share = 1.0
        self.cuts = 0  # how many times a 429 cut the pace: the epoch of a request granted now

    def slowed(self, epoch: int) -> bool:
        """A 429 answered a request granted at ``epoch``; True when it cut the pace."""
        if epoch != self.cuts or self.share <= self.floor:
            return False
        self.share = max(self.floor, self.share * self.cut)
        self.cuts += 1
        return True

    def ok(self, epoch: int) -> None:
        """A good answer came to a request granted at ``epoch``: a little of the rate is won back."""
        if epoch == self.cuts:
            self.share = min(1.0, self.share * self.regain)

    def gap(self, rate: float) -> float:
        """The least time between two requests at this pace (seconds)."""
        return 1.0 / (rate * self.share)


def next_step(
    policy: PollPolicy,
    observation: JobStatus | Problem,
    *,
    elapsed: float,
    polls: int,
    errors_in_a_row: int,
    rand: float = 0.5,
    planned: float | None = None,
) -> Wait | Stop:
    """Decide what follows one poll; ``elapsed`` is monotonic seconds since the wait began.

    A running job is polled again after ``planned`` seconds (the planner's plan) or, without a
    plan, after the shortest gap (``policy.interval``); a problem goes to :func:`retry_step` with
    ``errors_in_a_row`` as its attempt (failed polls before this one).
    """
    if not isinstance(observation, JobStatus):
        return retry_step(policy, observation, resend_safe=True, attempt=errors_in_a_row, elapsed=elapsed, rand=rand)
    if observation.terminal:
        return Stop(observation.outcome)
    remaining = policy.deadline - elapsed
    if remaining <= 0:
        return Stop("deadline")
    delay = planned if planned is not None else policy.interval
    reason = f"status {observation.status}"
    if delay > remaining:
        return Wait(remaining, reason + "; last poll at the deadline")
    return Wait(max(0.0, delay), reason)


@dataclass(frozen=True)
class SubmitOutcome:
    """What a submit POST came back with, as far as billing is concerned."""

    accepted: bool = False
    status_code: int | None = None  # an HTTP error answer
    retry_after: float | None = None
    out_of_credits: bool = False
    never_sent: bool = False  # the connection was never made: the server saw nothing
    maybe_sent: bool = False  # sent, but no answer: a job may exist

    def problem(self) -> Problem | None:
        """The same facts as the problem :func:`retry_step` judges (None when accepted)."""
        if self.accepted:
            return None
        if self.status_code is not None:
            return HttpProblem(self.status_code, self.retry_after, self.out_of_credits)
        return TransportProblem(never_sent=self.never_sent and not self.maybe_sent)
