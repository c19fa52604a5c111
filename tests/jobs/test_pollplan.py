"""The poll planner on synthetic readings: the end estimated from noisy progress, the pace learned from finished
jobs, and where the next poll goes (pure: no network, no clock)."""

from __future__ import annotations

import random
from dataclasses import replace

import pytest

from grok_nb.api.latency import LatencyPrior, documented_prior
from grok_nb.jobs.policy import PollPolicy
from grok_nb.jobs.pollplan import COLD, Observation, Pace, PriorBook, estimate_end, plan_next_poll

P = PollPolicy()
DOC = documented_prior("generate", 6, "480p")  # typical 92 s
#: What a service's pace looks like once learned: exact (rounding only), biased per job, jittery, held at 99 %.
EXACT = Pace(tail=1.0, tail_sd=0.005, bias_sd=0.3, jitter=0.3, jobs=20)
BIASED = replace(EXACT, bias_sd=4.6)
JITTERY = replace(EXACT, jitter=1.8)
HELD = replace(EXACT, tail=1 / 0.9)


def reading(t: float, latency: float, *, bias: float = 0.0, jitter: float = 0.0, tail: float = 0.0,
            rng: random.Random | None = None) -> Observation:
    """What the service answers at ``t`` for a job ending at ``latency``: floored, held at 99 %."""
    noise = (rng or random.Random(0)).uniform(-jitter, jitter) if jitter else 0.0
    return Observation(t, min(99, max(0, int(100 * t / (latency * (1 - tail)) + bias + noise))))


def test_exact_readings_pin_the_end():
    est = estimate_end([reading(40, 120), reading(100, 120)], DOC, EXACT)
    assert est.median == pytest.approx(120, rel=0.01) and est.spread() < 0.01
    assert all(end > 100 for end in est.ends)  # pending at 100 s: it ends later


@pytest.mark.parametrize("bias", [-8.0, 8.0])
def test_a_bias_that_stays_with_the_job_is_read_from_the_rate_not_the_offset(bias):
    one = estimate_end([reading(40, 120, bias=bias)], DOC, BIASED)
    # One reading cannot tell a bias from a pace: 40 s read as 25 % or 41 % is 98 s or 160 s if taken as exact.
    assert one.spread() > 0.05 and one.quantile(0.01) < 120 < one.quantile(0.99)
    two = estimate_end([reading(40, 120, bias=bias), reading(100, 120, bias=bias)], DOC, BIASED)
    assert two.median == pytest.approx(120, rel=0.02) and two.spread() < 0.02


def test_jitter_is_averaged_and_the_spread_narrows_as_readings_come_in():
    rng = random.Random(3)
    seen: list[Observation] = []
    spreads, medians = [], []
    for t in (30, 60, 90, 108):
        seen.append(reading(t, 120, jitter=3, rng=rng))
        est = estimate_end(seen, DOC, JITTERY)
        spreads.append(est.spread())
        medians.append(est.median)
    assert spreads == sorted(spreads, reverse=True) and spreads[-1] < 0.03
    assert medians[-1] == pytest.approx(120, rel=0.03)


def test_without_progress_the_prior_is_cut_at_the_last_pending_answer():
    est = estimate_end([Observation(50, None), Observation(80, None)], DOC, EXACT)
    assert est.done_by(80.0) == 0 and est.median > 92  # pending at 80 s: later than documented is likelier
    assert est.readings == 0


@pytest.mark.parametrize("factor,times", [(0.2, (5, 14)), (3.0, (60, 200))])
def test_a_service_faster_or_slower_than_documented_is_read_from_its_readings(factor, times):
    latency = factor * DOC.typical
    est = estimate_end([reading(t, latency) for t in times], DOC, EXACT)
    assert est.median == pytest.approx(latency, rel=0.03)  # not pulled towards the documented 92 s


def test_a_hold_at_99_percent_is_read_with_the_learned_tail():
    obs = [reading(40, 120, tail=0.1), reading(104, 120, tail=0.1), reading(110, 120, tail=0.1)]
    assert obs[-1].progress == 99  # held: it says only that the job got that far
    est = estimate_end(obs, DOC, HELD)
    assert est.median == pytest.approx(120, rel=0.02) and est.spread() < 0.02
    naive = estimate_end(obs, DOC, EXACT)  # a planner that believed the job ends as progress runs out
    assert abs(naive.median - 120) > 5 * abs(est.median - 120)


