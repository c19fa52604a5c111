"""Issue 14, item 2: a server-reported cost is not trusted blindly. A negative, missing, non-numeric or absurd
figure is recorded as reported; the budget counts the estimate instead, and the history says which it used."""

from __future__ import annotations

import math

import pytest

from grok_nb import BudgetExceeded
from grok_nb.api.pricing import TICKS_PER_USD
from grok_nb.api.responses import parse_job_status
from grok_nb.jobs.budget import Budget
from grok_nb.jobs.lifecycle import count_cost
from grok_nb.jobs.status import Status
from tests.conftest import FAST, SPEED, TEST_KEY
from tests.hostile import PollRewriter

DROP = object()  # remove the usage figure from the answer


class CostRewriter(PollRewriter):
    """Forwards to the simulator over loopback and replaces ``usage.cost_in_usd_ticks`` in every answer that has it."""

    def __init__(self, ticks: object) -> None:
        super().__init__()
        self.ticks = ticks

    def rewrite(self, body: dict) -> dict | None:
        if "usage" not in body:
            return None
        if self.ticks is DROP:
            del body["usage"]
        else:
            body["usage"] = {"cost_in_usd_ticks": self.ticks}
        return body


# -- pure ----------------------------------------------------------------------------------------
def test_the_budget_counts_the_larger_of_the_estimate_and_a_sane_figure():
    assert count_cost(Status.DONE, 0.5, 0.42) == count_cost(Status.DONE, 0.5, 0.42)
    cheaper = count_cost(Status.DONE, 0.5, 0.42)
    assert cheaper.usd == 0.5 and cheaper.basis == "estimate (larger than the reported $0.420)"
    assert count_cost(Status.DONE, 0.5, 0.0).usd == 0.5  # a free job is possible, but the budget keeps its guard
    assert count_cost(Status.DONE, 0.5, 0.6).usd == 0.6 and count_cost(Status.DONE, 0.5, 0.6).basis == "actual"
    assert count_cost(Status.FAILED, 0.5, 0.1).usd == 0.1  # a failed job counts what it reports
    assert count_cost(Status.DONE, 0.5, 4.99).usd == 4.99  # dearer than estimated, within 10x
    assert count_cost(Status.FAILED, 0.5, None).usd == 0.0  # a failed job without a figure: unbilled


@pytest.mark.parametrize("status", [Status.DONE, Status.MODERATED, Status.FAILED, Status.EXPIRED, Status.UNCERTAIN])
@pytest.mark.parametrize("actual, reported, why", [
    (-5.0, -5 * TICKS_PER_USD, "negative"),
    (None, "a lot", "not a number"),
    (None, [1, 2], "not a number"),
    (5.01, 5.01 * TICKS_PER_USD, "over 10x"),
    (1e300, 1e309, "over 10x"),
    (math.nan, None, "not a finite number"),
])
def test_figures_that_cannot_be_right_count_the_estimate(status, actual, reported, why):
    counted = count_cost(status, 0.5, actual, reported)
    assert counted.usd == 0.5 and counted.basis.startswith("estimate (") and why in counted.basis
    assert count_cost(status, 0.5, actual, reported).usd == 0.5


def test_missing_figure_counts_the_estimate_for_billed_outcomes():
    assert count_cost(Status.DONE, 0.5, None) == count_cost(Status.MODERATED, 0.5, None)
    assert count_cost(Status.DONE, 0.5, None).usd == 0.5 and count_cost(Status.DONE, 0.5, None).basis == "estimate"


def test_parse_keeps_the_figure_as_sent():
    status = parse_job_status({"status": "done", "video": {"url": "http://x/v.mp4"},
                               "usage": {"cost_in_usd_ticks": "free!"}})
    assert status.cost_usd is None and status.cost_reported == "free!"
    status = parse_job_status({"status": "done", "video": {"url": "http://x/v.mp4"},
                               "usage": {"cost_in_usd_ticks": -5 * TICKS_PER_USD}})
    assert status.cost_usd == -5.0


