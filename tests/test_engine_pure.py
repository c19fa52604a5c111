"""The job lifecycle, the poll planner, the scheduler's choices and the budget ledger, without a network."""

from __future__ import annotations

import asyncio
import math
import threading
from dataclasses import replace

import pytest

from grok_nb.api.responses import parse_job_status
from grok_nb.errors import BudgetExceeded, ValidationError
from grok_nb.jobs.budget import Budget
from grok_nb.jobs.lifecycle import (
    FINAL,
    Created,
    Finished,
    RequestIdKnown,
    Status,
    Stopped,
    after_download,
    after_poll,
    after_submit,
    settle_cost,
    status_of,
)
from grok_nb.jobs.policy import HttpProblem, PollPolicy, Stop, SubmitOutcome, TransportProblem, Wait
from grok_nb.jobs.results import Run
from grok_nb.runtime.scheduler import (
    POLL,
    SUBMIT,
    LatencyPrior,
    Observation,
    PriorBook,
    Scheduler,
    documented_prior,
    done_window,
    plan_next_poll,
    tail_bounds,
)

P = PollPolicy(interval=1.0, max_interval=60.0, deadline=900.0)
PRIOR = LatencyPrior(low=60.0, typical=100.0, high=200.0)
PATIENT = replace(P, max_interval=120.0)  # gaps long enough for the plan, not the cap, to set them


# -- the lifecycle ----------------------------------------------------------------------------------
def test_status_is_a_str_enum_that_rows_and_old_code_understand():
    assert Status.DONE == "done" and f"{Status.PENDING}" == "pending" and status_of("done") is Status.DONE
    assert status_of("who knows") is Status.PENDING  # unknown text: still running
    run = Run("r", "generate", "m", "p", status="moderated")
    assert run.status is Status.MODERATED and run.finished and not run.ok
    assert run.to_row()["status"] == "moderated" and type(run.to_row()["status"]) is str
    assert {s.value for s in FINAL} == {"done", "failed", "moderated", "expired", "download_failed", "uncertain",
                                        "rejected"}


@pytest.mark.parametrize("outcome,status", [
    (SubmitOutcome(accepted=True), Status.PENDING),
    (SubmitOutcome(maybe_sent=True), Status.UNCERTAIN),  # may have started a job: never resent
    (SubmitOutcome(status_code=502), Status.UNCERTAIN),
    (SubmitOutcome(status_code=400), Status.REJECTED),
    (SubmitOutcome(status_code=429, out_of_credits=True), Status.REJECTED),
])
def test_submit_outcomes(outcome, status):
    step, new = after_submit(P, outcome, 0)
    assert isinstance(step, Stop) and new is status


def test_a_submit_refused_with_429_is_retried_until_the_deadline():
    step, new = after_submit(P, SubmitOutcome(status_code=429, retry_after=3.0), 40, elapsed=500.0)
    assert isinstance(step, Wait) and step.delay == 3.0 and new is None
    step, new = after_submit(P, SubmitOutcome(status_code=429, retry_after=3.0), 41, elapsed=899.0)
    assert new is Status.REJECTED


@pytest.mark.parametrize("body,status", [
    ({"status": "done", "video": {"url": "https://v/x.mp4"}}, None),  # done at the server: the download decides
    ({"status": "done", "video": {"url": "", "respect_moderation": False}}, Status.MODERATED),
    ({"status": "failed", "error": {"code": "internal_error"}}, Status.FAILED),
    ({"status": "expired"}, Status.EXPIRED),
])
def test_poll_outcomes(body, status):
    step, new = after_poll(P, parse_job_status(body), elapsed=5, polls=1, errors_in_a_row=0)
    assert isinstance(step, Stop) and new is status


def test_polls_keep_waiting_on_running_answers_and_transient_errors():
    for observation in (parse_job_status({"status": "processing"}), HttpProblem(503), TransportProblem("reset")):
        step, new = after_poll(P, observation, elapsed=5, polls=1, errors_in_a_row=1)
        assert isinstance(step, Wait) and new is None
    step, _ = after_poll(P, HttpProblem(403), elapsed=5, polls=1, errors_in_a_row=1)
    assert step == Stop("fatal")


