"""Benchmarks that print numbers (no assertions): run with `.venv/bin/python benchmarks/bench_core.py`.

1. Poll latency while videos render (the server must stay responsive).
2. Render throughput: seconds of video encoded per wall second, 480p and 720p.
3. Peak memory of a render worker for the longest clip (15 s 720p).
4. Client overhead: N concurrent 1 s jobs end to end through one client on the simulator.
5. Import time of the client alone (a fresh interpreter), and that it loads no widget module.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

import httpx

os.environ.setdefault("GROK_NB_HOME", tempfile.mkdtemp(prefix="grok-nb-bench-"))

from grok_nb import Client  # noqa: E402
from grok_nb.simulator import SimulatorConfig, SimulatorServer  # noqa: E402

AUTH = {"Authorization": "Bearer bench"}


def poll_latency(server: SimulatorServer) -> None:
    server.config.update(speed=2.0, enforce_rate_limit=False)
    ids = [httpx.post(f"{server.url}/v1/videos/generations", headers=AUTH,
                      json={"prompt": f"load {i}", "duration": 15, "resolution": "720p"}).json()["request_id"]
           for i in range(2)]
    with httpx.Client(headers=AUTH) as http:
        times = []
        for _ in range(200):
            t0 = time.perf_counter()
            http.get(f"{server.url}/v1/videos/{ids[0]}")
            times.append((time.perf_counter() - t0) * 1000)
    times.sort()
    print(f"poll latency while 2 × 15 s 720p render: p50 {statistics.median(times):.2f} ms, "
          f"p95 {times[189]:.2f} ms, max {times[-1]:.2f} ms (200 polls)")


def render_throughput() -> None:
    from grok_nb.api.validation import frame_size
    from grok_nb.simulator.render import RenderSpec, render

    with tempfile.TemporaryDirectory() as tmp:
        for res in ("480p", "720p"):
            w, h = frame_size(res, "16:9")
            t0, c0 = time.perf_counter(), _cpu()
            render(RenderSpec("generate", "throughput", w, h, 10.0), f"{tmp}/{res}.mp4")
            wall, cpu = time.perf_counter() - t0, _cpu() - c0
            # CPU seconds (all threads) as well: on a shared machine they vary less than wall time.
            print(f"render {res} 10 s clip: {wall:.2f} s wall, {cpu:.2f} s CPU, {10 / wall:.1f} video-seconds "
                  f"per second, {os.path.getsize(f'{tmp}/{res}.mp4') / 1e6:.2f} MB")


def _cpu() -> float:
    import resource

    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def worker_memory() -> None:
    code = ("import json,resource,tempfile; from grok_nb.simulator.render import RenderSpec, render;"
            "d=tempfile.mkdtemp(); render(RenderSpec('generate','memory',1280,720,15.0), d+'/m.mp4');"
            "print(json.dumps(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    peak_kib = json.loads(out.stdout)
    print(f"render worker peak RSS for 15 s 720p: {peak_kib / 1024:.0f} MiB")


def client_import_time() -> None:
    code = ("import json, sys, time; t = time.perf_counter(); import grok_nb; grok_nb.Client; "
            "s = time.perf_counter() - t; widgets = ('ipywidgets', 'anywidget', 'matplotlib', 'ipykernel'); "
            "print(json.dumps([s, [m for m in widgets if m in sys.modules]]))")
    times, loaded = [], []
    for _ in range(5):
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
        seconds, loaded = json.loads(out.stdout)
        times.append(seconds)
    print(f"import grok_nb; grok_nb.Client: {statistics.median(times) * 1000:.0f} ms (median of 5 fresh interpreters), "
          f"widget modules loaded: {', '.join(loaded) or 'none'}")


def client_overhead(server: SimulatorServer, n: int = 12) -> None:
    server.config.update(speed=300.0, enforce_rate_limit=True)
    with Client(api_key="bench", base_url=server.url, rate_limit=300, poll_interval=0.02, quiet=True) as c:
        t0 = time.perf_counter()
        handles = [c.generate(f"bench {i}", duration=1, wait=False) for i in range(n)]
        runs = [h.result() for h in handles]
        wall = time.perf_counter() - t0
    polls = sum(r.polls for r in runs)
    print(f"{n} concurrent 1 s jobs: {wall:.2f} s wall, {sum(r.ok for r in runs)} ok, {polls} polls, "
          f"mean latency {statistics.mean(r.latency_s for r in runs):.2f} s")


if __name__ == "__main__":
    print(f"python {sys.version.split()[0]}, {os.cpu_count()} cores")
    client_import_time()
    render_throughput()
    worker_memory()
    with SimulatorServer(SimulatorConfig()) as server:
        client_overhead(server)  # first: poll_latency leaves long renders busy in the workers
        poll_latency(server)