def test_ledger_never_refills_from_negative_figures():
    """The reported fault, in the ledger: $1 budget, $0.50 jobs, -$5 reported per job."""
    budget = Budget(1.0)
    sent = 0
    for _ in range(4):
        try:
            reservation = budget.reserve([0.5])[0]
        except BudgetExceeded:
            continue
        sent += 1
        budget.settle(reservation, count_cost(Status.DONE, 0.5, -5.0, -5 * TICKS_PER_USD).usd)
    assert sent == 2 and budget.spent_usd == pytest.approx(1.0)


@pytest.mark.parametrize("cost", [-5.0, math.nan, math.inf, -math.inf])
def test_the_ledger_itself_never_takes_an_impossible_cost(cost):
    budget = Budget(1.0)
    reservation = budget.reserve([0.5])[0]
    budget.settle(reservation, cost)
    assert budget.spent_usd == pytest.approx(0.5) and budget.remaining_usd == pytest.approx(0.5)


# -- end to end over loopback --------------------------------------------------------------------
@pytest.mark.parametrize("ticks, kept, why", [
    (-5 * TICKS_PER_USD, -5.0, "negative"),
    (DROP, None, None),
    ("twelve dollars", None, "not a number"),
    (1000 * TICKS_PER_USD, 1000.0, "over 10x"),
])
@pytest.mark.slow
def test_hostile_cost_cannot_pass_the_budget(sim, ticks, kept, why):
    """The reported fault ($1.00 budget, $0.50 jobs) at a fifth of the size: $0.20 budget, $0.10 jobs (2 s at
    480p), so that renders stay short. Two jobs go through whatever the server reports."""
    from grok_nb import Client

    with Client(api_key=TEST_KEY, base_url=sim.url, policy=FAST, rate_limit=SPEED, budget_usd=0.2,
                transport=CostRewriter(ticks)) as client:
        runs, refused = [], 0
        for i in range(4):
            try:
                runs.append(client.generate(f"A lighthouse {i}", duration=2, resolution="480p"))
            except BudgetExceeded:
                refused += 1
        assert [r.status for r in runs] == ["done", "done"] and refused == 2
        assert client.spent_usd == pytest.approx(0.2) and client.remaining_usd == pytest.approx(0.0)
        run = runs[0]
        assert run.cost_actual_usd == kept  # recorded as reported
        assert run.cost_usd == pytest.approx(0.1) and run.cost_basis == "estimate"
        assert run.cost_budget_usd == pytest.approx(0.1)
        rows = client.store.rows()
        assert [r["cost_budget_usd"] for r in rows] == pytest.approx([0.1, 0.1])
        for row in rows:
            assert row["cost_actual_usd"] == kept
            assert row["cost_budget_basis"].startswith("estimate") and (why is None or why in row["cost_budget_basis"])
        df = client.history()
        assert df["cost_budget_usd"].tolist() == pytest.approx([0.1, 0.1])


def test_sane_actual_is_what_the_budget_counts_when_above_the_estimate(sim):
    from grok_nb import Client

    with Client(api_key=TEST_KEY, base_url=sim.url, policy=FAST, rate_limit=SPEED, budget_usd=1.0,
                transport=CostRewriter(round(0.12 * TICKS_PER_USD))) as client:
        run = client.generate("A lighthouse", duration=2, resolution="480p")
        assert run.cost_basis == "actual" and run.cost_usd == pytest.approx(0.12)
        assert client.spent_usd == pytest.approx(0.12)
        row = client.store.get(run.run_id)
        assert row["cost_budget_basis"] == "actual" and row["cost_budget_usd"] == pytest.approx(0.12)


@pytest.mark.slow
def test_a_sane_actual_below_the_estimate_is_recorded_and_the_budget_counts_the_estimate(sim):
    from grok_nb import Client

    with Client(api_key=TEST_KEY, base_url=sim.url, policy=FAST, rate_limit=SPEED, budget_usd=1.0,
                transport=CostRewriter(round(0.08 * TICKS_PER_USD))) as client:
        run = client.generate("A lighthouse", duration=2, resolution="480p")
        assert run.cost_basis == "actual" and run.cost_usd == pytest.approx(0.08)  # what the server billed
        assert client.spent_usd == pytest.approx(0.1)  # the budget: the larger of estimate and actual
        row = client.store.get(run.run_id)
        assert row["cost_actual_usd"] == pytest.approx(0.08)
        assert row["cost_budget_basis"].startswith("estimate") and row["cost_budget_usd"] == pytest.approx(0.1)
