"""The simulator's latency is each job's own (kind, resolution, duration), not its place in a grid,
and its progress can hold at 99 % for a last stretch as the service's does."""

from __future__ import annotations

import concurrent.futures

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
