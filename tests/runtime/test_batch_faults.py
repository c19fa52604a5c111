"""Every fault a single job survives, a batch request survives too: hostile result URLs, result pages that cycle,
an adding call without an answer, a batch that expired or was cancelled while its counters say pending, a failed
result that quotes the key. The simulator stands behind a transport that lies (``tests.hostile.BatchLiar``)."""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path

import pytest

import grok_nb
from grok_nb import Client
from grok_nb.simulator.batch import batch_book
from tests.conftest import FAST, SPEED, TEST_KEY
from tests.hostile import BatchLiar, HostileServer


def _client(sim, liar: BatchLiar, **options) -> Client:
    policy = dataclasses.replace(FAST, deadline=options.pop("deadline", 20.0))
    return Client(api_key=TEST_KEY, base_url=sim.url, policy=policy, rate_limit=SPEED, transport=liar, **options)


def _leaks(home: Path, key: str) -> list[str]:
    return [str(p) for p in home.rglob("*") if p.is_file() and key.encode() in p.read_bytes()]


@pytest.mark.slow
def test_a_batch_result_url_serving_half_an_mp4_is_not_done(sim):
    batch_book(sim.simulator).turnaround_s = 300.0
    liar = BatchLiar()
    with _client(sim, liar) as c:
        with c.batch(name="half") as b:
            half = b.generate("A fox [media:half]", duration=1)
            whole = b.generate("A boat", duration=1)
        b.wait(timeout=60)
    assert whole.status == "done" and whole.path is not None
    assert half.status == "download_failed" and half.path is None, (half.status, half.path)
    assert isinstance(half.error, grok_nb.DownloadError) and "MP4" in str(half.error)


@pytest.mark.slow
def test_a_batch_result_url_that_redirects_to_itself_ends_the_run(sim):
    batch_book(sim.simulator).turnaround_s = 300.0
    liar = BatchLiar()
    with _client(sim, liar) as c:
        with c.batch(name="loop") as b:
            looping = b.generate("A fox [media:loop]", duration=1)
        runs = b.wait(timeout=60)
    assert runs == [looping] and looping.status == "download_failed"
    assert isinstance(looping.error, grok_nb.DownloadError) and "redirect" in str(looping.error)


@pytest.mark.slow
def test_a_single_job_whose_video_redirects_to_itself_ends_in_a_grok_nb_error():
    server = HostileServer().start()
    try:
        server.media_mode = "loop"
        with Client(api_key="xai-hostile", base_url=server.url, policy=FAST, rate_limit=1000) as c:
            run = c.generate("looping", duration=1)
        assert run.status == "download_failed" and isinstance(run.error, grok_nb.DownloadError)
        assert "redirect" in str(run.error)
    finally:
        server.stop()


@pytest.mark.slow
def test_trickling_result_urls_do_not_hold_the_good_video_back(sim):
    batch_book(sim.simulator).turnaround_s = 300.0
    liar = BatchLiar()
    liar.trickle_every_s = 0.5
    with _client(sim, liar, deadline=30.0) as c:
        with c.batch(name="trickle") as b:
            slow = [b.generate(f"Trickle {i} [media:trickle]", duration=1) for i in range(4)]
            good = b.generate("A good video", duration=1)
        started = time.monotonic()
        b.wait(timeout=120)
        waited = time.monotonic() - started
    assert good.status == "done" and good.path is not None
    assert all(r.status == "download_failed" and "too slow" in str(r.error) for r in slow), [r.status for r in slow]
    assert waited < 28, waited  # a byte every half second: each trickle was given up, not held to the 30-s deadline


@pytest.mark.slow
def test_result_pages_whose_token_comes_back_end_the_pass(sim):
    batch_book(sim.simulator).turnaround_s = 600.0  # 2 s: results come in while the pages cycle
    liar = BatchLiar()
    liar.cycle_tokens = True
    with _client(sim, liar) as c:
        with c.batch(name="cycle") as b:
            runs = [b.generate(f"Cycle {i}", duration=1) for i in range(3)]
        b.wait(timeout=60)
    assert [r.status for r in runs] == ["done"] * 3
    assert liar.results_reads < 60, liar.results_reads  # each pass ends at a token seen before


