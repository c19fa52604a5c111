"""The simulator's latency is each job's own (kind, resolution, duration), not its place in a grid,
and its progress can hold at 99 % for a last stretch as the service's does."""

from __future__ import annotations

import concurrent.futures

import pytest

from grok_nb.simulator import SimulatorConfig
from grok_nb.simulator.state import Simulator


class _HeldPool:
    """A render pool whose renders finish only when the test says so; it records what it was given."""

    def __init__(self, size: int):
        self.size = size
        self.started: list[str] = []
        self.futures: list[concurrent.futures.Future] = []

    def submit(self, payload: dict) -> concurrent.futures.Future:
        self.started.append(payload["prompt"])
        future: concurrent.futures.Future = concurrent.futures.Future()
        self.futures.append(future)
        return future

    def finish_next(self) -> None:
        next(f for f in self.futures if not f.done()).set_result({"ok": {"seconds": 1.0, "width": 8, "height": 8}})

    def shutdown(self) -> None:
        pass


def _sim(workers: int) -> tuple[Simulator, _HeldPool]:
    sim = Simulator(SimulatorConfig(speed=30, seed=1, latency_jitter=0.0, enforce_rate_limit=False))
    pool = _HeldPool(workers)
    sim._pool = pool  # type: ignore[assignment]
    return sim, pool


def test_a_grid_renders_its_soonest_due_jobs_first_not_in_grid_order():
    sim, pool = _sim(workers=1)
    sim.submit("generate", {"prompt": "busy", "duration": 1})  # takes the only worker
    grid = [("720p", 10), ("480p", 10), ("720p", 2), ("480p", 2), ("480p", 6)]  # grid order
    for res, seconds in grid:
        sim.submit("generate", {"prompt": f"{res} {seconds}", "resolution": res, "duration": seconds})
    assert pool.started == ["busy"]  # the rest wait for the worker
    for _ in grid:
        pool.finish_next()
    by_latency = sorted(grid, key=lambda g: sim.jobs_by_prompt(f"{g[0]} {g[1]}")[0].latency)
    assert pool.started[1:] == [f"{res} {seconds}" for res, seconds in by_latency]
    assert pool.started[1:] == ["480p 2", "720p 2", "480p 6", "480p 10", "720p 10"]
    pool.finish_next()
    assert all(job.future is not None and job.future.done() and job.rendered_at is not None
               for job in sim.jobs.values())
    sim.close()


def test_renders_fill_every_worker_and_a_closed_simulator_cancels_the_queue():
    sim, pool = _sim(workers=2)
    for n in range(4):
        sim.submit("generate", {"prompt": f"job {n}", "duration": 1})
    assert len(pool.started) == 2
    pool.finish_next()
    assert len(pool.started) == 3
    queued = sim.jobs_by_prompt("job 3")[0]
    sim.close()
    assert queued.future is not None and queued.future.cancelled()


def test_progress_holds_at_99_for_the_configured_last_stretch():
    sim, _ = _sim(workers=4)
    rid = sim.submit("generate", {"prompt": "tail", "duration": 1})
    job = sim.jobs[rid]
    assert sim._pending(job, 0.5 * job.latency)[1] == {"status": "pending", "progress": 50}
    sim.config.update(progress_tail=0.2)
    assert sim._pending(job, 0.4 * job.latency)[1] == {"status": "pending", "progress": 50}
    assert sim._pending(job, 0.85 * job.latency)[1] == {"status": "pending", "progress": 99}
    sim.close()


def test_progress_can_be_biased_per_job_jittery_per_answer_and_the_latency_scaled():
    sim, _ = _sim(workers=4)
    plain = sim.jobs[sim.submit("generate", {"prompt": "as documented", "duration": 1})]
    sim.config.update(progress_bias=8.0, latency_factor=0.2)
    jobs = [sim.jobs[sim.submit("generate", {"prompt": f"biased {i}", "duration": 1})] for i in range(20)]
    biases = [job.progress_bias for job in jobs]
    assert all(-8 <= b <= 8 for b in biases) and max(biases) - min(biases) > 8  # drawn per job
    for job in jobs:
        assert job.latency == pytest.approx(0.2 * plain.latency)  # a service 5× faster than modelled
        readings = {sim._pending(job, 0.5 * job.latency)[1]["progress"] for _ in range(5)}
        assert readings == {int(50 + job.progress_bias)}  # the same bias in every answer, no jitter
    sim.config.update(progress_bias=0.0, progress_jitter=3.0)
    job = sim.jobs[sim.submit("generate", {"prompt": "jittery", "duration": 1})]
    readings = [sim._pending(job, 0.5 * job.latency)[1]["progress"] for _ in range(200)]
    assert min(readings) >= 47 and max(readings) <= 52 and len(set(readings)) >= 4  # per answer, within ±3
    assert sim._pending(job, 0.0)[1]["progress"] >= 0 and sim._pending(job, job.latency)[1]["progress"] <= 99
    sim.close()


