"""The shared request budget: one rate per key across processes (SQLite, Redis, PostgreSQL), a shared pause, peers."""

from __future__ import annotations

import asyncio
import json
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from grok_nb.history.storage import SharedServiceError
from grok_nb.runtime.ratelimit import RateLimiter, SharedLimiter, make_limiter, pyrate_rate
from grok_nb.settings import key_fingerprint, redact_url
from grok_nb.simulator import SimulatorConfig, SimulatorServer
from tests.conftest import RENDER_SCALE, SPEED, TEST_KEY
from tests.servers import free_port, postgres_server, postgres_url, redis_server, redis_url  # noqa: F401

WORKER = Path(__file__).resolve().parents[1] / "limit_worker.py"


@pytest.fixture(params=["sqlite", "redis", "postgresql"])
def shared(request):
    """Where the budget lives: 'shared' (the SQLite file under the home), or a Redis / PostgreSQL URL."""
    if request.param == "sqlite":
        return "shared"
    return request.getfixturevalue("redis_url" if request.param == "redis" else "postgres_url")


@pytest.fixture(autouse=True)
def shared_by_default(monkeypatch):
    """This module is about the shared budget: the default that conftest switches off elsewhere."""
    monkeypatch.delenv("GROK_NB_SHARED_URL", raising=False)


def limiter_for(shared: str, home: Path, rate: float = 50.0, key: str = TEST_KEY) -> SharedLimiter:
    return make_limiter(key, rate, home, None if shared == "shared" else shared)


def test_without_a_key_or_with_local_the_limiter_stays_in_the_process(tmp_path, monkeypatch):
    assert isinstance(make_limiter(None, 2.0, tmp_path), RateLimiter)
    assert isinstance(make_limiter(TEST_KEY, 2.0, tmp_path, "local"), RateLimiter)
    monkeypatch.setenv("GROK_NB_SHARED_URL", "local")
    assert isinstance(make_limiter(TEST_KEY, 2.0, tmp_path), RateLimiter)
    assert RateLimiter(2.0).peers() == [] and RateLimiter(2.0).waiting_for_others is False


def test_the_sqlite_budget_is_named_by_a_hash_never_the_key(tmp_path):
    limiter = limiter_for("shared", tmp_path)
    asyncio.run(limiter.acquire())
    limiter.pause(0.01)
    limiter.close()
    files = list((tmp_path / "ratelimit").iterdir())
    assert files and all(key_fingerprint(TEST_KEY) in f.name for f in files)
    for f in files:
        assert TEST_KEY.encode() not in f.read_bytes() and b"SECRET" not in f.read_bytes()
    assert TEST_KEY not in repr(limiter)


def test_rates_are_rounded_never_faster():
    assert pyrate_rate(1.0).interval == 1000 and pyrate_rate(30.0).interval == 34 and pyrate_rate(3000).interval == 1


@pytest.mark.slow
def test_acquire_spaces_requests_and_leaves_the_loop_free(tmp_path, shared):
    limiter = limiter_for(shared, tmp_path, rate=40.0)

    async def run():
        stamps: list[float] = []
        ticks = 0

        async def one():
            await limiter.acquire()
            stamps.append(time.monotonic())

        async def tick():
            nonlocal ticks
            while len(stamps) < 20:
                await asyncio.sleep(0.005)
                ticks += 1

        t0 = time.monotonic()
        await asyncio.gather(tick(), *(one() for _ in range(20)))
        return stamps, ticks, time.monotonic() - t0

    stamps, ticks, wall = asyncio.run(run())
    limiter.close()
    assert wall >= 19 / 40  # 20 requests at 40/s: the first is free, then one per 25 ms
    # A loop blocked for each slot would tick about once per request; a free one ticks many times.
    assert ticks >= 2 * 20


@pytest.mark.slow
def test_a_pause_holds_back_every_limiter_on_the_key(tmp_path, shared):
    one, two = limiter_for(shared, tmp_path), limiter_for(shared, tmp_path)

    async def run():
        await two.acquire()
        paused_at = time.monotonic()
        one.pause(1.0)  # the other process heard a 429 with Retry-After: 1
        one._side.submit(lambda: None).result()  # the pause has reached the store (written by a side thread)
        t0 = time.monotonic()
        await two.acquire()
        return time.monotonic() - t0, 1.0 - (t0 - paused_at)

    waited, left = asyncio.run(run())
    assert left > 0.3 and waited >= left - 0.05
    one.close(), two.close()


@pytest.mark.slow
def test_a_hold_nobody_asked_for_is_this_limiters_alone_and_a_good_answer_ends_it(tmp_path, shared):
    # A 429 without Retry-After: this process waits out its own backoff; the others on the key are not held.
    one, two = limiter_for(shared, tmp_path), limiter_for(shared, tmp_path)

    async def run():
        one.pause(30.0, everyone=False)
        one._side.submit(lambda: None).result()  # anything the pause wrote has reached the store
        t0 = time.monotonic()
        await two.acquire()
        other = time.monotonic() - t0
        one.lift()  # a good answer came
        t0 = time.monotonic()
        await one.acquire()
        return other, time.monotonic() - t0

    other, own = asyncio.run(run())
    assert other < 5 and own < 5  # neither waited the 30 s
    one.close(), two.close()


