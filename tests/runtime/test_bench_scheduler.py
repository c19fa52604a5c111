"""The scheduler benchmark's harness runs end to end (a smoke test: no goal numbers asserted),
and the simulator knobs it relies on do what they say."""

from __future__ import annotations

import importlib.util
import sys
import time
from pathlib import Path

import httpx
import pytest

from grok_nb.api.probe import probe
from tests.conftest import SPEED


def _harness():
    path = Path(__file__).resolve().parents[2] / "benchmarks" / "bench_scheduler.py"
    spec = importlib.util.spec_from_file_location("bench_scheduler", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault("bench_scheduler", module)  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


def test_latency_ranges_ready_time_render_scale_and_per_key_counts(sim):
    sim.config.update(latency_ranges={"480p": [30, 36]}, render_scale=0.5)
    headers = {"Authorization": "Bearer key-one"}
    with httpx.Client(base_url=sim.url, headers=headers) as http:
        request_id = http.post("/v1/videos/generations", json={"prompt": "ranges", "duration": 1}).json()["request_id"]
        job = sim.simulator.jobs[request_id]
        assert 30 / SPEED <= job.latency <= 36 / SPEED and job.owner == "key-one"
        while (answer := http.get(f"/v1/videos/{request_id}").json())["status"] != "done":
            time.sleep(0.02)
        seen = time.monotonic()
        media = httpx.get(answer["video"]["url"], timeout=60)  # waits for the render
    assert job.ready_at is not None and job.created + job.latency <= job.ready_at <= seen
    counts = sim.simulator.by_key["key-one"]
    assert counts[("submit", 200)] == 1 and counts[("poll", 200)] >= 1
    path = Path(__file__).parent / "_scaled.mp4"
    try:
        path.write_bytes(media.content)
        info = probe(path)
        assert (info.width, info.height) == (424, 240) and info.duration == pytest.approx(1.0)  # 848×480 halved
    finally:
        path.unlink(missing_ok=True)


def test_the_done_detector_leaves_the_answer_readable(sim):
    bench = _harness()

    async def go():
        detector = bench.DoneDetector()
        async with httpx.AsyncClient(base_url=sim.url, transport=detector,
                                     headers={"Authorization": "Bearer k"}) as http:
            submitted = await http.post("/v1/videos/generations", json={"prompt": "detect", "duration": 1})
            request_id = submitted.json()["request_id"]
            while True:
                answer = await http.get(f"/v1/videos/{request_id}")
                if answer.json()["status"] == "done":  # the body the detector read, read again
                    return detector, request_id, time.monotonic()

    import asyncio
    detector, request_id, after = asyncio.run(go())
    assert list(detector.first_done) == [request_id] and detector.first_done[request_id] <= after


@pytest.mark.slow
def test_the_harness_runs_three_strategies_side_by_side():
    bench = _harness()
    # Short latencies (1–3 s at ×20) keep this a smoke test; the real run uses the documented ones.
    results = bench.run_benchmark(jobs=6, speed=20, latency_ranges={"480p": (20, 40), "720p": (30, 60)})
    assert [r.strategy for r in results] == list(bench.STRATEGIES)
    for r in results:
        assert r.jobs == 6 and r.accepted == 6 and r.done == 6 and r.downloads == 6
        assert r.submits >= r.accepted and r.polls >= r.done
        assert r.answers_429 <= r.submits - r.accepted + r.polls
        assert r.requests_per_job == pytest.approx((r.submits + r.polls) / 6)
        assert len(r.lags) == 6 and all(lag >= 0 for lag in r.lags)  # never seen before it was ready
        assert r.wall_s > 0
    text = bench.table(results)
    assert text.count("\n") == 1 + len(results) and "grok_nb" in text
    assert bench.verdict(results).startswith("grok_nb")


@pytest.mark.parametrize("row", ["99 % for the last 10 %", "biased ±8 and jitter ±3", "no progress at all"])
def test_the_planner_model_runs_every_job_to_done(row):
    bench = _harness()
    requests, mean_lag, p95_lag = bench.planner_model(bench.FAULTS[row], jobs=6, seed=1)
    assert 2.0 <= requests <= 15.0 and 0.0 <= mean_lag <= p95_lag  # a smoke test: the goal is the benchmark's


@pytest.mark.slow
def test_the_fault_rows_run_and_count_jobs_given_up():
    bench = _harness()
    # Short latencies (1–3 s at ×20) keep this a smoke test; the deadline row gives up on the 720p jobs.
    rows = bench.fault_table(jobs=4, speed=20, rows=("progress jitter, ±3 points", "deadline 40 s < documented, "
                                                     "latency 0.2×"), latency_ranges={"480p": (20, 40),
                                                                                        "720p": (400, 450)})
    (_, jittery), (_, short) = rows
    assert jittery.done == 4 and jittery.given_up == jittery.given_up_done == 0
    assert short.done == 2 and short.given_up == 2 and short.given_up_done == 0  # 720p × 0.2 = 80–90 s > 40 s
    text = bench.fault_rows_table(rows)
    assert text.count("\n") == 1 + len(rows) and "given up" in text


def test_the_warm_start_read_is_timed():
    seconds, taken = _harness().prior_read_time(runs=600, repeat=1)
    assert taken == 600 and seconds > 0  # fewer runs than the client reads: every one
