"""Issue 14, items 11 and 10: a cached MP4 is handed back as done only while it is whole (size as downloaded,
box structure, PyAV decoding it), else it is downloaded again or said to be damaged; temporary download files of a
process that is gone are swept; a second Ctrl+C while a script waits at exit for its submits loses no request id."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import httpx
import pytest

from grok_nb import Client
from grok_nb.api.probe import mp4_problem
from grok_nb.history.owners import process_owner
from grok_nb.runtime.cache import STALE_PART_S, part_path, sweep_parts
from tests.conftest import FAST, SPEED, TEST_KEY, count, history_rows

ROOT = Path(__file__).resolve().parents[2]


def _client(sim, **options) -> Client:
    return Client(api_key=TEST_KEY, base_url=sim.url, policy=FAST, rate_limit=SPEED, **options)



@pytest.fixture(scope="module")
def good_mp4(tmp_path_factory, sim_server):
    home = tmp_path_factory.mktemp("mp4")
    with Client(api_key=TEST_KEY, base_url=sim_server.url, policy=FAST, rate_limit=SPEED, home=home) as c:
        run = c.generate("A whole video", duration=1)
    assert run.ok
    return Path(run.path).read_bytes()


# -- the check ---------------------------------------------------------------------------------------
def test_mp4_problem_tells_whole_from_damaged(good_mp4, tmp_path):
    path = tmp_path / "v.mp4"
    path.write_bytes(good_mp4)
    assert mp4_problem(path) is None and mp4_problem(path, len(good_mp4)) is None
    assert "were downloaded" in mp4_problem(path, len(good_mp4) + 1)
    path.write_bytes(good_mp4[: len(good_mp4) // 2])  # truncated: the first 12 bytes still say MP4
    assert "truncated" in mp4_problem(path)
    path.write_bytes(good_mp4[:12])
    assert "truncated" in mp4_problem(path)
    moov = good_mp4.index(b"moov")
    path.write_bytes(good_mp4[:moov] + b"\0" * (len(good_mp4) - moov))  # the index zeroed out
    assert mp4_problem(path) is not None
    path.write_bytes(good_mp4[:moov + 64] + bytes(256) + good_mp4[moov + 64 + 256:])  # damage inside the index
    assert mp4_problem(path, len(good_mp4)) is not None


# -- a cached file that is not whole any more -----------------------------------------------------------
def test_a_truncated_cache_is_downloaded_again(sim):
    with _client(sim) as c:
        run = c.generate(f"cached {uuid.uuid4()}", duration=1)
        size = Path(run.path).stat().st_size
        assert run.ok and run.video_bytes == size and c.store.get(run.run_id)["video_bytes"] == size
        whole = Path(run.path).read_bytes()
        Path(run.path).write_bytes(whole[: size // 2])
        downloads = count(sim, "GET", "/media/")
        again = c.get(run.request_id)
        assert again.ok and Path(again.path).read_bytes() == whole
        assert count(sim, "GET", "/media/") == downloads + 1 and count(sim, "POST", "/v1/videos") == 1
        # the same size, damaged inside: found by its structure
        moov = whole.index(b"moov")
        Path(run.path).write_bytes(whole[:moov] + b"\0" * (size - moov))
        third = c.get(run.request_id)
        assert third.ok and Path(third.path).read_bytes() == whole


class MediaGone(httpx.AsyncBaseTransport):
    """The API works; the result URLs answer 404 once ``gone`` is set (expired)."""

    def __init__(self) -> None:
        self.inner = httpx.AsyncHTTPTransport()
        self.gone = False

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if self.gone and not request.url.path.startswith("/v1/"):
            return httpx.Response(404, text="gone")
        return await self.inner.handle_async_request(request)


def test_a_damaged_cache_whose_url_is_gone_says_damaged(sim):
    transport = MediaGone()
    with _client(sim, transport=transport) as c:
        run = c.generate(f"damaged {uuid.uuid4()}", duration=1)
        Path(run.path).write_bytes(Path(run.path).read_bytes()[:100])
        transport.gone = True
        again = c.get(run.request_id)
        assert not again.ok and again.status != "done"
        assert "the cached copy is damaged" in str(again.error) and "were downloaded" in str(again.error)


# -- temporary files --------------------------------------------------------------------------------------
def _dead_owner() -> str:
    """The owner name of a process of this machine that has ended."""
    return subprocess.run([sys.executable, "-c", "from grok_nb.history.owners import process_owner as p; print(p())"],
                          capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(ROOT)}).stdout.strip()


@pytest.mark.slow
def test_parts_of_dead_processes_are_swept(tmp_path):
    cache = tmp_path / "videos"
    cache.mkdir()
    dead = _dead_owner()
    mine = part_path(cache / "a.mp4")
    theirs = cache / f"b.mp4.{dead.encode().hex()}.0123abcd.part"
    old_style_fresh = cache / "c.mp4.0123abcd.part"
    old_style_stale = cache / "d.mp4.4567abcd.part"
    for part in (mine, theirs, old_style_fresh, old_style_stale):
        part.write_bytes(b"half a video")
    past = time.time() - STALE_PART_S - 60
    os.utime(old_style_stale, (past, past))
    assert process_owner().encode().hex() in mine.name
    assert sorted(p.name for p in sweep_parts(cache)) == sorted([theirs.name, old_style_stale.name])
    assert mine.exists() and old_style_fresh.exists()


@pytest.mark.slow
def test_a_new_client_sweeps_parts_left_by_a_killed_download(sim, isolated_home):
    cache = isolated_home / "videos"
    cache.mkdir(parents=True)
    dead = cache / f"x.mp4.{_dead_owner().encode().hex()}.0123abcd.part"
    dead.write_bytes(b"half")
    with _client(sim):
        assert not dead.exists()


# -- a second Ctrl+C at exit ----------------------------------------------------------------------------
@pytest.mark.slow
def test_second_ctrl_c_while_a_script_waits_at_exit_keeps_the_request_id(sim, tmp_path):
    sim.config.submit_delay_s = 3.0  # the job exists at the server; its answer takes a while
    home = tmp_path / "home"
    prompt = f"twice {uuid.uuid4()}"
    env = {**os.environ, "GROK_NB_HOME": str(home), "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen([sys.executable, "-m", "tests._worker", "wait-one", sim.url, TEST_KEY, "1", prompt],
                            cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "waiting"
    deadline = time.monotonic() + 30
    while not sim.simulator.jobs_by_prompt(prompt):  # the job exists at the server, its answer still to come
        assert time.monotonic() < deadline, "the POST never reached the server"
        time.sleep(0.01)
    proc.send_signal(signal.SIGINT)  # Ctrl+C: stop waiting; the interpreter ends and waits for the POST at exit
    assert "stopped waiting during the submit" in proc.stdout.readline()
    time.sleep(0.3)
    proc.send_signal(signal.SIGINT)  # the second one, during the exit wait
    proc.wait(60)
    err = proc.stderr.read()
    (row,) = history_rows(home)
    assert row["request_id"] and row["status"] == "pending", err
    assert "still waiting" in err and "no paid job is lost" in err
    assert len(sim.simulator.jobs_by_prompt(prompt)) == 1