def test_download_and_cost_settlement():
    assert after_download(True) is Status.DONE
    assert after_download(False) is Status.DOWNLOAD_FAILED
    assert after_download(False, gone=True) is Status.EXPIRED
    assert settle_cost(Status.DONE, 0.5, 0.42) == 0.5  # the larger of the estimate and a sane figure
    assert settle_cost(Status.DONE, 0.5, 0.61) == 0.61
    assert settle_cost(Status.DONE, 0.5, None) == 0.5
    assert settle_cost(Status.MODERATED, 0.5, None) == 0.5  # moderated videos are billed
    assert settle_cost(Status.FAILED, 0.5, None) == 0.0
    assert settle_cost(Status.UNCERTAIN, 0.5, None) == 0.5  # may have been billed: keep it counted


def test_events_that_must_be_on_disk_before_the_job_goes_on():
    run = Run("r", "generate", "m", "p")
    assert Created(run).durable and RequestIdKnown(run).durable and Finished(run).durable and Stopped(run).durable


# -- the planner ------------------------------------------------------------------------------------
def test_one_reading_bounds_the_end_and_two_narrow_it():
    assert done_window([Observation(30.0, 30)]) == pytest.approx((100 * 30 / 31, 100.0))
    lo, hi = done_window([Observation(30.0, 30), Observation(90.0, 90)])
    assert 98.9 < lo <= 100.0 <= hi < 100.01
    assert done_window([Observation(10.0, None), Observation(20.0, 0)]) is None


def test_a_slow_answer_dates_its_reading_loosely():
    assert done_window([Observation(30.0, 30, spread=0.0)]) == pytest.approx((100 * 30 / 31, 100.0))
    lo, hi = done_window([Observation(30.0, 30, spread=1.5)])
    assert lo == pytest.approx(100 * 28.5 / 31) and hi == pytest.approx(100 * 31.5 / 30)
    # Two readings that agree only once each is dated within its round trip: then both are kept.
    tight = done_window([Observation(30.0, 30), Observation(62.0, 60)])
    assert tight == pytest.approx((100 * 62 / 61, 100 * 62 / 60))  # the older one dropped
    loose = done_window([Observation(30.0, 30, 1.0), Observation(62.0, 60, 1.0)])
    assert loose == pytest.approx((100 * 61 / 61, 100 * 31 / 30))  # each bounds one side


def test_readings_that_disagree_drop_the_oldest():
    # Progress that is not linear from the submit (a queue first): the recent readings win.
    lo, hi = done_window([Observation(10.0, 50), Observation(50.0, 60), Observation(60.0, 70)])
    assert lo > 80 and hi < 90


def test_plan_with_progress_takes_about_three_polls():
    first = plan_next_poll([], PRIOR, P, now=0.0)
    assert first == pytest.approx(48.0)  # 0.8 of the fastest expected latency
    true_latency, patient = 200.0, PATIENT
    obs = [Observation(first, int(100 * first / true_latency))]
    second = plan_next_poll(obs, PRIOR, patient, now=first)
    assert 150.0 <= second < true_latency  # a reading near the end, where it pins the end within ~1 %
    obs.append(Observation(second, int(100 * second / true_latency)))
    third = plan_next_poll(obs, PRIOR, patient, now=second)
    assert true_latency <= third <= true_latency * 1.02  # just after it ends: lag under 2 %


def test_a_first_reading_that_already_pins_the_end_skips_the_narrowing_poll():
    obs = [Observation(48.0, int(100 * 48.0 / 120.0))]  # 40 %: the end within 2.5 % (117.1 to 120 s)
    assert 100 * 48.0 / 41 <= plan_next_poll(obs, PRIOR, PATIENT, now=48.0) <= 120.0  # in that window, not 0.9 of it


def test_plan_without_progress_is_geometric_after_the_fastest_latency():
    obs = [Observation(30.0, None)]
    assert plan_next_poll(obs, PRIOR, P, now=30.0) == 60.0
    obs.append(Observation(60.0, None))
    assert plan_next_poll(obs, PRIOR, P, now=100.0) == pytest.approx(100.0 * (1 + P.lag_target))


def test_plan_respects_the_shortest_and_longest_gap():
    assert plan_next_poll([Observation(1.0, 99)], PRIOR, P, now=1.0) >= 2.0
    assert plan_next_poll([], LatencyPrior(1000, 2000, 4000), P, now=0.0) == 60.0


def _held_job(tail: float, latency: float, prior: LatencyPrior, policy: PollPolicy) -> list[Observation]:
    """Every poll the planner asks for on one job that holds at 99 % for the last ``tail`` of ``latency``."""
    obs: list[Observation] = []
    t = plan_next_poll(obs, prior, policy, now=0.0)
    while t < latency:
        obs.append(Observation(t, min(99, int(100 * t / (latency * (1 - tail))))))
        t = plan_next_poll(obs, prior, policy, now=t)
    obs.append(Observation(t, 100))
    return obs


