"""The job lifecycle, the scheduler's choices and the budget ledger, without a network (the planner: test_pollplan.py)."""

from __future__ import annotations

import asyncio
import sys
import threading

import pytest

from grok_nb.api.responses import parse_job_status
from grok_nb.errors import BudgetExceeded, ValidationError
from grok_nb.history.rows import row_of
from grok_nb.jobs.budget import Budget
from grok_nb.jobs.lifecycle import (
    Created,
    Finished,
    RequestIdKnown,
    Stopped,
    after_download,
    after_poll,
    count_cost,
    submit_status,
)
from grok_nb.jobs.policy import HttpProblem, PollPolicy, Stop, SubmitOutcome, TransportProblem, Wait, retry_step
from grok_nb.jobs.results import Run
from grok_nb.jobs.status import FINAL, Status, status_of
from grok_nb.runtime.scheduler import POLL, SUBMIT, Scheduler

P = PollPolicy(interval=1.0, max_interval=60.0, deadline=900.0)


# -- the lifecycle ----------------------------------------------------------------------------------
def test_status_is_a_str_enum_that_rows_and_old_code_understand():
    assert Status.DONE == "done" and f"{Status.PENDING}" == "pending" and status_of("done") is Status.DONE
    assert status_of("who knows") is Status.PENDING  # unknown text: still running
    run = Run("r", "generate", "m", "p", status="moderated")
    assert run.status is Status.MODERATED and run.finished and not run.ok
    assert row_of(run)["status"] == "moderated" and type(row_of(run)["status"]) is str
    assert {s.value for s in FINAL} == {"done", "failed", "moderated", "expired", "cancelled", "download_failed",
                                        "uncertain", "rejected"}


@pytest.mark.parametrize("outcome,status", [
    (SubmitOutcome(accepted=True), Status.PENDING),
    (SubmitOutcome(maybe_sent=True), Status.UNCERTAIN),  # may have started a job: never resent
    (SubmitOutcome(status_code=502), Status.UNCERTAIN),
    (SubmitOutcome(status_code=400), Status.REJECTED),
    (SubmitOutcome(status_code=429, out_of_credits=True), Status.REJECTED),
])
def test_submit_outcomes(outcome, status):
    """What the engine does with a submit's answer: the one retry rule, never resending a POST, then its status."""
    problem = outcome.problem()
    step = Stop("ok") if problem is None else retry_step(P, problem, resend_safe=False, attempt=0, elapsed=0.0)
    assert isinstance(step, Stop) and submit_status(step.outcome) is status


def test_a_submit_refused_with_429_is_retried_until_the_deadline():
    refused = SubmitOutcome(status_code=429, retry_after=3.0).problem()
    assert refused is not None
    step = retry_step(P, refused, resend_safe=False, attempt=40, elapsed=500.0)
    assert isinstance(step, Wait) and step.delay == 3.0
    step = retry_step(P, refused, resend_safe=False, attempt=41, elapsed=899.0)
    assert isinstance(step, Stop) and submit_status(step.outcome) is Status.REJECTED


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
    assert count_cost(Status.DONE, 0.5, 0.42).usd == 0.5  # the larger of the estimate and a sane figure
    assert count_cost(Status.DONE, 0.5, 0.61).usd == 0.61
    assert count_cost(Status.DONE, 0.5, None).usd == 0.5
    assert count_cost(Status.MODERATED, 0.5, None).usd == 0.5  # moderated videos are billed
    assert count_cost(Status.FAILED, 0.5, None).usd == 0.0
    assert count_cost(Status.CANCELLED, 0.5, None).usd == 0.0  # cancelled before it ran
    assert count_cost(Status.UNCERTAIN, 0.5, None).usd == 0.5  # may have been billed: keep it counted


def test_events_that_must_be_on_disk_before_the_job_goes_on():
    run = Run("r", "generate", "m", "p")
    assert Created(run).durable and RequestIdKnown(run).durable and Finished(run).durable and Stopped(run).durable


