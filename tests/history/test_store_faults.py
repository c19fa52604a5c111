"""Store and process faults (issue 14): a damaged or full store, a dead rate-limit server, kill -9 mid-submit.

Each test reproduces the fault first (an injected write error, a tiny filesystem, a killed child),
then checks what grok_nb does about it: never hang, never lose a paid request id.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time
import uuid
from pathlib import Path

import pytest

from grok_nb import AsyncClient
from grok_nb.history.store import HistoryError, RunStore
from grok_nb.runtime.ratelimit import RateLimiter, make_limiter
from grok_nb.runtime.scheduler import POLL, SUBMIT, Scheduler
from tests.conftest import FAST, SPEED, TEST_KEY
from tests.servers import postgres_server, postgres_url  # noqa: F401  (fixtures)


# -- 6: the rate limiter's store fails ---------------------------------------------------------------
class BrokenStoreLimiter:
    """A limiter whose store fails on every slot, as a damaged file or a stopped Redis does."""

    rate = 50.0

    def __init__(self, exc: Exception):
        self.exc, self.calls = exc, 0

    async def acquire(self) -> None:
        self.calls += 1
        raise self.exc

    def pause(self, seconds: float, everyone: bool = True) -> None:
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


@pytest.mark.slow
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


@pytest.mark.slow
def test_jobs_finish_when_the_postgres_budget_server_goes_away(sim, tmp_path, caplog, postgres_url):  # noqa: F811
    limiter = make_limiter(TEST_KEY, SPEED, tmp_path, postgres_url)

    async def run():
        client = AsyncClient(api_key=TEST_KEY, base_url=sim.url, policy=FAST, rate_limit=SPEED, limiter=limiter,
                             home=tmp_path)
        try:
            first = await client.generate("a lighthouse", duration=1, resolution="480p")
            limiter._state.pool.close()  # the server is gone: every use of the budget fails from now on
            rest = await asyncio.wait_for(asyncio.gather(
                *(client.generate(f"a lighthouse {i}", duration=1, resolution="480p") for i in range(3))), 60)
            return [first, *rest]
        finally:
            await client.aclose()

    with caplog.at_level(logging.WARNING, logger="grok_nb"):
        runs = asyncio.run(run())
    assert [r.status for r in runs] == ["done"] * 4
    assert sum("request budget" in r.getMessage() for r in caplog.records) == 1


# -- 8: kill -9 during many submits --------------------------------------------------------------------
SUBMITTER = textwrap.dedent("""
    import asyncio, sys
    from grok_nb import AsyncClient
    from grok_nb.jobs.policy import PollPolicy

    async def main(url, key, home, tag, n):
        policy = PollPolicy(interval=5.0, max_interval=5.0, deadline=600.0)  # submits, hardly any polls
        client = AsyncClient(api_key=key, base_url=url, home=home, quiet=True, policy=policy, rate_limit=400.0)
        print("go", flush=True)
        await client.start_many([{"prompt": f"{tag} {i}", "duration": 1, "resolution": "480p"} for i in range(n)])
        await asyncio.sleep(600)

    asyncio.run(main(sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4], int(sys.argv[5])))