def test_a_text_to_video_job_is_done_at_its_latency_while_its_render_still_runs():
    sim, pool = _sim(workers=1)
    rid = sim.submit("generate", {"prompt": "queued behind a busy machine", "duration": 2, "resolution": "720p"})
    job = sim.jobs[rid]
    status, body = sim.status(rid, "http://sim")
    assert body is not None and body["status"] == "pending"
    job.created -= job.latency  # its modelled latency is over; its render has not even started
    status, body = sim.status(rid, "http://sim")
    assert status == 200 and body is not None and body["status"] == "done", body
    assert body["video"]["duration"] == 2.0 and body["usage"]["cost_in_usd_ticks"] > 0
    assert job.ready_at == job.created + job.latency and sim.render_of(f"xai-video-{rid}.mp4") is job.future
    pool.finish_next()
    assert sim.render_of(f"xai-video-{rid}.mp4") is None  # rendered: the download is served at once
    # Rendered before anyone polled after its latency: still ready at its latency, as the benchmarks read it.
    early = sim.submit("generate", {"prompt": "rendered early", "duration": 1})
    pool.finish_next()
    assert sim.jobs[early].ready_at == sim.jobs[early].created + sim.jobs[early].latency
    sim.close()


def test_a_job_with_inputs_to_fetch_is_done_only_once_rendered():
    sim, pool = _sim(workers=1)
    rid = sim.submit("generate", {"prompt": "from a picture", "duration": 1,
                                  "image": {"url": "https://example.com/first-frame.png"}})
    job = sim.jobs[rid]
    job.created -= job.latency
    assert sim.status(rid, "http://sim")[1]["status"] == "pending"  # the fetch may still fail it
    sim.config.update(done_at_latency=False)
    plain = sim.submit("generate", {"prompt": "plain", "duration": 1})
    sim.jobs[plain].created -= sim.jobs[plain].latency
    assert sim.status(plain, "http://sim")[1]["status"] == "pending"  # switched off: as before
    sim.close()


def test_the_download_of_a_job_answered_done_waits_for_its_render():
    import threading
    import time

    import httpx

    from grok_nb.simulator import SimulatorServer
    from tests.hostile import tiny_mp4

    class _WritingPool(_HeldPool):
        def __init__(self, size: int):
            super().__init__(size)
            self.paths: list[str] = []

        def submit(self, payload: dict) -> concurrent.futures.Future:
            self.paths.append(payload["out_path"])
            return super().submit(payload)

    with SimulatorServer(SimulatorConfig(speed=300, seed=1, enforce_rate_limit=False)) as server:
        pool = _WritingPool(1)
        server.simulator._pool = pool  # type: ignore[assignment]
        headers = {"Authorization": "Bearer test"}
        rid = httpx.post(f"{server.url}/v1/videos/generations", json={"prompt": "slow render", "duration": 1},
                         headers=headers).json()["request_id"]
        deadline = time.monotonic() + 30
        while (body := httpx.get(f"{server.url}/v1/videos/{rid}", headers=headers).json())["status"] != "done":
            assert time.monotonic() < deadline
            time.sleep(0.02)
        got: list[httpx.Response] = []
        fetch = threading.Thread(target=lambda: got.append(httpx.get(body["video"]["url"], timeout=30)))
        fetch.start()
        fetch.join(0.5)
        assert fetch.is_alive() and not got  # the file is not there yet: the download waits
        with open(pool.paths[0], "wb") as out:
            out.write(tiny_mp4())
        pool.finish_next()
        fetch.join(10)
        assert got and got[0].status_code == 200 and got[0].content == tiny_mp4()

        # A render that crashes after done was answered: the download says so (a 5xx, retried), not "expired".
        rid = httpx.post(f"{server.url}/v1/videos/generations", json={"prompt": "doomed", "duration": 1},
                         headers=headers).json()["request_id"]
        while (body := httpx.get(f"{server.url}/v1/videos/{rid}", headers=headers).json())["status"] != "done":
            assert time.monotonic() < deadline
            time.sleep(0.02)
        next(f for f in pool.futures if not f.done()).set_result({"crashed": "the encoder died"})
        answer = httpx.get(body["video"]["url"], timeout=30)
        assert answer.status_code == 500 and "failed" in answer.json()["error"]
