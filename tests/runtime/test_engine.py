"""The job engine against the simulator over loopback: budgets, resume, submits that survive, faults, odd answers."""

from __future__ import annotations

import errno
import inspect
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

import httpx
import pytest

import grok_nb
from grok_nb import AsyncClient, Client
from grok_nb.errors import BudgetExceeded, ConfigurationError
from grok_nb.notebook.compare import Grid
from tests._proxy import FaultProxy
from tests.conftest import FAST, SPEED, TEST_KEY, count, history_rows

ROOT = Path(__file__).resolve().parents[2]


def _client(sim, **options) -> Client:
    return Client(api_key=TEST_KEY, base_url=sim.url, policy=options.pop("policy", FAST), rate_limit=SPEED, **options)



def _worker(mode: str, sim, n: int, prompt: str, home: Path) -> subprocess.Popen:
    env = {**os.environ, "GROK_NB_HOME": str(home), "PYTHONPATH": str(ROOT)}
    return subprocess.Popen([sys.executable, "-m", "tests._worker", mode, sim.url, TEST_KEY, str(n), prompt],
                            cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _wait_for(predicate, timeout: float = 20.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.02)


# -- budget -----------------------------------------------------------------------------------------
@pytest.mark.slow
def test_eight_threads_against_one_budget_never_pass_it(sim):
    with _client(sim, budget_usd=0.50) as c:  # 1 s 480p = $0.05: ten jobs fit
        sent, refused = [], []

        def work(i: int) -> None:
            for j in range(4):
                try:
                    if j % 2:
                        grid = Grid(c, {"prompt": [f"t{i} g{j} a", f"t{i} g{j} b"], "duration": 1})
                        grid.start()
                        sent.extend(cell.handle for cell in grid.cells)
                    else:
                        sent.append(c.generate(f"t{i} j{j}", duration=1, wait=False))
                except BudgetExceeded:
                    refused.append(i)

        threads = [threading.Thread(target=work, args=(i,)) for i in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        for handle in sent:
            handle.result(timeout=60)
        assert refused and c.spent_usd <= 0.50 + 1e-9 and c.remaining_usd >= -1e-9
        assert count(sim, "POST", "/v1/videos/") == len(sent) <= 10
        assert c.spent_usd == pytest.approx(0.05 * len(sent))
        with pytest.raises(BudgetExceeded, match="nothing was sent"):
            c.generate("one more", duration=2)


def test_a_grid_that_does_not_fit_is_refused_whole(sim):
    with _client(sim, budget_usd=0.20) as c:
        c.generate("first", duration=2)  # $0.10 spent
        grid = Grid(c, {"prompt": ["a", "b", "c"], "duration": 1})  # $0.15 > $0.10 left
        before = count(sim, "POST", "/v1/videos/")
        with pytest.raises(BudgetExceeded, match=r"\$0.10 of the \$0.20 budget"):
            grid.check_budget(None, None, None)
        with pytest.raises(BudgetExceeded):
            grid.start()
        assert count(sim, "POST", "/v1/videos/") == before and c.remaining_usd == pytest.approx(0.10)


@pytest.mark.slow
def test_actual_cost_replaces_the_estimate_and_failures_cost_nothing(sim):
    with _client(sim, budget_usd=5.0) as c:
        c.generate("billed", duration=2, resolution="720p")
        assert c.spent_usd == pytest.approx(0.14)
        run = c.generate("broken [sim:fail=internal_error]", duration=2)
        assert run.status == "failed" and c.spent_usd == pytest.approx(0.14) and c.remaining_usd == pytest.approx(4.86)


def _interrupt_when_made(sim, prompt: str, pid, timeout: float = 30.0) -> None:
    """Send SIGINT to ``pid()`` as soon as the server has made the job for ``prompt`` (its answer still to come)."""
    deadline = time.monotonic() + timeout
    while not sim.simulator.jobs_by_prompt(prompt):
        assert time.monotonic() < deadline, "the POST never reached the server"
        time.sleep(0.01)
    os.kill(pid(), signal.SIGINT)


# -- submits that cannot be lost --------------------------------------------------------------------
@pytest.mark.slow
def test_ctrl_c_during_a_slow_submit_keeps_the_request_id(sim, capsys):
    sim.config.submit_delay_s = 2.0  # the server creates the job, then takes its time to answer
    prompt = f"slow submit {uuid.uuid4()}"
    with _client(sim, policy=FAST) as c:
        # Ctrl+C once the job exists at the server, its answer still to come (not after a fixed time: a loaded
        # machine may not have sent the POST yet).
        threading.Thread(target=_interrupt_when_made, args=(sim, prompt, os.getpid), daemon=True).start()
        with pytest.raises(KeyboardInterrupt):
            c.generate(prompt, duration=1)
        assert "finishing in the background" in capsys.readouterr().out
        row = c.store.rows()[-1]
        assert row["status"] == "submitting" and row["request_id"] is None  # the POST is still out
        _wait_for(lambda: c.store.rows()[-1]["error_message"] is not None, what="the request id and the note")
        row = c.store.rows()[-1]
        assert row["status"] == "pending" and "client.get" in row["error_message"]
        sim.config.submit_delay_s = 0.0
        (handle,) = c.resume()
        assert handle.result(timeout=60).ok and handle.request_id == row["request_id"]
    assert len(sim.simulator.jobs_by_prompt(prompt)) == 1 and count(sim, "POST", "/v1/videos/") == 1


@pytest.mark.anyio
@pytest.mark.slow
async def test_a_cancelled_task_or_stop_waiting_during_the_submit_keeps_the_job(sim):
    import asyncio

    sim.config.submit_delay_s = 0.5
    async with AsyncClient(api_key=TEST_KEY, base_url=sim.url, policy=FAST, rate_limit=SPEED) as c:
        task = asyncio.create_task(c.generate("cancel me", duration=1))
        await asyncio.sleep(0.2)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        handle = await c.generate("stop me", duration=1, wait=False)
        await asyncio.sleep(0.2)
        handle.stop_waiting()
        for _ in range(200):
            rows = c.store.rows()
            if all(r["request_id"] for r in rows):
                break
            await asyncio.sleep(0.02)
        assert [r["status"] for r in rows] == ["pending", "pending"] and all(r["request_id"] for r in rows)
        sim.config.submit_delay_s = 0.0
        runs = [await h for h in await c.resume()]
        assert all(r.ok for r in runs) and len(runs) == 2
    assert count(sim, "POST", "/v1/videos/") == 2


@pytest.mark.slow
def test_interrupted_script_records_the_request_id_before_exiting(sim, tmp_path):
    sim.config.submit_delay_s = 2.0
    home = tmp_path / "home"
    prompt = f"script {uuid.uuid4()}"
    proc = _worker("wait-one", sim, 1, prompt, home)
    assert proc.stdout.readline().strip() == "waiting"
    _interrupt_when_made(sim, prompt, lambda: proc.pid)  # Ctrl+C: the interpreter exits, not before the POST answered
    proc.wait(30)
    (row,) = history_rows(home)
    assert row["request_id"] and row["status"] == "pending", proc.stderr.read()
    assert len(sim.simulator.jobs_by_prompt(prompt)) == 1


# -- resume -----------------------------------------------------------------------------------------
@pytest.mark.slow
def test_a_killed_process_is_resumed_by_another_without_any_submit(sim, tmp_path):
    home = tmp_path / "home"
    proc = _worker("submit-then-hang", sim, 3, "killed [sim:slow]", home)
    ids = []
    for line in proc.stdout:
        if line.startswith("id "):
            ids.append(line.split()[1])
        if line.strip() == "ready":
            break
    proc.send_signal(signal.SIGKILL)
    proc.wait(10)
    posts = count(sim, "POST", "/v1/videos/")
    with Client(api_key=TEST_KEY, base_url=sim.url, policy=FAST, rate_limit=SPEED, home=home) as c:
        assert c.waiting() == 3
        handles = c.resume()
        runs = [h.result(timeout=60) for h in handles]
        assert sorted(r.request_id for r in runs) == sorted(ids) and all(r.ok for r in runs)
        assert c.resume() == [] and c.waiting() == 0
    assert count(sim, "POST", "/v1/videos/") == posts  # no submit was sent again


@pytest.mark.slow
def test_a_kill_mid_submit_leaves_uncertain_rows_never_submitting(sim, tmp_path):
    sim.config.submit_delay_s = 5.0
    home = tmp_path / "home"
    proc = _worker("submit-slow", sim, 2, f"cut off {uuid.uuid4()}", home)
    assert proc.stdout.readline().strip() == "sent"
    _wait_for(lambda: len(history_rows(home)) == 2 and sim.simulator.jobs, what="both rows")
    time.sleep(0.3)
    proc.send_signal(signal.SIGKILL)
    proc.wait(10)
    assert {r["status"] for r in history_rows(home)} == {"submitting"}
    posts = count(sim, "POST", "/v1/videos/")
    with Client(api_key=TEST_KEY, base_url=sim.url, policy=FAST, rate_limit=SPEED, home=home) as c:
        assert c.resume() == []
    rows = history_rows(home)
    # Submits leave one at a time: the first POST was in flight (uncertain), the second never left.
    [uncertain] = [r for r in rows if r["status"] == "uncertain"]
    [unsent] = [r for r in rows if r["status"] == "rejected"]
    assert "xAI console" in uncertain["error_message"] and "Nothing was resent" in uncertain["error_message"]
    assert "nothing was sent and nothing was billed" in unsent["error_message"]
    assert count(sim, "POST", "/v1/videos/") == posts


@pytest.mark.slow
def test_resume_leaves_jobs_of_a_live_process_alone(sim, tmp_path):
    home = tmp_path / "home"
    proc = _worker("submit-then-hang", sim, 1, "still mine [sim:slow]", home)
    try:
        for line in proc.stdout:
            if line.strip() == "ready":
                break
        with Client(api_key=TEST_KEY, base_url=sim.url, policy=FAST, rate_limit=SPEED, home=home) as c:
            assert c.resume() == []  # the other notebook is still waiting for it
    finally:
        proc.kill()
        proc.wait(10)


@pytest.mark.slow
def test_studio_says_how_many_jobs_wait_and_resume_shows_cards(sim, tmp_path, capsys):
    pytest.importorskip("ipywidgets")
    from grok_nb.notebook import Studio

    home = tmp_path / "home"
    proc = _worker("submit-then-hang", sim, 2, "for the studio [sim:slow]", home)
    for line in proc.stdout:
        if line.strip() == "ready":
            break
    proc.kill()
    proc.wait(10)
    studio = Studio(api_key=TEST_KEY, base_url=sim.url, policy=FAST, rate_limit=SPEED, home=home)
    try:
        assert "2 jobs of this history are unfinished; studio.resume()" in capsys.readouterr().out
        handles = studio.resume(display=False)
        assert len(handles) == 2 and all(h.result(timeout=60).ok for h in handles)
        _wait_for(lambda: all(h.card.bar.value == 100 for h in handles), what="cards at 100 %")
    finally:
        studio.client.close()


# -- faults never make two jobs of one call ---------------------------------------------------------
@pytest.mark.parametrize("fault", ["reset", "502", "hang", "429-storm", "5xx-polls"])
@pytest.mark.slow
def test_a_faulty_network_never_makes_two_jobs_from_one_call(sim, fault):
    storm = {"left": 6}

    def decide(method: str, path: str) -> str:
        if fault == "429-storm" and storm["left"] > 0:
            storm["left"] -= 1
            return "429"
        if method == "POST" and fault in ("reset", "502", "hang"):
            return fault
        if method == "GET" and fault == "5xx-polls" and storm["left"] > 0:
            storm["left"] -= 1
            return "502"
        return "forward"

    prompt = f"fault {fault} {uuid.uuid4()}"
    with FaultProxy(sim.url, decide, hang_s=1.0) as proxy, \
            Client(api_key=TEST_KEY, base_url=proxy.url, policy=FAST, rate_limit=SPEED, timeout=0.5) as c:
        try:
            run = c.generate(prompt, duration=1)
        except grok_nb.SubmitUncertainError as exc:
            assert fault in ("reset", "502", "hang") and c.store.get(exc.run_id)["status"] == "uncertain"
        else:
            assert fault in ("429-storm", "5xx-polls") and run.ok
        posts = [s for s in proxy.seen if s[0] == "POST"]
    time.sleep(0.2)
    assert len(sim.simulator.jobs_by_prompt(prompt)) == 1  # exactly one job, never two
    assert len([p for p in posts if p[2] != "429"]) == 1


# -- odd answers end in clear errors and explained rows ---------------------------------------------
def _mock(handler) -> Client:
    return Client(api_key="xai-mock", base_url="https://api.x.ai", policy=FAST, rate_limit=1000,
                  transport=httpx.MockTransport(handler))


def _answers(poll_body, media=b"\0\0\0\x18ftypmp42" + b"\0" * 100, media_status=200):
    def handler(request: httpx.Request) -> httpx.Response:
        if request.method == "POST":
            return httpx.Response(200, json={"request_id": "r-odd"})
        if request.url.host == "api.x.ai":
            return poll_body if isinstance(poll_body, httpx.Response) else httpx.Response(200, json=poll_body)
        return httpx.Response(media_status, content=media)
    return handler


@pytest.mark.parametrize("body", [
    {"status": "done", "video": {"url": 12345}},
    {"status": "done", "video": {"url": "ftp://files.example/v.mp4"}},
    {"status": "done", "video": {"duration": 6}, "usage": {"cost_in_usd_ticks": 3000000000}},
])
def test_done_without_a_usable_url_is_explained_not_pending(body):
    with _mock(_answers(body)) as c:
        run = c.generate("odd url", duration=1)
        row = c.store.find("r-odd")
    assert run.status == "failed" and isinstance(run.error, grok_nb.NoVideoError)
    assert row["status"] == "failed" and "no video URL to download" in row["error_message"]


def test_a_huge_answer_is_not_read_and_the_job_stays_resumable():
    with _mock(_answers(httpx.Response(200, content=b'{"status": "pending", "pad": "' + b"x" * (2 << 20) + b'"}'))) as c:
        with pytest.raises(grok_nb.APIError, match="larger than 1 MiB"):
            c.generate("huge", duration=1)
        row = c.store.find("r-odd")
    assert row["status"] == "pending" and "larger than 1 MiB" in row["error_message"]


def test_a_full_disk_is_a_download_error_with_what_to_do(monkeypatch):
    from grok_nb.runtime import transport

    real_open = open

    def full_disk(path, mode="r", *args, **kwargs):
        if str(path).endswith(".part") and "w" in mode:
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_open(path, mode, *args, **kwargs)

    monkeypatch.setattr(transport, "open", full_disk, raising=False)
    with _mock(_answers({"status": "done", "video": {"url": "https://vidgen.x.ai/r.mp4"}})) as c:
        run = c.generate("no room", duration=1)
    assert run.status == "download_failed" and "No space left on device" in str(run.error)
    assert "client.resume()" in str(run.error)


@pytest.mark.slow
def test_an_unsupported_url_scheme_is_not_retried_and_transient_errors_are_within_the_deadline(tmp_path):
    calls = []

    def redirect_to_ftp(request: httpx.Request) -> httpx.Response:
        if request.url.scheme == "ftp":  # what httpx's real transport does with it
            raise httpx.UnsupportedProtocol("Request URL has an unsupported protocol 'ftp://'.", request=request)
        if request.url.host == "vidgen.x.ai":
            calls.append(request.url)
            return httpx.Response(302, headers={"Location": "ftp://files.example/v.mp4"})
        return _answers({"status": "done", "video": {"url": "https://vidgen.x.ai/r.mp4"}})(request)

    with _mock(redirect_to_ftp) as c:
        run = c.generate("moved away", duration=1)
    assert run.status == "download_failed" and "scheme is not supported" in str(run.error) and len(calls) == 1

    def unavailable(request: httpx.Request) -> httpx.Response:
        calls.append(request.url)
        return _answers({"status": "done", "video": {"url": "https://vidgen.x.ai/r.mp4"}}, media_status=503)(request)

    calls.clear()
    policy = FAST.__class__(**{**FAST.__dict__, "deadline": 1.0})
    with Client(api_key="xai-mock", base_url="https://api.x.ai", policy=policy, rate_limit=1000,
                transport=httpx.MockTransport(unavailable), home=tmp_path / "other") as c:
        started = time.monotonic()
        run = c.generate("flaky media", duration=1)
    assert run.status == "download_failed" and "client.resume() tries again" in str(run.error)
    assert time.monotonic() - started < 3 and len([u for u in calls if u.host == "vidgen.x.ai"]) > 2


@pytest.mark.slow
def test_a_cached_mp4_is_checked_before_it_is_reused(client, sim):
    run = client.generate("cache check", duration=1)
    run.path.write_bytes(b"garbage, not a video")
    again = client.get(run.request_id)
    assert again.ok and again.path.read_bytes()[4:8] == b"ftyp"


def test_deadline_says_how_long_it_really_waited(sim):
    policy = FAST.__class__(**{**FAST.__dict__, "deadline": 0.5})
    with _client(sim, policy=policy) as c:
        started = time.monotonic()
        with pytest.raises(grok_nb.DeadlineExceeded) as info:
            c.generate("slow [sim:slow]", duration=3)
        waited = time.monotonic() - started
    assert 0.4 <= info.value.waited_s <= waited + 0.05 and "stopped waiting after" in str(info.value)


@pytest.mark.parametrize("kwargs,match", [
    ({"api_key": "xai-abc\ndef"}, "line break at position 8"),
    ({"api_key": "xai-abcé"}, "non-ASCII character"),
    ({"base_url": "api.x.ai"}, r"is not an http\(s\) URL"),
    ({"base_url": "ftp://api.x.ai"}, r"is not an http\(s\) URL"),
    ({"base_url": "https://user:hunter2@api.x.ai"}, None),
])
def test_local_misconfiguration_is_a_clear_error_before_anything_is_sent(kwargs, match):
    options = {"api_key": "xai-ok", **kwargs}
    if match is None:
        with Client(**options, transport=httpx.MockTransport(lambda r: httpx.Response(503))) as c:
            with pytest.raises(grok_nb.SubmitUncertainError):
                c.generate("with a password in the URL", duration=1)
            assert "hunter2" not in repr(c) and "hunter2" not in c.history().to_csv()
        return
    with pytest.raises(ConfigurationError, match=match) as info:
        Client(**options)
    assert "abc" not in str(info.value) or "api_key" not in kwargs  # the key itself is never shown


def test_a_home_that_cannot_be_written_is_reported_before_anything_is_sent(tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    with pytest.raises(ConfigurationError, match=f"cannot write its history and videos to {blocker}/home"):
        Client(api_key="xai-ok", base_url="https://api.x.ai", home=blocker / "home")


# -- structure --------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", ["generate", "edit", "extend", "get", "resume"])
def test_client_and_studio_show_the_real_signatures(name):
    a = inspect.signature(getattr(AsyncClient, name)).parameters
    s = inspect.signature(getattr(Client, name)).parameters
    assert list(a) == list(s) and getattr(Client, name).__doc__ == getattr(AsyncClient, name).__doc__
    if name != "resume":
        from grok_nb.notebook import Studio

        st = inspect.signature(getattr(Studio, name)).parameters
        assert [p for p in a if p not in ("wait", "on_update")] == [p for p in st if p != "display"]
        assert getattr(AsyncClient, name).__doc__.strip() in getattr(Studio, name).__doc__


@pytest.mark.slow
def test_each_client_gets_the_simulator_speed_it_asked_for():
    with Client(simulator_speed=120, quiet=True) as fast, Client(simulator_speed=60, quiet=True) as slow:
        assert fast.base_url != slow.base_url
        assert fast._backend.speed == 120 and slow._backend.speed == 60
        assert fast.policy.interval == pytest.approx(1 / 120)


@pytest.mark.slow
def test_views_are_told_off_the_polling_loop(client):
    threads = set()
    run = client.generate("who calls", duration=1, on_update=lambda r: threads.add(threading.current_thread().name))
    assert run.ok
    _wait_for(lambda: threads, what="a view update")
    assert "grok-nb-client" not in threads and threads <= {"grok-nb-views"}


@pytest.mark.slow
def test_the_key_is_redacted_from_every_log_line_while_a_client_exists(sim, caplog):
    import logging

    with caplog.at_level(logging.DEBUG):
        with _client(sim) as c:
            c.generate("logged", duration=1)
            logging.getLogger("httpcore.http11").debug("header %s", f"Bearer {TEST_KEY}")
            logging.getLogger("httpx").debug(f"echoed {TEST_KEY}")
    assert "httpcore" in caplog.text and TEST_KEY not in caplog.text and "TESTKEY" not in caplog.text


@pytest.mark.slow
def test_a_job_waiting_for_a_shared_budget_says_so(sim):
    import asyncio as aio

    class Contended:
        """A budget other processes use too: each slot takes a while, and its status says why."""

        interval = 0.01
        rate = 100.0
        jobs = 0

        async def acquire(self) -> None:
            await aio.sleep(0.3)

        def pause(self, seconds: float, everyone: bool = True) -> None:
            pass

        def lift(self) -> None:
            pass

        def close(self) -> None:
            pass

        def status(self) -> dict:
            return {"message": "waiting for the key's rate limit: 3 other processes"}

    notes = []
    with _client(sim, limiter=Contended()) as c:
        run = c.generate("contended", duration=1, on_update=lambda r: notes.append(r.waiting_note))
    assert run.ok and "waiting for the key's rate limit: 3 other processes" in notes
    assert run.waiting_note is None  # said while waiting, gone once served

    from grok_nb.notebook import gridstate

    waiting = grok_nb.Run("r", "generate", "m", "p", status="pending")
    waiting.waiting_note = "waiting for the key's rate limit: 3 other processes"
    tile = gridstate.tile(0, waiting)
    line = gridstate.summary([tile], [waiting], estimate_usd=0.1)["text"]
    assert "waiting for the key's rate limit: 3 other processes" in line
