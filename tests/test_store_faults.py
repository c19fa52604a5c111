"""Store and process faults (issue 14): a damaged or full store, a dead rate-limit server, kill -9 mid-submit.

Each test reproduces the fault first (an injected write error, a tiny filesystem, a killed child),
then checks what grok_nb does about it: never hang, never lose a paid request id.
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3

import pytest

from grok_nb import AsyncClient
from grok_nb.runtime.ratelimit import RateLimiter, make_limiter
from grok_nb.runtime.scheduler import POLL, SUBMIT, Scheduler
from tests.conftest import FAST, SPEED, TEST_KEY


# -- 6: the rate limiter's store fails ---------------------------------------------------------------
class BrokenStoreLimiter:
    """A limiter whose store fails on every slot, as a damaged file or a stopped Redis does."""

    rate = 50.0

    def __init__(self, exc: Exception):
        self.exc, self.calls = exc, 0

    async def acquire(self) -> None:
        self.calls += 1
        raise self.exc

    def pause(self, seconds: float) -> None:
        raise self.exc

    def close(self) -> None:
        raise self.exc


@pytest.mark.parametrize("exc", [sqlite3.DatabaseError("database disk image is malformed"),
                                 sqlite3.OperationalError("database or disk is full"),
                                 ConnectionError("Error 111 connecting to 127.0.0.1:6379. Connection refused.")])
def test_the_scheduler_survives_its_limiter_store_failing(exc, caplog):
    broken = BrokenStoreLimiter(exc)
    scheduler = Scheduler(broken)

    async def run():
        await asyncio.wait_for(asyncio.gather(*(scheduler.turn(k) for k in (SUBMIT, POLL, POLL, SUBMIT))), 10)
        await asyncio.wait_for(scheduler.turn(POLL), 10)  # and it goes on granting
        await scheduler.aclose()

    with caplog.at_level(logging.WARNING, logger="grok_nb"):
        asyncio.run(run())
    assert isinstance(scheduler.limiter, RateLimiter) and scheduler.limiter.rate == broken.rate
    warned = [r.getMessage() for r in caplog.records if "request budget" in r.getMessage()]
    assert len(warned) == 1 and str(exc) in warned[0] and "this process alone" in warned[0]
    assert broken.calls == 1
    scheduler.limiter.pause(0.01)  # the fallback takes pauses too


def test_a_scheduler_that_breaks_ends_its_waiting_requests_with_a_clear_error():
    scheduler = Scheduler(RateLimiter(100.0))

    def broken_pick(now: float) -> None:
        raise RuntimeError("a bug in picking")

    scheduler._pick = broken_pick  # type: ignore[method-assign]

    async def run():
        with pytest.raises(RuntimeError, match="scheduler stopped") as info:
            await asyncio.wait_for(scheduler.turn(POLL), 10)
        return info.value

    error = asyncio.run(run())
    assert "a bug in picking" in str(error)


def test_jobs_finish_when_the_shared_budget_file_fails_mid_run(sim, tmp_path, caplog, monkeypatch):
    monkeypatch.delenv("GROK_NB_SHARED_URL")
    limiter = make_limiter(TEST_KEY, SPEED, tmp_path)  # the default: the SQLite budget file under the home

    def full_disk(item):
        raise sqlite3.OperationalError("database or disk is full")

    async def run():
        client = AsyncClient(api_key=TEST_KEY, base_url=sim.url, policy=FAST, rate_limit=SPEED, limiter=limiter,
                             home=tmp_path)
        try:
            first = await client.generate("a lighthouse", duration=1, resolution="480p")
            limiter._bucket.put = full_disk  # the disk fills up under the budget file
            rest = await asyncio.wait_for(asyncio.gather(
                *(client.generate(f"a lighthouse {i}", duration=1, resolution="480p") for i in range(3))), 60)
            return [first, *rest]
        finally:
            await client.aclose()

    with caplog.at_level(logging.WARNING, logger="grok_nb"):
        runs = asyncio.run(run())
    assert [r.status for r in runs] == ["done"] * 4
    assert sum("request budget" in r.getMessage() for r in caplog.records) == 1
