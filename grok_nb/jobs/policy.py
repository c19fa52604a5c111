"""What the wait loop does next, given the last answer and the clock (pure: no I/O, no sleeping).

The async client drives these functions; tests run them with no network at all.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from ..api.responses import JobStatus

#: HTTP statuses worth retrying on a poll or a download: the request changes nothing server-side.
RETRYABLE_STATUS = frozenset({408, 425, 429, 500, 502, 503, 504})


@dataclass(frozen=True)
class PollPolicy:
    """Timing knobs for waiting on jobs; all in seconds of wall-clock time."""

    interval: float = 1.0  # the shortest gap between two polls of one job (the official SDK's fixed interval)
    max_interval: float = 120.0  # the longest gap: a prediction is never trusted for longer than this
    growth: float = 1.1  # ``poll_delay``'s fixed schedule (the scheduler plans from progress instead)
    deadline: float = 15 * 60.0
    lag_target: float = 0.04  # without progress, poll again after this share of the time waited so far
    first_poll_share: float = 0.8  # the first poll comes at this share of the fastest expected latency
    retry_base: float = 1.0
    retry_max: float = 30.0
    jitter: float = 0.25
    submit_retries: int = 5  # only for submits that certainly did not start a job

    def poll_delay(self, polls: int) -> float:
        """Seconds to wait before the next poll, after ``polls`` polls."""
        return min(self.max_interval, self.interval * self.growth ** max(0, polls))

    def retry_delay(self, attempt: int, retry_after: float | None = None, rand: float = 0.5) -> float:
        """Backoff before retry number ``attempt`` (0-based); honours Retry-After when given.

        ``rand`` in [0, 1) supplies the jitter, so callers own the randomness.
        """
        if retry_after is not None:
            return max(0.0, retry_after)
        base = min(self.retry_max, self.retry_base * 2.0 ** max(0, attempt))
        return base * (1.0 - self.jitter + 2.0 * self.jitter * rand)

    def scaled(self, factor: float) -> PollPolicy:
        """The same policy in time running ``factor`` times faster (the simulator's clock)."""
        return replace(self, interval=self.interval / factor, max_interval=self.max_interval / factor,
                       retry_base=self.retry_base / factor, retry_max=self.retry_max / factor)


@dataclass(frozen=True)
class Wait:
    """Sleep ``delay`` seconds, then poll again."""

    delay: float
    reason: str


@dataclass(frozen=True)
class Stop:
    """Stop polling; ``outcome`` is done, moderated, failed, expired, deadline or fatal."""

    outcome: str


@dataclass(frozen=True)
class HttpProblem:
    """A poll answered with an HTTP error status."""

    status_code: int
    retry_after: float | None = None


@dataclass(frozen=True)
class TransportProblem:
    """A poll that got no answer (connection refused, reset, timed out)."""

    detail: str = ""


def next_step(
    policy: PollPolicy,
    observation: JobStatus | HttpProblem | TransportProblem,
    *,
    elapsed: float,
    polls: int,
    errors_in_a_row: int,
    rand: float = 0.5,
) -> Wait | Stop:
    """Decide what follows one poll; ``elapsed`` is monotonic seconds since the wait began."""
    if isinstance(observation, JobStatus):
        if observation.terminal:
            return Stop(observation.outcome)
        step = Wait(policy.poll_delay(polls), f"status {observation.status}")
    elif isinstance(observation, HttpProblem):
        if observation.status_code not in RETRYABLE_STATUS:
            return Stop("fatal")  # 400/401/403/404 will not heal by waiting
        step = Wait(policy.retry_delay(errors_in_a_row, observation.retry_after, rand),
                    f"HTTP {observation.status_code}")
    else:
        step = Wait(policy.retry_delay(errors_in_a_row, None, rand), "no answer")
    remaining = policy.deadline - elapsed
    if remaining <= 0:
        return Stop("deadline")
    if step.delay > remaining:
        return Wait(remaining, step.reason + "; last poll at the deadline")
    return step


@dataclass(frozen=True)
class SubmitOutcome:
    """What a submit POST came back with, as far as billing is concerned."""

    accepted: bool = False
    status_code: int | None = None  # an HTTP error answer
    retry_after: float | None = None
    out_of_credits: bool = False
    never_sent: bool = False  # the connection was never made: the server saw nothing
    maybe_sent: bool = False  # sent, but no answer: a job may exist


def submit_step(policy: PollPolicy, outcome: SubmitOutcome, attempt: int, rand: float = 0.5,
                elapsed: float = 0.0) -> Wait | Stop:
    """Decide whether a submit may be tried again; never when it may have started a paid job.

    A 429 (not about credits) never reached the job queue, so it is retried until the deadline,
    honouring ``Retry-After``; a connection that was never made is retried ``submit_retries`` times.
    Stop outcomes: ``accepted``, ``uncertain`` (may have reached the server), ``refused``.
    """
    if outcome.accepted:
        return Stop("accepted")
    if outcome.maybe_sent:
        return Stop("uncertain")
    if outcome.status_code is not None and outcome.status_code >= 500:
        # A 5xx came from something that read the request; a gateway may have passed it on.
        return Stop("uncertain")
    rate_limited = outcome.status_code == 429 and not outcome.out_of_credits
    if rate_limited or (outcome.never_sent and attempt < policy.submit_retries):
        delay = policy.retry_delay(attempt, outcome.retry_after, rand)
        if elapsed + delay <= policy.deadline:
            return Wait(delay, "submit refused before acceptance")
    return Stop("refused")