# -- the scheduler ----------------------------------------------------------------------------------
class _CountingLimiter:
    rate = 10.0

    def __init__(self) -> None:
        self.slots = 0

    async def acquire(self) -> None:
        self.slots += 1
        await asyncio.sleep(0)

    def pause(self, seconds: float, everyone: bool = True) -> None:
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
async def test_after_a_429_grants_are_spaced_by_the_slower_pace_until_good_answers_win_it_back():
    clock = [100.0]
    sched = Scheduler(_CountingLimiter(), clock=lambda: clock[0])  # the limiter alone: 10 a second
    await asyncio.wait_for(sched.turn(SUBMIT), 1)
    sent_at = sched.epoch
    sched.slowed(sent_at)  # a 429: 7 a second now, one grant at least 1/7 s after the last
    assert sched.pace.share == pytest.approx(0.7) and sched.gap() == pytest.approx(1 / 7)
    waiting = asyncio.create_task(sched.turn(POLL))
    await asyncio.sleep(0.05)
    assert not waiting.done()  # 0 s after the last grant, at the modelled clock
    clock[0] = 100.0 + 1 / 7 + 1e-6
    sched._wake.set()  # type: ignore[union-attr]
    await asyncio.wait_for(waiting, 1)
    sched.slowed(sent_at)  # the 429 of another request sent before the cut answers for the old pace: once
    sched.answered(sent_at)  # and so does its success
    assert sched.pace.cuts == 1 and sched.pace.share == pytest.approx(0.7)
    for _ in range(8):
        sched.answered(sched.epoch)
    assert sched.pace.share == 1.0  # back to the configured rate, no faster
    await sched.aclose()


@pytest.mark.anyio
async def test_a_wait_cancelled_as_its_event_is_set_ends_cancelled():
    # Python 3.11's asyncio.wait_for returns here (the cancellation swallowed): a batch follower then ran on after
    # its client closed, and close() waited 45 s for it.
    from grok_nb.runtime.batch import woken

    async def swallowed() -> None:
        event = asyncio.Event()
        task = asyncio.create_task(asyncio.wait_for(event.wait(), 10))
        await asyncio.sleep(0)
        event.set()
        task.cancel()
        assert await task is True  # the cancellation was lost

    if sys.version_info < (3, 12):
        await swallowed()
    event = asyncio.Event()
    task = asyncio.create_task(woken(event, 10))
    await asyncio.sleep(0)
    event.set()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert await woken(event, 0) is True and await woken(asyncio.Event(), 0.01) is False


@pytest.mark.anyio
async def test_a_cancelled_request_gives_its_turn_away():
    sched = Scheduler(_CountingLimiter())
    waiting = asyncio.create_task(sched.turn(POLL, due=asyncio.get_running_loop().time() + 3600))
    await asyncio.sleep(0.01)
    waiting.cancel()
    await asyncio.wait_for(sched.turn(SUBMIT), 1)  # not stuck behind the cancelled one
    assert sched.queued == 0
    await sched.aclose()


@pytest.mark.anyio
async def test_five_thousand_requests_are_granted_in_order_with_a_bounded_number_of_comparisons(monkeypatch):
    from grok_nb.runtime import scheduler as module

    compared = [0]
    less = module._Ticket.__lt__

    def counted(self, other):
        compared[0] += 1
        return less(self, other)

    monkeypatch.setattr(module._Ticket, "__lt__", counted)
    sched = Scheduler(_CountingLimiter(), clock=lambda: 1000.0)  # every request is due
    n, replans, order = 5000, [0], []

    def replan() -> float:
        replans[0] += 1
        return 0.0  # an earlier time: never brought forward

    async def ask(i: int) -> None:
        kind = POLL if i % 2 else SUBMIT
        await sched.turn(kind, due=float(i % 97), replan=replan if kind == POLL else None)
        order.append((kind, i % 97))

    await asyncio.wait_for(asyncio.gather(*(ask(i) for i in range(n))), 60)
    assert sched.granted == {POLL: n // 2, SUBMIT: n // 2} and replans[0] == n // 2  # each poll asked once
    kinds = [kind for kind, _ in order]
    assert kinds == sorted(kinds)  # every due poll before any submit
    assert [due for kind, due in order if kind == POLL] == sorted(due for kind, due in order if kind == POLL)
    # A heap costs about log2(5000) ≈ 12 comparisons a push or pop; scanning every ticket on every grant (and
    # re-heapifying) took n²/2 = 12.5 million.
    assert compared[0] <= 4 * n * 13
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
