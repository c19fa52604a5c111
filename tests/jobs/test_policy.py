"""The poll policy, submit decisions and the rate limiter, with no network and no sleeping."""

import pytest

from grok_nb.api.responses import parse_job_status
from grok_nb.jobs.policy import (
    HttpProblem,
    PollPolicy,
    Stop,
    SubmitOutcome,
    TransportProblem,
    Wait,
    next_step,
    retry_step,
)
from grok_nb.runtime.ratelimit import RateLimiter

P = PollPolicy(interval=1.0, max_interval=5.0, deadline=100.0, retry_base=1.0, retry_max=30.0, jitter=0.25)
PENDING = parse_job_status({"status": "pending", "progress": 10})


@pytest.mark.parametrize("status,outcome", [
    ({"status": "done", "video": {"url": "https://v/x.mp4", "respect_moderation": True}}, "done"),
    ({"status": "done", "video": {"url": "", "respect_moderation": False}}, "moderated"),
    ({"status": "failed", "error": {"code": "internal_error"}}, "failed"),
    ({"status": "expired"}, "expired"),
])
def test_terminal_statuses_stop(status, outcome):
    assert next_step(P, parse_job_status(status), elapsed=1, polls=1, errors_in_a_row=0) == Stop(outcome)


@pytest.mark.parametrize("body", [{"status": "processing"}, {"status": "queued", "progress": 5}, {}, {"progress": 3}])
def test_unknown_or_missing_statuses_keep_running(body):
    step = next_step(P, parse_job_status(body), elapsed=1, polls=0, errors_in_a_row=0)
    assert isinstance(step, Wait) and step.delay == 1.0


@pytest.mark.parametrize("code", [400, 401, 403, 404, 422])
def test_permanent_http_errors_stop_at_once(code):
    assert next_step(P, HttpProblem(code), elapsed=1, polls=1, errors_in_a_row=1) == Stop("fatal")


def test_retryable_errors_back_off_with_jitter_and_honour_retry_after():
    low = next_step(P, HttpProblem(503), elapsed=1, polls=1, errors_in_a_row=3, rand=0.0)
    high = next_step(P, HttpProblem(503), elapsed=1, polls=1, errors_in_a_row=3, rand=0.999)
    assert low.delay == pytest.approx(8 * 0.75) and high.delay == pytest.approx(8 * 1.25, rel=1e-3)
    assert next_step(P, HttpProblem(429, retry_after=7.5), elapsed=1, polls=1, errors_in_a_row=9).delay == 7.5
    assert next_step(P, TransportProblem(), elapsed=1, polls=1, errors_in_a_row=0, rand=0.5).delay == 1.0
    assert P.retry_delay(20, rand=0.5) == 30.0  # capped


def test_deadline_clamps_the_last_wait_then_stops():
    step = next_step(P, PENDING, elapsed=99.5, polls=10, errors_in_a_row=0)
    assert isinstance(step, Wait) and step.delay == pytest.approx(0.5)
    assert next_step(P, PENDING, elapsed=100.0, polls=10, errors_in_a_row=0) == Stop("deadline")


def test_scaled_policy_runs_faster_but_keeps_its_deadline():
    fast = P.scaled(10)
    assert fast.interval == 0.1 and fast.retry_max == 3.0 and fast.deadline == P.deadline
    # A Retry-After is in the server's seconds: on a clock ten times faster its cap is ten times shorter.
    assert fast.max_retry_after == P.max_retry_after / 10


def _submit(outcome: SubmitOutcome, attempt: int, elapsed: float = 0.0) -> Wait | Stop:
    """What the one retry rule says of a submit's answer (a POST: never resent once it may have arrived)."""
    problem = outcome.problem()
    if problem is None:
        return Stop("accepted")
    return retry_step(P, problem, resend_safe=False, attempt=attempt, elapsed=elapsed)


def test_submit_is_never_resent_once_it_may_have_reached_the_server():
    assert _submit(SubmitOutcome(maybe_sent=True), 0) == Stop("uncertain")
    assert _submit(SubmitOutcome(status_code=500), 0) == Stop("uncertain")
    assert _submit(SubmitOutcome(status_code=503), 0) == Stop("uncertain")
    assert _submit(SubmitOutcome(accepted=True), 0) == Stop("accepted")


def test_submit_refused_before_acceptance_may_be_retried_a_few_times():
    assert _submit(SubmitOutcome(status_code=429, retry_after=2.0), 0) == Wait(2.0, "HTTP 429")
    assert isinstance(_submit(SubmitOutcome(never_sent=True), 1), Wait)
    # A 429 never reached the job queue: retried past submit_retries, until the deadline.
    assert isinstance(_submit(SubmitOutcome(status_code=429), P.submit_retries + 20, elapsed=50.0), Wait)
    assert _submit(SubmitOutcome(status_code=429, retry_after=5.0), 99, elapsed=99.0) == Stop("refused")
    assert _submit(SubmitOutcome(never_sent=True), P.submit_retries) == Stop("refused")
    assert _submit(SubmitOutcome(status_code=429, out_of_credits=True), 0) == Stop("refused")
    assert _submit(SubmitOutcome(status_code=400), 0) == Stop("refused")


def test_rate_limiter_spaces_requests_first_come_first_served():
    clock = [0.0]
    limiter = RateLimiter(2.0, clock=lambda: clock[0])
    assert [limiter.reserve() for _ in range(4)] == [0.0, 0.5, 1.0, 1.5]
    clock[0] = 10.0
    assert limiter.reserve() == 0.0
    limiter.pause(3.0)
    assert limiter.reserve() == 3.0
    with pytest.raises(ValueError):
        RateLimiter(0)


# -- the pace of a bucket after 429s ---------------------------------------------------------------
def test_a_429_cuts_the_pace_and_good_answers_win_it_back():
    from grok_nb.jobs.policy import Pace

    pace = Pace(cut=0.5, regain=1.05)
    assert pace.share == 1.0 and pace.gap(2.0) == 0.5
    sent_before = pace.cuts  # the epoch of requests granted now
    assert pace.slowed(sent_before) and pace.share == 0.5 and pace.gap(2.0) == 1.0
    # the answers to requests sent before the cut speak for the old pace: a 429 cuts once, a success wins nothing
    assert not pace.slowed(sent_before) and pace.share == 0.5
    pace.ok(sent_before)
    assert pace.share == 0.5
    assert pace.slowed(pace.cuts) and pace.share == 0.25 and pace.cuts == 2
    for _ in range(14):
        pace.ok(pace.cuts)
    assert 0.49 < pace.share < 0.51  # about fourteen good answers win back a halving
    for _ in range(100):
        pace.ok(pace.cuts)
    assert pace.share == 1.0  # never faster than configured
    assert Pace().slowed(0) and Pace().cut == 0.7  # by default a 429 takes 30 % off


def test_the_pace_never_drops_below_its_floor():
    from grok_nb.jobs.policy import Pace

    pace = Pace(floor=1 / 8, cut=0.5)
    cut = [pace.slowed(pace.cuts) for _ in range(10)]
    assert cut == [True, True, True] + [False] * 7 and pace.share == 1 / 8