# -- what finished jobs teach ---------------------------------------------------------------------------
def _finish(book: PriorBook, key, latency: float, rng: random.Random, **fault) -> None:
    """One finished job: two readings (early, late), a pending answer near the end, done just after it."""
    t1, t2 = rng.uniform(0.25, 0.5) * latency, rng.uniform(0.75, 0.88) * latency
    b = rng.uniform(-1, 1) * fault.get("bias_points", 0.0)  # stays with the job
    obs = [reading(t, latency, bias=b, jitter=fault.get("jitter", 0.0), tail=fault.get("tail", 0.0), rng=rng)
           for t in (t1, t2, 0.98 * latency)]
    book.learn_pace(key, [*obs, Observation(1.01 * latency, 100)])
    book.learn(key, 1.01 * latency)


@pytest.mark.parametrize("fault,check", [
    ({}, lambda p: p.bias_sd < 1.0 and p.jitter < 0.8 and p.tail == pytest.approx(1.0, abs=0.02)),
    ({"bias_points": 8.0}, lambda p: p.bias_sd > 3.0 and p.jitter < 1.0),
    ({"jitter": 3.0}, lambda p: p.jitter > 1.2 and p.bias_sd < 1.5),
    ({"tail": 0.1}, lambda p: p.tail == pytest.approx(1 / 0.9, rel=0.03)),
])
def test_the_pace_of_progress_is_learned_from_finished_jobs(fault, check):
    book, rng = PriorBook(), random.Random(5)
    key = PriorBook.key("grok-imagine-video", "generate", "480p", 6)
    for _ in range(12):
        _finish(book, key, rng.uniform(60, 180), rng, **fault)
    pace = book.pace(key)
    assert pace.jobs == 12 and check(pace), pace
    assert book.pace(PriorBook.key("grok-imagine-video", "generate", "720p", 10)) == pace  # per model and kind
    assert book.pace(PriorBook.key("grok-imagine-video", "edit", None, None)) is COLD


@pytest.mark.parametrize("factor", [0.2, 3.0])
def test_a_service_faster_or_slower_than_documented_is_learned_within_a_few_jobs(factor):
    book = PriorBook()
    done = PriorBook.key("grok-imagine-video", "generate", "480p", 6)
    other = PriorBook.key("grok-imagine-video", "generate", "720p", 10)  # a bucket with no finished job yet
    for latency in (0.9, 1.0, 1.1):
        book.learn(done, factor * latency * book.documented(done).typical)
    prior = book.prior(other)
    assert prior.source == "learned" and prior.typical == pytest.approx(factor * book.documented(other).typical,
                                                                         rel=0.15)
    assert book.prior(PriorBook.key("grok-imagine-video", "edit", None, None)).source == "documented"


def test_running_jobs_teach_the_pace_before_any_has_finished():
    book = PriorBook()
    key = PriorBook.key("grok-imagine-video", "generate", "480p", 6)
    fast = 0.2 * book.documented(key).typical
    book.plan("running", key, [reading(5, fast)], P, 5.0)
    assert book.prior(key, "another").typical == pytest.approx(fast, rel=0.1)
    assert book.prior(key, "running").source == "documented"  # its own readings do not count twice
    book.forget("running")
    assert book.prior(key, "another").source == "documented"


def test_a_new_book_takes_the_history_rows():
    book = PriorBook()
    rows = [{"model": "grok-imagine-video", "kind": "generate", "resolution": "480p", "duration": 6.02,
             "latency_s": s} for s in (70.0, 80.0, 90.0)] + [{"kind": "generate", "latency_s": None}]
    assert book.learn_rows(rows) == 3
    prior = book.prior(PriorBook.key("grok-imagine-video", "generate", "480p", 6))
    assert prior.source == "history" and prior.typical == pytest.approx(80.0)


# -- where the next poll goes ---------------------------------------------------------------------------
def test_the_first_poll_of_an_unknown_service_comes_early_enough_for_one_far_faster_than_documented():
    first = plan_next_poll([], DOC, P, 0.0, COLD)
    assert first <= 0.25 * DOC.typical  # a service 0.2× the documented is caught by its first reading
    learned = LatencyPrior(60, 110, 180, "history", tuple(float(s) for s in range(60, 181, 5)))
    assert plan_next_poll([], learned, P, 0.0, EXACT) >= 40  # finished jobs say none ends before a minute


def test_after_two_exact_readings_the_poll_goes_just_after_the_end():
    obs = [reading(40, 120), reading(100, 120)]
    assert 118.0 <= plan_next_poll(obs, DOC, P, 100.0, EXACT) <= 122.0


def test_a_poll_keeps_the_shortest_and_longest_gap():
    assert plan_next_poll([Observation(1.0, 99)], DOC, P, 1.0, EXACT) >= 1.0 + P.interval
    slow = LatencyPrior(3000, 6000, 12000, "history", (5000.0, 6000.0, 7000.0))
    assert plan_next_poll([Observation(100.0, 1)], slow, P, 100.0, EXACT) <= 100.0 + P.max_interval