@pytest.mark.slow
def test_an_unanswered_adding_call_and_a_failing_listing_leave_the_results_read(sim):
    batch_book(sim.simulator).turnaround_s = 300.0
    liar = BatchLiar()
    liar.drop_add_answer = True
    liar.listing_fails_until = time.monotonic() + 3.0
    with _client(sim, liar) as c:
        with c.batch(name="lost answer") as b:
            runs = [b.generate(f"Lost {i}", duration=1) for i in range(2)]
        b.wait(timeout=60)
        assert [r.status for r in runs] == ["done"] * 2, [(r.status, str(r.error)) for r in runs]
        assert c.spent_usd == pytest.approx(0.10)


@pytest.mark.slow
@pytest.mark.parametrize("how", ["expired", "cancelled"])
def test_a_batch_past_its_end_with_counters_pending_is_not_followed_forever(sim, how):
    batch_book(sim.simulator).turnaround_s = 1e7
    liar = BatchLiar()
    setattr(liar, how, True)
    with _client(sim, liar, budget_usd=1.0) as c:
        with c.batch(name=how) as b:
            runs = [b.generate(f"Never {i}", duration=1) for i in range(2)]
        b.wait(timeout=60)
        assert [r.status for r in runs] == [how] * 2
        assert all(how in str(r.error) and "billed" in str(r.error) for r in runs), [str(r.error) for r in runs]
        assert c.budget.reserved_usd == 0  # nothing is held for them any more
        rows = {r["status"] for r in c.store.rows()}
    assert rows == {how}


@pytest.mark.slow
def test_a_failed_batch_result_quoting_the_key_leaves_no_trace_of_it(sim, isolated_home):
    batch_book(sim.simulator).turnaround_s = 300.0
    liar = BatchLiar()
    liar.quote = TEST_KEY
    with _client(sim, liar) as c:
        with c.batch(name="quoted") as b:
            run = b.generate("A storm [sim:fail=internal_error]", duration=1)
        b.wait(timeout=60)
        assert run.status == "failed" and "gateway refused key" in str(run.error)
        assert TEST_KEY not in str(run.error) and TEST_KEY not in repr(run.error)
        assert TEST_KEY not in c.history().to_csv()
    assert not _leaks(isolated_home, TEST_KEY)


@pytest.mark.slow
@pytest.mark.parametrize("status", [401, 503])
def test_a_batch_that_cannot_be_read_stops_being_followed_and_stays_resumable(sim, status):
    batch_book(sim.simulator).turnaround_s = 1e7
    liar = BatchLiar()
    with _client(sim, liar, deadline=3.0) as c:
        with c.batch(name="unreadable") as b:
            run = b.generate("Never read", duration=1)
        liar.state_status = status  # every read of the batch's counters from now on
        started = time.monotonic()
        b.wait(timeout=60)
        assert time.monotonic() - started < 30  # a 401 at once; a 503 after the 3-s deadline of retries
        assert run.status == "pending" and run.stopped and "client.resume()" in str(run.error)
        assert c.store.get(run.run_id)["status"] == "pending"  # resumable


@pytest.mark.slow
def test_a_handle_on_a_batch_no_longer_followed_ends_with_its_stopped_run(sim):
    batch_book(sim.simulator).turnaround_s = 1e7
    liar = BatchLiar()
    liar.state_status = 401  # the batch is made, then none of its reads answers
    with _client(sim, liar, deadline=3.0) as c:
        (handle,) = c.start_batch([{"prompt": "Never read either", "duration": 1}])
        run = handle.result(timeout=60)  # before: the handle waited until the timeout (a final status never came)
        assert run.status == "pending" and run.stopped and "client.resume()" in str(run.error)
        assert c.store.get(run.run_id)["status"] == "pending"  # resumable


def test_a_handle_whose_batch_is_still_being_made_gives_up_at_its_timeout(sim):
    liar = BatchLiar()
    liar.create_delay_s = 3.0
    with _client(sim, liar) as c:
        (handle,) = c.start_batch([{"prompt": "Made slowly", "duration": 1}])
        started = time.monotonic()
        with pytest.raises(grok_nb.DeadlineExceeded, match=r"client\.resume\(\)"):
            handle.result(timeout=0.3)  # nothing to look at yet: it says so rather than waiting for the batch
        assert time.monotonic() - started < 2.5