""")


def _ids_on_disk(home: Path) -> set[str]:
    store = RunStore(home / "history.sqlite")  # opening replays any journal
    try:
        return {r["request_id"] for r in store.rows() if r["request_id"]}
    finally:
        store.close()


@pytest.mark.parametrize("after_s", [0.05, 0.2, 0.4])
@pytest.mark.slow
def test_kill_9_during_submits_leaves_every_answered_id_on_disk(sim, tmp_path, after_s):
    home = tmp_path / "home"
    tag = f"killed-{uuid.uuid4().hex[:8]}"
    child = subprocess.Popen([sys.executable, "-c", SUBMITTER, sim.url, TEST_KEY, str(home), tag, "200"],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert child.stdout.readline().strip() == "go"

    def made() -> set[str]:
        return {job.id for job in list(sim.simulator.jobs.values()) if job.prompt.startswith(tag)}

    deadline = time.monotonic() + 60
    while not made() and time.monotonic() < deadline:  # the child's first submit reached the server
        time.sleep(0.005)
    time.sleep(after_s)
    child.send_signal(signal.SIGKILL)
    child.wait(timeout=30)
    time.sleep(0.2)  # let the simulator finish any request that was on the wire
    created = made()
    on_disk = _ids_on_disk(home)
    lost = created - on_disk
    print(f"killed {after_s} s into the submits: {len(created)} jobs at the server, {len(created & on_disk)} ids on "
          f"disk, {len(lost)} lost")
    assert created, "the child was killed before it sent anything: nothing was tested"
    # At most the one POST whose answer was still on the wire at the kill (its row stays 'submitting').
    assert len(lost) <= 1

    async def reopen():  # a user opens the history again: only a POST truly in flight is called uncertain
        client = AsyncClient(api_key=TEST_KEY, base_url=sim.url, policy=FAST, rate_limit=SPEED, home=home)
        try:
            runs = [await h for h in await client.resume()]
            return runs, client.store.rows()
        finally:
            await client.aclose()

    runs, rows = asyncio.run(reopen())
    by_status = {}
    for row in rows:
        by_status.setdefault(row["status"], []).append(row)
    assert {r.request_id for r in runs} == created & on_disk and all(r.status == "done" for r in runs)
    # Uncertain: the one POST that had left (its answer, or the POST itself, cut off by the kill), no other.
    assert len(lost) <= len(by_status.get("uncertain", [])) <= 1
    unsent = by_status.get("rejected", [])
    assert set(by_status) <= {"done", "uncertain", "rejected"}
    assert len(by_status["done"]) == len(created & on_disk) and all(r["request_id"] is None for r in unsent)
    assert all("nothing was sent" in r["error_message"] and r["error_code"] == "NotSent" for r in unsent)


# -- 7: a full disk at submit time ------------------------------------------------------------------
class FullDisk:
    """The history's engine, but every write fails as SQLite does on a full disk while ``full()`` says so."""

    def __init__(self, db, full):
        self._db, self.full = db, full

    def __getattr__(self, name):
        return getattr(self._db, name)

    @contextlib.contextmanager
    def transaction(self, write=False):
        if write and self.full():
            raise sqlite3.OperationalError("database or disk is full")
        with self._db.transaction(write) as tx:
            yield tx


def test_a_full_disk_keeps_the_request_id_in_the_error_the_journal_and_then_the_history(tmp_path):
    store = RunStore(tmp_path / "history.sqlite")
    store.insert(run_id="r1", backend="simulator", kind="generate", status="submitting")
    full = [True]
    store._db = FullDisk(store._db, lambda: full[0])
    with pytest.raises(HistoryError) as info:
        store.record_request_id("r1", "req-paid-1")
    error = info.value
    assert error.request_id == "req-paid-1" and "disk is full" in str(error) and str(store.journal.path) in str(error)
    assert store.journal.entries() == [("r1", "req-paid-1")]
    assert store.journal.path.stat().st_size <= 64 * 1024  # the reserve, written before the disk filled
    with pytest.raises(HistoryError) as info:  # the writer thread's batch path keeps ids the same way
        store.apply([("update", {"run_id": "r1", "request_id": "req-paid-1", "status": "pending"})])
    assert info.value.request_id == "req-paid-1"
    assert store.get("r1")["request_id"] is None
    full[0] = False  # room again: the next write brings the id in
    store.update("r1", progress=3)
    assert store.get("r1")["request_id"] == "req-paid-1" and store.get("r1")["status"] == "pending"
    assert store.journal.entries() == [] and not store.journal.pending()


def test_the_journal_is_replayed_on_open_even_into_a_row_marked_uncertain(tmp_path):
    path = tmp_path / "history.sqlite"
    store = RunStore(path)
    store.insert(run_id="r1", backend="simulator", kind="generate", status="uncertain", error_code="SubmitUncertain",
                 error_message="cut off")
    store.journal.append("r1", "req-1")
    store.journal.append("gone", "req-2")  # its row was lost with a damaged file: the paid id still gets a row
    store.close()
    again = RunStore(path)
    assert again.get("r1")["request_id"] == "req-1" and again.get("r1")["status"] == "pending"
    assert again.get("r1")["error_message"] is None
    assert again.find("req-2")["status"] == "pending" and again.journal.entries() == []