def test_a_job_held_at_99_percent_is_polled_at_the_lag_target_never_in_a_hot_loop():
    # Seen in the notebooks (×30 clock): a 3 s job polled 7 times at 99 % within 0.6 s (steps of 1 %, 2 %).
    fast = PollPolicy().scaled(30)
    prior = documented_prior("generate", 1, "480p", speed=30)
    obs = _held_job(0.2, 3.0, prior, fast)
    gaps = [b.t / a.t - 1 for a, b in zip(obs, obs[1:], strict=False)]
    assert min(gaps) >= fast.lag_target * 0.999  # never closer than the lag target's share of the time waited
    held = [o for o in obs if o.progress == 99]
    assert len(held) <= 6 and obs[-1].t <= 3.0 * (1 + fast.lag_target)
    obs = [Observation(100.0, 99), Observation(102.0, 99)]  # no pace known at all
    assert plan_next_poll(obs, PRIOR, P, now=102.0) == pytest.approx(102.0 * (1 + P.lag_target))


def test_the_tail_at_99_percent_is_learned_from_finished_jobs_and_polled_once():
    book = PriorBook(speed=1)
    key = PriorBook.key("grok-imagine-video", "generate", "480p", 6)
    counts = []
    for latency in (100.0, 130.0, 90.0, 160.0, 110.0, 140.0):
        obs = _held_job(0.1, latency, book.prior(key), PATIENT)
        book.learn_end(key, obs)
        counts.append(len(obs))
        assert latency <= obs[-1].t <= latency * 1.05  # done seen within 5 %, learning or not
    lo, hi = book.tail(key)
    assert lo <= 1 / 0.9 <= hi and hi / lo - 1 <= 0.08  # the tail bounded within 8 % after six jobs
    assert counts[0] >= 4 and sum(counts[-3:]) / 3 <= 3  # the first job steps through the tail; later ones do not
    assert book.prior(PriorBook.key("grok-imagine-video", "generate", "720p", 6)).tail_high == hi  # per model and kind


def test_one_job_held_back_does_not_make_every_later_job_wait_as_long():
    book = PriorBook(speed=1)
    key = PriorBook.key("m", "generate", "480p", 6)
    for _ in range(3):
        book.learn_end(key, [Observation(40.0, 40), Observation(99.0, 99), Observation(101.0, 100)])
    steady = book.tail(key)
    book.learn_end(key, [Observation(40.0, 40), Observation(135.0, 99), Observation(138.0, 100)])  # a render lagged
    assert book.tail(key) == steady and steady[1] < 1.04


def test_each_side_of_the_tail_is_learned_alone_and_the_sides_meet():
    book = PriorBook(speed=1)
    key = PriorBook.key("m", "generate", "480p", 6)
    # 40 % at 40 s: progress would end between 97.6 and 100 s. Done seen at 120 s, the last pending long before.
    book.learn_end(key, [Observation(40.0, 40), Observation(120.0, 100)])
    assert book.tail(key) == pytest.approx((1.0, 1.2 / 0.976), rel=1e-3)  # only an upper bound
    # Pending at 115 s, done seen only at 200 s: a lower bound, and an upper one too loose to use.
    book.learn_end(key, [Observation(40.0, 40), Observation(115.0, 99), Observation(200.0, 100)])
    lo, hi = book.tail(key)
    assert lo == pytest.approx(1.15) and hi == pytest.approx(1.2 / 0.976, rel=1e-3)  # the two jobs together
    bounds = tail_bounds([Observation(40.0, 40), Observation(130.0, 99), Observation(400.0, 100)])
    assert bounds is not None and bounds[1] == math.inf  # done 4x after progress ran out: no upper bound


def test_a_job_without_a_tail_teaches_none():
    book = PriorBook(speed=1)
    key = PriorBook.key("m", "generate", "480p", 6)
    book.learn_end(key, _held_job(0.0, 120.0, book.prior(key), P))
    lo, hi = book.tail(key)
    assert lo == 1.0 and hi < 1.03
    assert tail_bounds([Observation(10.0, None), Observation(20.0, None)]) is None  # no progress: nothing to learn


def test_priors_come_from_history_once_there_are_enough():
    book = PriorBook(speed=10)
    key = PriorBook.key("grok-imagine-video", "generate", "480p", 6)
    assert book.prior(key).source == "documented" and book.prior(key).typical == pytest.approx(9.2)
    for latency in (7.0, 8.0, 9.0):
        book.learn(key, latency)
    prior = book.prior(key)
    assert prior.source == "history" and prior.typical == 8.0 and prior.low == pytest.approx(0.85 * 7.0)
    assert documented_prior("edit", 6, "480p").typical == 80.0


