"""Every Status walked through every part of grok_nb that decides by it: each reads the one table (jobs/status.py)."""

from __future__ import annotations

import pytest

from grok_nb.api.pricing import CostEstimate
from grok_nb.errors import GrokError, JobError
from grok_nb.history import repair
from grok_nb.history.rows import row_of, run_of
from grok_nb.jobs.budget import Budget
from grok_nb.jobs.lifecycle import count_cost
from grok_nb.jobs.results import Run
from grok_nb.jobs.status import FINAL, RESUMABLE, STATUSES, TONES, Status, restored_error, status_of
from grok_nb.notebook import gridstate, looks
from grok_nb.notebook.timeline import classify
from tests.conftest import FAST, SPEED, TEST_KEY, count

ALL = list(Status)


def test_the_table_has_one_row_per_status_and_says_everything():
    assert set(STATUSES) == set(Status)
    for status, info in STATUSES.items():
        assert info.tone in TONES and info.word and len(info.icon) == 1 and info.reason, status
        assert not (info.resumable and not info.video_possible), status  # resume looks for a video that may exist
        assert status.final == info.final and status.resumable == info.resumable and status.billed == info.billed
    assert FINAL == {s for s in Status if s.final} and RESUMABLE == {s for s in Status if s.resumable}
    assert {status_of(s.value) for s in Status} == set(Status) and status_of("no such word") is Status.PENDING


@pytest.mark.parametrize("status", ALL)
def test_every_view_says_a_status_as_the_table_does(status):
    seen, info = looks.look(status), status.info
    assert (seen.word, seen.tone, seen.icon) == (info.word, info.tone, info.icon)
    assert looks.colour(status) == looks.TONE_HEX[info.tone]


@pytest.mark.parametrize("status", ALL)
def test_every_cost_total_counts_a_status_as_the_table_does(status):
    counted = count_cost(status, 0.5, None)
    assert counted.usd == (0.5 if status.billed else 0.0)
    run = Run("r", "generate", "m", "p", status=status, estimate=CostEstimate(0.5), cost_budget_usd=counted.usd)
    # The grid's "$ of est." adds what the budget counted for every finished run: moderated ones too.
    assert gridstate.spent_of([run]) == (counted.usd if status.final else 0.0)
    budget = Budget(1.0)
    (reservation,) = budget.reserve([0.5])
    budget.settle(reservation, counted.usd)
    assert budget.spent_usd == counted.usd and budget.remaining_usd == pytest.approx(1.0 - counted.usd)


@pytest.mark.parametrize("status", ALL)
def test_the_history_keeps_a_status_and_its_error_class(status):
    run = Run("r", "generate", "m", "p", status=status, request_id="req-1")
    row = {**row_of(run), "error_message": "what happened", "error_code": "some_code"}
    again = run_of(row)
    assert again.status is status and row["status"] == status.value
    error = restored_error(status, "what happened", "req-1", "some_code")
    if status.final and status.info.error is not None:
        assert isinstance(again.error, status.info.error if issubclass(status.info.error, JobError) else JobError)
        assert isinstance(error, GrokError) and "what happened" in str(error)
    else:
        assert again.error is None and error is None
    # The repair re-indexes a cached MP4 onto exactly the runs whose video may exist at the server.
    assert (status.value in repair._NOT_YET_DONE) == status.info.video_possible


@pytest.mark.parametrize("status", ALL)
def test_the_timeline_reads_a_polls_status_as_a_field(status):
    poll = {"method": "GET", "path": "/v1/videos/req-1", "summary": "anything at all", "job_status": status.value}
    assert classify(poll) == ("done" if status.final else "poll")
    assert classify({**poll, "job_status": None, "summary": "status=done"}) == "poll"  # text is never parsed


@pytest.mark.slow
def test_resume_and_get_decide_by_the_table(sim, isolated_home):
    """Each status stored in a history: resume() picks up exactly the resumable ones, get() hands back the settled
    ones without asking the server."""
    from grok_nb import Client

    with Client(api_key=TEST_KEY, base_url=sim.url, policy=FAST, rate_limit=SPEED) as client:
        for status in Status:
            client.store.insert(**{**row_of(Run(f"run-{status.value}", "generate", "m", "p", status=status,
                                                request_id=f"req-{status.value}")),
                                   "owner": "gone@nowhere:1", "error_message": "as it was"})
        settled = [s for s in Status if s.final and not s.resumable and s is not Status.DONE]
        before = count(sim, "GET", "/v1/videos/")
        for status in settled:
            assert client.get(f"req-{status.value}").status is status
        assert count(sim, "GET", "/v1/videos/") == before  # asked nothing of the server
        handles = client.resume()
        assert {h.run.run_id for h in handles} == {f"run-{s.value}" for s in Status if s.resumable}
        for handle in handles:
            handle.stop_waiting()