def _mount_tiny_fs(folder: Path, size: str) -> bool:
    folder.mkdir(parents=True, exist_ok=True)
    try:
        return subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(folder)],
                              capture_output=True, timeout=10).returncode == 0
    except (OSError, subprocess.SubprocessError):
        return False


def test_a_really_full_disk_keeps_the_id_in_the_reserved_journal(tmp_path):
    home = tmp_path / "tiny"
    if not _mount_tiny_fs(home, "1m"):
        pytest.skip("cannot mount a tiny tmpfs here (needs root); the injected-error test covers the same path")
    try:
        store = RunStore(home / "history.sqlite")
        store.insert(run_id="r1", backend="simulator", kind="generate", status="submitting",
                     prompt="x" * 3000)
        filler = home / "filler"
        with open(filler, "wb", buffering=0) as f:  # fill every last block
            with contextlib.suppress(OSError):
                while True:
                    f.write(b"\1" * 4096)
        failed = 0
        for i in range(50):  # SQLite may fit a few small writes in pages it already has: fill those too
            try:
                store.update("r1", prompt=f"{i}" + "y" * 3000, note="z" * 3000)
            except HistoryError:
                failed += 1
                break
        assert failed, "the disk never filled"
        with pytest.raises(HistoryError) as info:
            store.record_request_id("r1", "req-on-a-full-disk")
        assert info.value.request_id == "req-on-a-full-disk" and "disk is full" in str(info.value)
        assert store.journal.entries() == [("r1", "req-on-a-full-disk")]
        store.close()
        filler.unlink()
        reopened = RunStore(home / "history.sqlite")
        assert reopened.get("r1")["request_id"] == "req-on-a-full-disk"
        reopened.close()
    finally:
        subprocess.run(["umount", "-l", str(home)], capture_output=True, timeout=10)


@pytest.mark.slow
def test_a_client_whose_disk_fills_during_the_submit_keeps_the_paid_id(sim, tmp_path):
    tag = f"full-{uuid.uuid4().hex[:8]}"

    def created() -> list[str]:
        return [job.id for job in list(sim.simulator.jobs.values()) if job.prompt.startswith(tag)]

    async def run():
        client = AsyncClient(api_key=TEST_KEY, base_url=sim.url, policy=FAST, rate_limit=SPEED, home=tmp_path)
        client.store._db = FullDisk(client.store._db, lambda: bool(created()))  # full once the job exists
        try:
            with pytest.raises(HistoryError) as info:
                await client.generate(tag, duration=1, resolution="480p")
            return info.value
        finally:
            await client.aclose()

    error = asyncio.run(run())
    [paid] = created()
    assert error.request_id == paid and paid in str(error) and "client.get(" in str(error)
    assert ("history.sqlite.ids" in str(error)) and "disk is full" in str(error)

    async def later():  # the disk has room again: a new client takes the id in and resumes the job
        client = AsyncClient(api_key=TEST_KEY, base_url=sim.url, policy=FAST, rate_limit=SPEED, home=tmp_path)
        try:
            handles = await client.resume()
            return [await h for h in handles]
        finally:
            await client.aclose()

    runs = asyncio.run(later())
    assert [(r.request_id, r.status) for r in runs] == [(paid, "done")]