# -- the scheduler ----------------------------------------------------------------------------------
class _CountingLimiter:
    def __init__(self) -> None:
        self.slots = 0

    async def acquire(self) -> None:
        self.slots += 1
        await asyncio.sleep(0)

    def pause(self, seconds: float) -> None:
        pass


@pytest.mark.anyio
async def test_due_polls_go_before_new_submits_and_early_polls_wait():
    clock = [100.0]
    sched = Scheduler(_CountingLimiter(), clock=lambda: clock[0])
    order: list[str] = []

    async def ask(name: str, kind: int, due: float | None = None) -> None:
        await sched.turn(kind, due)
        order.append(name)

    tasks = [asyncio.create_task(ask("submit-1", SUBMIT)), asyncio.create_task(ask("submit-2", SUBMIT)),
             asyncio.create_task(ask("poll-due", POLL, 99.0)), asyncio.create_task(ask("poll-later", POLL, 100.2))]
    await asyncio.sleep(0.05)
    assert order == ["poll-due", "submit-1", "submit-2"]  # the later poll is not due yet
    clock[0] = 101.0
    sched._wake.set()  # type: ignore[union-attr]
    await asyncio.wait_for(asyncio.gather(*tasks), 2)
    assert order[-1] == "poll-later" and sched.granted == {SUBMIT: 2, POLL: 2}
    await sched.aclose()


@pytest.mark.anyio
async def test_a_poll_is_asked_again_when_due_and_put_off_once_if_a_later_time_is_known():
    clock = [100.0]
    sched = Scheduler(_CountingLimiter(), clock=lambda: clock[0])
    asked: list[str] = []

    def later() -> float:
        asked.append("later")
        return 105.0  # a finished job taught the planner that this one ends later

    def same() -> float:
        asked.append("same")
        return 99.0

    put_off = asyncio.create_task(sched.turn(POLL, 99.0, later))
    kept = asyncio.create_task(sched.turn(POLL, 99.5, same))
    await asyncio.sleep(0.05)
    assert kept.done() and not put_off.done() and sorted(asked) == ["later", "same"]
    clock[0] = 105.0
    sched._wake.set()  # type: ignore[union-attr]
    await asyncio.wait_for(put_off, 2)
    assert asked.count("later") == 1 and sched.granted[POLL] == 2  # asked once, never put off twice
    await sched.aclose()


@pytest.mark.anyio
async def test_a_cancelled_request_gives_its_turn_away():
    sched = Scheduler(_CountingLimiter())
    waiting = asyncio.create_task(sched.turn(POLL, due=asyncio.get_running_loop().time() + 3600))
    await asyncio.sleep(0.01)
    waiting.cancel()
    await asyncio.wait_for(sched.turn(SUBMIT), 1)  # not stuck behind the cancelled one
    assert sched.queued == 0
    await sched.aclose()


# -- the budget -------------------------------------------------------------------------------------
def test_budget_reserves_settles_and_releases():
    budget = Budget(1.0)
    a, b = budget.reserve([0.3, 0.3])
    assert budget.remaining_usd == pytest.approx(0.4) and budget.reserved_usd == pytest.approx(0.6)
    with pytest.raises(BudgetExceeded, match=r"\$0.60 of the \$1.00 budget is already spent or reserved"):
        budget.reserve([0.5])
    budget.settle(a, 0.25)
    budget.release(b)
    budget.release(b)  # twice changes nothing
    assert budget.spent_usd == pytest.approx(0.25) and budget.remaining_usd == pytest.approx(0.75)
    with pytest.raises(BudgetExceeded):
        budget.reserve([0.5, 0.5])  # all or nothing
    assert budget.reserved_usd == 0
    assert Budget().remaining_usd is None and Budget().reserve([1e6])
    for bad in (-1, float("nan"), float("inf"), "5", True):
        with pytest.raises(ValidationError, match="budget_usd"):
            Budget(bad)  # type: ignore[arg-type]


def test_budget_holds_under_many_threads():
    budget = Budget(1.0)
    granted: list[float] = []

    def grab() -> None:
        for _ in range(50):
            try:
                granted.extend(r.usd for r in budget.reserve([0.03]))
            except BudgetExceeded:
                pass

    threads = [threading.Thread(target=grab) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sum(granted) <= 1.0 + 1e-9 and len(granted) == 33
