"""The one money ledger keeps what was spent per kind (video jobs, judge calls) under one limit."""

from __future__ import annotations

import threading

import pytest

from grok_nb.errors import BudgetExceeded, ValidationError
from grok_nb.jobs.budget import KINDS, Budget


def test_spent_is_split_by_kind_and_adds_up_to_the_total():
    budget = Budget(1.0)
    (video,) = budget.reserve([0.30])
    (judge,) = budget.reserve([0.01], kind="judge")
    assert video.kind == "video" and judge.kind == "judge"
    assert budget.spent_by_kind == {"video": 0.0, "judge": 0.0}
    budget.settle(video, 0.25)
    budget.settle(judge, 0.004)
    assert budget.spent_by_kind == {"video": 0.25, "judge": 0.004}
    assert budget.spent_usd == pytest.approx(sum(budget.spent_by_kind.values()))
    assert set(budget.spent_by_kind) == set(KINDS)


def test_one_limit_for_every_kind():
    budget = Budget(0.10)
    budget.reserve([0.09])
    with pytest.raises(BudgetExceeded):
        budget.reserve([0.02], kind="judge")  # the judge's money counts against the same limit
    assert budget.reserved_usd == pytest.approx(0.09)


def test_a_negative_or_absurd_cost_never_loosens_a_judge_reservation():
    budget = Budget(1.0)
    for bad in (-5.0, float("nan"), float("inf")):
        (held,) = budget.reserve([0.01], kind="judge")
        budget.settle(held, bad)  # the estimate counts instead
    assert budget.spent_by_kind["judge"] == pytest.approx(0.03)
    assert budget.remaining_usd == pytest.approx(0.97)


@pytest.mark.parametrize("kind", ["image", "", None, "VIDEO"])
def test_an_unknown_kind_is_refused_and_nothing_is_held(kind):
    budget = Budget(1.0)
    with pytest.raises(ValidationError, match="kind"):
        budget.reserve([0.1], kind=kind)  # type: ignore[arg-type]
    assert budget.reserved_usd == 0


@pytest.mark.parametrize("amount", [-0.5, float("nan"), float("inf"), "0.1", True])
def test_an_estimate_that_would_make_room_is_refused(amount):
    budget = Budget(1.0)
    with pytest.raises(ValidationError, match="amount"):
        budget.reserve([0.1, amount], kind="judge")  # type: ignore[list-item]
    assert budget.reserved_usd == 0 and budget.remaining_usd == 1.0


def test_kinds_hold_under_many_threads():
    budget = Budget(1.0)
    granted: list[tuple[str, float]] = []

    def grab(kind: str) -> None:
        for _ in range(40):
            try:
                for r in budget.reserve([0.03], kind=kind):
                    granted.append((kind, r.usd))
                    budget.settle(r, 0.03)
            except BudgetExceeded:
                pass

    threads = [threading.Thread(target=grab, args=(kind,)) for kind in KINDS * 4]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert budget.spent_usd <= 1.0 + 1e-9 and len(granted) == 33
    by_kind = budget.spent_by_kind
    assert by_kind["video"] + by_kind["judge"] == pytest.approx(budget.spent_usd)
    assert by_kind["video"] == pytest.approx(0.03 * sum(1 for k, _ in granted if k == "video"))


def test_estimates_finer_than_a_millionth_leave_nothing_held_once_settled():
    # Judge estimates run to 1e-8 dollars; what is held must be exactly what the reservations give back.
    budget = Budget(1.0)
    held = budget.reserve([0.00877875, 0.00877875, 0.00439413], kind="judge")
    held += budget.reserve([0.00877875] * 5, kind="judge")
    for reservation in held:
        budget.release(reservation)
    assert budget.reserved_usd == 0 and budget.remaining_usd == 1.0 and budget.spent_usd == 0


def test_every_snapshot_carries_what_judging_cost_so_views_show_it_apart():
    budget = Budget(1.0)
    seen = []
    budget.watch(seen.append)
    (video,) = budget.reserve([0.3])
    (judge,) = budget.reserve([0.01], kind="judge")
    budget.settle(video, 0.25)
    budget.settle(judge, 0.004)
    last = seen[-1]
    assert (last.spent_usd, last.judge_usd, last.reserved_usd) == (0.254, 0.004, 0.0)
    assert budget.snapshot() == last
