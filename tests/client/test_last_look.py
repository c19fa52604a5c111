"""A service faster than documented, over loopback HTTP: no wait gives up on a job without looking at it once
more, and a new client starts from what the history's finished runs took."""

from __future__ import annotations

import time
import uuid
from datetime import datetime, timedelta, timezone

import pytest

from grok_nb import Client
from grok_nb.runtime.batch import SHARED_LOOK_S
from grok_nb.settings import redact_url
from tests.conftest import SPEED, TEST_KEY, until_batches_done_at_server


def _believing(sim, speed: float, **kwargs) -> Client:
    """A client that plans by the documented latencies of a service ``speed`` times faster than the real one,
    on the session simulator (which runs at SPEED: far faster than that)."""
    return Client(api_key=TEST_KEY, base_url=sim.url, simulator_speed=speed, rate_limit=SPEED, **kwargs)


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["edit", "generate"])
def test_a_deadline_shorter_than_the_documented_latency_returns_the_job_the_server_finished(client, sim, kind):
    # Documented: an edit takes ~80 s, a 1 s clip ~22 s; this server finishes either in well under a second.
    # Before: the first poll was planned at 0.8 of the fastest documented latency, past the 6 s deadline, and
    # the wait ended DeadlineExceeded without one answered poll.
    local_mp4 = client.generate("a local clip", duration=1).path
    fast = _believing(sim, 1.0, deadline=6.0)
    try:
        started = time.monotonic()
        run = fast.edit(local_mp4, "make it night") if kind == "edit" else fast.generate("quick", duration=1)
        waited = time.monotonic() - started
    finally:
        fast.close()
    assert run.ok and run.status == "done" and run.path is not None
    assert 1 <= run.polls <= 4 and waited < 6.0


@pytest.mark.slow
def test_result_with_a_timeout_looks_once_more_and_returns_a_job_done_at_the_server(sim):
    # Planned by a clock twenty times slower than the real service: its first poll would come minutes later.
    slow = _believing(sim, 0.05)
    try:
        handle = slow.generate("done early", duration=1, wait=False)
        while handle.request_id is None:
            time.sleep(0.01)
        job = sim.simulator.jobs[handle.request_id]
        while job.ready_at is None or job.ready_at > time.monotonic():  # done at the server, not yet polled
            time.sleep(0.02)
        assert handle.run.polls == 0
        run = handle.result(timeout=0.2)
    finally:
        slow.close()
    assert run.ok and run.status == "done" and run.polls == 1


def test_a_new_client_on_the_same_home_starts_from_the_latencies_its_history_holds(sim):
    first = Client(api_key=TEST_KEY, base_url=sim.url, rate_limit=SPEED)
    try:
        key = type(first._async._engine.priors).key("grok-imagine-video", "generate", "480p", 1)
        assert first._async._engine.priors.prior(key).source == "documented"  # an empty history: nothing learned
        start = datetime.now(timezone.utc) - timedelta(hours=1)
        for i, latency in enumerate((0.40, 0.50, 0.60, 0.45, 0.55)):  # this server's 1 s 480p clips
            first.store.insert(run_id=uuid.uuid4().hex, backend="simulator", base_url=redact_url(sim.url),
                               kind="generate", model="grok-imagine-video", duration=1.0, resolution="480p",
                               status="done", latency_s=latency, created_at=(start + timedelta(seconds=i)).isoformat())
        first.store.insert(run_id=uuid.uuid4().hex, backend="xai", base_url="https://api.x.ai", kind="generate",
                           model="grok-imagine-video", duration=1.0, resolution="480p", status="done", latency_s=90.0)
    finally:
        first.close()
    second = Client(api_key=TEST_KEY, base_url=sim.url, rate_limit=SPEED)  # a new kernel, the same home
    try:
        prior = second._async._engine.priors.prior(key)
    finally:
        second.close()
    assert prior.source == "history" and prior.typical == pytest.approx(0.5, rel=0.05)  # another server's run left out


def test_a_batch_wait_with_a_timeout_looks_once_more_and_returns_runs_done_at_the_server(sim):
    from grok_nb.simulator.batch import batch_book

    book = batch_book(sim.simulator)
    before, book.turnaround_s = book.turnaround_s, 300.0  # 1 s at the session simulator's speed
    # Planned by a clock a hundred times slower: after its first read the follower would sleep 500 s or more.
    slow = _believing(sim, 0.01)
    try:
        with slow.batch(name="looked at once more") as b:
            run = b.generate("a batch done early", duration=1)
        while sim.simulator.requests and not any(p.startswith("/v1/batches/") and m == "GET"
                                                 for m, p, _ in list(sim.simulator.requests)):
            time.sleep(0.02)  # the follower's first read (still processing), then its long sleep
        until_batches_done_at_server(sim, b.batch_id)  # done at the server now, not yet read again
        assert run.status == "pending"
        runs = b.wait(timeout=0.5)
    finally:
        book.turnaround_s = before
        slow.close()
    assert runs == [run] and run.status == "done" and run.path is not None


def test_a_batch_wait_that_times_out_after_its_last_look_says_how_to_go_on(sim):
    from grok_nb.simulator.batch import batch_book

    book = batch_book(sim.simulator)
    before, book.turnaround_s = book.turnaround_s, 1e7  # nothing finishes during this test
    slow = _believing(sim, 0.01)
    try:
        with slow.batch(name="still running") as b:
            run = b.generate("a batch still running", duration=1)
        reads = lambda: sum(m == "GET" and p.startswith("/v1/batches/") for m, p, _ in list(sim.simulator.requests))  # noqa: E731
        while reads() == 0:
            time.sleep(0.02)
        seen = reads()
        with pytest.raises(TimeoutError, match="resume"):
            b.wait(timeout=0.3)
        assert reads() > seen  # it looked once more before giving up
    finally:
        book.turnaround_s = before
        slow.close()
    assert run.status == "pending" and run.batch_id


def test_a_batch_runs_handle_looks_once_more_and_one_look_serves_the_handles_after_it(sim):
    from grok_nb.simulator.batch import batch_book

    book = batch_book(sim.simulator)
    before, book.turnaround_s = book.turnaround_s, 300.0  # 1 s at the session simulator's speed
    slow = _believing(sim, 0.01)  # its batch follower would pause 500 s or more after its first read
    reads = lambda: sum(m == "GET" and p.startswith("/v1/batches/") for m, p, _ in list(sim.simulator.requests))  # noqa: E731
    try:
        known = set(book.batches)
        handles = slow.start_batch([{"prompt": f"batch take {i}", "duration": 1} for i in range(3)])
        while reads() == 0:
            time.sleep(0.02)  # the follower's first read (still processing), then its long pause
        first_read = time.monotonic()
        until_batches_done_at_server(sim, *(set(book.batches) - known))  # done at the server now, not yet read again
        time.sleep(max(0.0, first_read + SHARED_LOOK_S + 0.2 - time.monotonic()))  # that read is no longer fresh
        seen = reads()
        runs = [h.result(timeout=0.3) for h in handles]  # as grid.wait(timeout) asks each in turn
    finally:
        book.turnaround_s = before
        slow.close()
    assert [r.status for r in runs] == ["done"] * 3 and all(r.path for r in runs)
    # One more pass of the batch (its state, its results) served all three handles, not one pass each.
    assert reads() - seen <= 4, reads() - seen
