"""Takes: each request made N times (the service has no seed), counted in the estimate and the budget before
anything is sent, numbered in the history."""

from __future__ import annotations

import pytest

import grok_nb
from grok_nb import Client
from grok_nb.simulator.batch import batch_book
from tests.conftest import FAST, SPEED, TEST_KEY, count


@pytest.mark.parametrize("takes", [0, 21, True, 2.5, "3", None])
def test_takes_are_a_whole_number_from_one_to_twenty(client, sim, takes):
    with pytest.raises(grok_nb.ValidationError) as err:
        client.start_many([{"prompt": "a fox", "duration": 1}], takes=takes)
    assert err.value.field == "takes"
    with pytest.raises(grok_nb.ValidationError):
        client.batch(name="x", takes=takes)
    assert count(sim, "POST", "/v1/") == 0


def test_the_budget_counts_every_take_before_anything_is_sent(sim):
    with Client(api_key=TEST_KEY, base_url=sim.url, policy=FAST, rate_limit=SPEED, budget_usd=0.25) as client:
        with pytest.raises(grok_nb.BudgetExceeded):  # 2 prompts x 3 takes x $0.05 = $0.30 > $0.25
            client.start_many([{"prompt": "a fox", "duration": 1}, {"prompt": "a boat", "duration": 1}], takes=3)
        b = client.batch(name="three", takes=3)
        b.generate("a fox", duration=1)
        b.generate("a boat", duration=1)
        assert len(b.runs) == 6 and b.estimate_usd == pytest.approx(0.30)
        with pytest.raises(grok_nb.BudgetExceeded):
            b.submit()
        assert count(sim, "POST", "/v1/") == 0 and client.remaining_usd == pytest.approx(0.25)


@pytest.mark.slow
def test_takes_are_numbered_and_kept_in_the_history(client, sim):
    handles = client.start_many([{"prompt": "a fox", "duration": 1}, {"prompt": "a boat", "duration": 1}], takes=2)
    runs = [h.result(timeout=60) for h in handles]
    assert [(r.prompt, r.take) for r in runs] == [("a fox", 1), ("a fox", 2), ("a boat", 1), ("a boat", 2)]
    assert all(r.ok for r in runs) and len({r.request_id for r in runs}) == 4
    df = client.history()
    assert sorted(df["take"].tolist()) == [1, 1, 2, 2] and str(df["take"].dtype) == "Int64"
    batch_book(sim.simulator).turnaround_s = 300.0
    with client.batch(name="twice", takes=2) as b:
        first = b.generate("a lake", duration=1)
    assert first.take == 1 and [r.take for r in b.runs] == [1, 2]
    assert [r.status for r in b.wait(timeout=60)] == ["done", "done"]


@pytest.mark.slow
def test_closing_a_client_sends_none_of_the_submits_still_waiting_for_their_turn(sim):
    import time

    client = Client(api_key=TEST_KEY, base_url=sim.url, policy=FAST, rate_limit=4.0)  # one submit per 0.25 s
    client.start_many([{"prompt": f"queued {i}", "duration": 1} for i in range(40)])
    time.sleep(0.6)
    started = time.monotonic()
    client.close()
    assert time.monotonic() - started < 10  # it does not send the rest first
    rows = client.store.rows()
    sent = [r for r in rows if r["request_id"]]
    assert count(sim, "POST", "/v1/videos/generations") == len(sent) < 40
    unsent = [r for r in rows if not r["request_id"]]
    assert {r["status"] for r in unsent} == {"rejected"} and all("nothing was sent" in r["error_message"]
                                                                   for r in unsent)
