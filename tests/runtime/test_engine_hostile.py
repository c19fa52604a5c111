"""The engine against a hostile server over real loopback: absurd Retry-After, trickled answers, unknown ids,
answers that cannot be read, cancellation nobody asked for."""

from __future__ import annotations

import asyncio
import dataclasses
import time

import pytest

import grok_nb
from grok_nb import AsyncClient, Client
from tests.conftest import FAST
from tests.hostile import HostileServer

KEY = "xai-hostile-test-key"


@pytest.fixture(scope="module")
def hostile_server():
    server = HostileServer().start()
    yield server
    server.stop()


@pytest.fixture
def hostile(hostile_server):
    """The module's hostile server, honest by default; what a test changes is put back."""
    server = hostile_server
    server.mode, server.retry_after, server.bad_polls, server.trickle_every_s = "done", "3600", 1, 1.0
    server.poll_delay_s.clear()
    server.seen.clear()
    return server


def _client(server: HostileServer, **policy: float) -> Client:
    return Client(api_key=KEY, base_url=server.url, policy=dataclasses.replace(FAST, **policy), rate_limit=1000)


# -- 1. Retry-After that asks for too much, or for nonsense ------------------------------------------
@pytest.mark.parametrize("header", ["3600", "inf", "1e400", "-5", "nan", "soon"])
@pytest.mark.slow
def test_an_absurd_retry_after_on_a_poll_is_capped_and_the_job_finishes(hostile, header):
    hostile.mode, hostile.retry_after = "retry-after", header
    with _client(hostile, deadline=20.0, max_retry_after=0.3) as c:
        run = c.generate("patient", duration=1)
        assert run.ok and run.request_id  # not stuck for an hour: the cap (or the backoff) was obeyed
        assert c.limiter.reserve() <= 0.3 + 1e-6  # the key's shared pause never held more than the cap


@pytest.mark.slow
def test_a_retry_after_past_the_deadline_ends_at_the_deadline_and_no_pause_outlives_it(hostile):
    hostile.mode, hostile.retry_after, hostile.bad_polls = "retry-after", "3600", -1
    with _client(hostile, deadline=1.5) as c:  # the default cap (60 s) is longer than the deadline
        started = time.monotonic()
        with pytest.raises(grok_nb.DeadlineExceeded) as info:
            c.generate("held back", duration=1)
        waited = time.monotonic() - started
        assert waited < 1.5 + 5.0 and info.value.request_id  # ended near the deadline, not an hour later
        assert c.limiter.reserve() <= 1.5  # nothing stored past the caller's deadline
        assert c.store.find(info.value.request_id)["status"] == "pending"  # resumable
        assert c.policy.max_retry_after == grok_nb.settings.MAX_RETRY_AFTER_S == 60.0


def test_a_good_answer_lifts_the_pause_a_retry_after_left():
    from grok_nb.runtime.ratelimit import RateLimiter

    clock = [0.0]
    limiter = RateLimiter(10.0, clock=lambda: clock[0])
    limiter.pause(60.0)
    limiter.lift()
    assert limiter.reserve() == 0.0 and limiter.reserve() == pytest.approx(0.1)  # the pause gone, spacing kept
    limiter.pause(60.0)
    assert limiter.reserve() == pytest.approx(60.0)


# -- 3. an answer that trickles in ---------------------------------------------------------------------
@pytest.mark.slow
def test_a_trickling_poll_answer_is_cut_at_the_deadline_with_the_request_id(hostile):
    hostile.mode, hostile.trickle_every_s = "trickle", 0.5  # headers at once, then a byte every half second
    with _client(hostile, deadline=2.0) as c:
        started = time.monotonic()
        with pytest.raises(grok_nb.DeadlineExceeded) as info:
            c.generate("trickled", duration=1)
        waited = time.monotonic() - started
        rid = info.value.request_id
    assert rid and rid in str(info.value)
    assert waited < 2.0 + 5.0  # the whole answer would take ~500 s


# -- 4. attaching to an id the server does not know ------------------------------------------------------
def test_get_of_an_unknown_id_polls_at_once_raises_not_found_and_stores_nothing(hostile):
    hostile.mode, hostile.bad_polls = "unknown", -1
    with _client(hostile, deadline=60.0, max_interval=120.0) as c:
        for _ in range(2):  # the second get() asks the server again: no failed row was kept
            started = time.monotonic()
            with pytest.raises(grok_nb.NotFoundError) as info:
                c.get("r-nobody-knows")
            assert time.monotonic() - started < 10  # at once, not ~28 s later
            assert "r-nobody-knows" in str(info.value)
            assert c.store.find("r-nobody-knows") is None and c.store.rows() == []
    assert hostile.polls("r-nobody-knows") == 2


def test_get_of_a_known_id_elsewhere_polls_at_once(hostile):
    hostile.mode = "done"
    with _client(hostile, deadline=60.0, max_interval=120.0) as c:  # the planner may wait as long as it likes
        started = time.monotonic()
        run = c.get("r-made-elsewhere")
        # Planned from the submit, the first poll of an unknown kind of job would come ~28 s after it.
        assert time.monotonic() - started < 10
        assert run.ok and c.store.find("r-made-elsewhere")["status"] == "done"
        assert [e["status"] for e in c.store.exchanges(run.run_id)][:1] == [200]  # its first poll, kept


# -- 5. answers that cannot be read --------------------------------------------------------------------
def test_unreadable_poll_answers_are_reported_after_a_few_tries_and_the_row_stays_resumable(hostile):
    hostile.mode, hostile.bad_polls = "garbage", -1
    with _client(hostile, deadline=30.0) as c:
        with pytest.raises(grok_nb.APIError) as info:
            c.generate("unreadable", duration=1)
        rid = info.value.request_id
        assert rid and rid in str(info.value) and "could not be read" in str(info.value)
        assert "502 from a proxy" in str(info.value)  # what the server said instead
        row = c.store.find(rid)
        assert row["status"] == "pending" and "could not be read" in row["error_message"]
        assert hostile.polls(rid) == c.policy.unreadable_retries + 1
        hostile.bad_polls = 0  # the server mends: the job is resumed
        (handle,) = c.resume()
        assert handle.result(timeout=30).ok


# -- 10. a CancelledError nobody asked for -------------------------------------------------------------
@pytest.mark.anyio
async def test_closing_the_client_under_a_waiting_call_is_an_error_not_a_bare_cancel(hostile):
    hostile.mode, hostile.bad_polls = "pending", -1
    c = AsyncClient(api_key=KEY, base_url=hostile.url, policy=dataclasses.replace(FAST, deadline=30.0),
                    rate_limit=1000)
    task = asyncio.create_task(c.generate("closed under me", duration=1))
    for _ in range(200):
        if hostile.polls():
            break
        await asyncio.sleep(0.02)
    await c.aclose()
    with pytest.raises(grok_nb.GrokError, match="closed") as info:
        await asyncio.wait_for(task, 10)
    assert not isinstance(info.value, asyncio.CancelledError) and info.value.request_id