def test_an_id_whose_write_fails_above_the_transaction_still_reaches_the_journal_and_the_history(sim, tmp_path):
    """Not only a failed transaction: any error while a batch carrying a paid id is written keeps the id."""
    tag = f"above-{uuid.uuid4().hex[:8]}"
    failing = [True]

    async def run():
        client = AsyncClient(api_key=TEST_KEY, base_url=sim.url, policy=FAST, rate_limit=SPEED, home=tmp_path)
        apply = client.store.apply

        def broken(batch):  # a fault before any transaction starts (a bug, a driver error of any kind)
            batch = list(batch)
            if failing[0] and any(op == "update" and args.get("request_id") for op, args in batch):
                raise RuntimeError("the writer broke")
            return apply(batch)

        client.store.apply = broken
        try:
            with pytest.raises(HistoryError) as info:
                await client.generate(tag, duration=1, resolution="480p")
            return info.value, client.store.journal.entries()
        finally:
            failing[0] = False
            await client.aclose()

    error, journaled = asyncio.run(run())
    [paid] = [job.id for job in list(sim.simulator.jobs.values()) if job.prompt == tag]
    assert error.request_id == paid and "the writer broke" in str(error) and "client.get(" in str(error)
    assert [rid for _, rid in journaled] == [paid]
    store = RunStore(tmp_path / "history.sqlite")  # opening takes the journal in
    assert store.find(paid)["prompt"] == tag and store.journal.entries() == []
    store.close()


# -- 9: two resume() at once ---------------------------------------------------------------------------
RESUMER = textwrap.dedent("""
    import asyncio, json, sys, time
    from grok_nb import AsyncClient
    from grok_nb.jobs.policy import PollPolicy

    async def main(url, key, home, start):
        policy = PollPolicy(interval=0.02, max_interval=0.05, retry_base=0.02, retry_max=0.2, deadline=60.0)
        client = AsyncClient(api_key=key, base_url=url, home=home, quiet=True, policy=policy, rate_limit=300.0)
        time.sleep(max(0.0, start - time.time()))  # both resume at the same instant
        handles = await client.resume()
        runs = [await h for h in handles]
        await client.aclose()
        print(json.dumps(sorted(r.request_id for r in runs if r.status == "done")))

    asyncio.run(main(sys.argv[1], sys.argv[2], sys.argv[3], float(sys.argv[4])))
""")


@pytest.mark.slow
def test_two_resumes_at_once_attach_each_job_once(sim, tmp_path):
    home = tmp_path / "home"
    client = AsyncClient(api_key=TEST_KEY, base_url=sim.url, policy=FAST, rate_limit=SPEED, home=home)

    async def submit():
        handles = await client.start_many([{"prompt": f"resume race {i}", "duration": 1} for i in range(8)])
        while not all(h.request_id for h in handles):  # submits go out in the background: let each be accepted
            await asyncio.sleep(0.02)
        for handle in handles:
            handle.stop_waiting()
        await client.aclose()
        return [h.run.request_id for h in handles]

    ids = asyncio.run(submit())
    code = "from grok_nb.history.owners import process_owner; print(process_owner())"
    dead = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    store = RunStore(home / "history.sqlite")
    for row in store.rows():  # as if the notebook that made them had died
        store.update(row["run_id"], owner=dead, status="pending")
    start = time.time() + 3.0
    procs = [subprocess.Popen([sys.executable, "-c", RESUMER, sim.url, TEST_KEY, str(home), repr(start)],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(2)]
    outs = [p.communicate(timeout=180) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], [err[-2000:] for _, err in outs]
    first, second = (json.loads(out.strip().splitlines()[-1]) for out, _ in outs)
    print(f"resumed by one: {len(first)}, by the other: {len(second)}, both: {len(set(first) & set(second))}")
    assert set(first) & set(second) == set()  # one owner per job
    assert sorted(first + second) == sorted(ids)  # and every job had one


def test_a_lease_keeps_a_job_from_a_second_owner_until_it_runs_out(tmp_path):
    store = RunStore(tmp_path / "h.sqlite")
    store.insert(run_id="r", request_id="q", backend="simulator", kind="generate", status="pending",
                 owner="other-host:123:456", lease_until=time.time() + 60)  # a live notebook on another machine
    row = store.get("r")
    assert store.claim(row, "here:1:1") is False
    store.update("r", lease_until=time.time() - 1)  # it stopped renewing: the lease ran out
    assert store.claim(row, "here:1:1") is True and store.get("r")["owner"] == "here:1:1"
    assert store.claim(row, "there:2:2") is False  # it saw the old owner: the one that moved first won
    assert store.claim(store.get("r"), "here:1:1") is True  # an owner keeps its own job