@pytest.mark.slow
def test_peers_see_each_other_and_say_so(tmp_path, shared):
    one, two = limiter_for(shared, tmp_path), limiter_for(shared, tmp_path)
    asyncio.run(one.acquire())
    asyncio.run(two.acquire())
    peers = one.peers(refresh=True)  # one's own list was read before two arrived
    assert len(peers) == 1 and {"pid", "host", "waiting", "jobs", "last_seen"} <= set(peers[0])
    two.close()
    assert len(one.peers()) == 1  # from memory, no I/O
    assert one.peers(refresh=True) == []
    status = one.status()
    assert status["backend"] in ("sqlite", "redis", "postgresql") and status["message"] == ""
    one.close()


def test_a_waiting_process_says_it_waits_for_others(tmp_path):
    one, two = limiter_for("shared", tmp_path, rate=2.0), limiter_for("shared", tmp_path, rate=2.0)

    async def run():
        await two.acquire()
        await one.acquire()
        task = asyncio.ensure_future(one.acquire())  # the next slot is ~0.5 s away
        await asyncio.sleep(0.05)
        status = one.status()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        return status

    status = asyncio.run(run())
    assert status["waiting_for_others"] and status["message"] == "waiting for the key's rate limit: 1 other process"
    one.close(), two.close()


def test_a_cancelled_wait_lets_go_at_once(tmp_path):
    limiter = limiter_for("shared", tmp_path, rate=1.0)

    async def run():
        await limiter.acquire()
        task = asyncio.ensure_future(limiter.acquire())
        await asyncio.sleep(0.05)
        task.cancel()
        t0 = time.monotonic()
        with pytest.raises(asyncio.CancelledError):
            await task
        return time.monotonic() - t0

    assert asyncio.run(run()) < 0.2
    assert limiter.waiting == 0
    limiter.close()


@pytest.mark.parametrize("url", ["redis://:pw-s3cret@127.0.0.1:{port}/0",
                                 "postgresql://ana:pw-s3cret@127.0.0.1:{port}/grok"])
def test_an_unreachable_shared_server_is_named_without_its_password(tmp_path, url):
    url = url.format(port=free_port())
    with pytest.raises(SharedServiceError) as info:
        make_limiter(TEST_KEY, 1.0, tmp_path, url)
    text = str(info.value)
    assert "pw-s3cret" not in text and redact_url(url) in text and "Check that the server runs" in text
    with pytest.raises(SharedServiceError, match="is not understood"):
        make_limiter(TEST_KEY, 1.0, tmp_path, "mongodb://db")


def run_workers(sim: SimulatorServer, rate: float, procs: int, jobs: int, home: Path, mode: str) -> list[dict]:
    """``procs`` processes × ``jobs`` jobs on one key, started at the same instant; their JSON summaries."""
    start = time.time() + 4.0
    running = [subprocess.Popen([sys.executable, str(WORKER), sim.url, TEST_KEY, str(rate), str(jobs), str(home),
                                 repr(start), mode], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
               for _ in range(procs)]
    out = []
    for proc in running:
        stdout, stderr = proc.communicate(timeout=240)
        assert proc.returncode == 0, stderr[-2000:]
        out.append(json.loads(stdout.strip().splitlines()[-1]))
    return out


#: The simulator's per-key limit in these tests, in requests per wall second.
SHARED_RATE = 40.0


@pytest.mark.slow
def test_four_processes_share_one_key_without_a_429(tmp_path, shared):
    config = SimulatorConfig(speed=SPEED, seed=11, enforce_rate_limit=True, rate_limit=SHARED_RATE / SPEED,
                             render_scale=RENDER_SCALE)
    with SimulatorServer(config) as sim:
        results = run_workers(sim, SHARED_RATE, 4, 8, tmp_path / "home", shared)
        statuses = [s for _, _, s in list(sim.simulator.requests)]
    assert [r["errors"] for r in results] == [[]] * 4
    assert sum(r["done"] for r in results) == 32
    assert statuses.count(429) == 0 and statuses.count(200) >= 32 * 2  # a submit and at least one poll each


def test_studio_status_lists_the_processes_on_the_key(tmp_path, sim, monkeypatch):
    from grok_nb import Studio

    monkeypatch.setenv("GROK_NB_SHARED_URL", "local")
    studio = Studio(api_key=TEST_KEY, base_url=sim.url, rate_limit=SPEED, home=tmp_path / "alone")
    try:
        local = studio.status()
        assert local.others == 0 and "kept in process" in repr(local)
    finally:
        studio.client.close()
    monkeypatch.delenv("GROK_NB_SHARED_URL")
    studio = Studio(api_key=TEST_KEY, base_url=sim.url, rate_limit=SPEED, home=tmp_path)  # the default: shared
    try:
        other = make_limiter(TEST_KEY, SPEED, tmp_path)
        other.jobs = 3
        asyncio.run(other.acquire())
        status = studio.status()
        assert status.others == 1 and status.processes[1]["jobs"] == 3
        assert "1 other process on this key" in repr(status) and "(this one)" in repr(status)
        assert "<table>" in status._repr_html_() and TEST_KEY not in status._repr_html_() + repr(status)
        other.close()
    finally:
        studio.client.close()


def test_closing_when_the_lock_file_cannot_be_taken_releases_everything_quietly(tmp_path):
    limiter = limiter_for("shared", tmp_path)
    asyncio.run(limiter.acquire())
    lock = limiter._bucket.lock
    conn = limiter._bucket.conn

    def denied(*args, **kwargs):  # the lock file now belongs to another user, or its folder went read-only
        raise PermissionError(13, "Permission denied", lock.lock_file)

    lock.acquire = denied
    limiter.close()  # no PermissionError out of a client's close
    with pytest.raises(sqlite3.ProgrammingError):  # the budget file's connection is closed all the same
        conn.execute("SELECT 1")
    limiter.close()  # twice is fine
