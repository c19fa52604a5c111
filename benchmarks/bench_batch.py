"""A sweep as single jobs and as one batch, on one key: what each costs the key's rate limit.

    .venv/bin/python benchmarks/bench_batch.py [--jobs 24] [--speed 30]

Both run on one simulator enforcing the key's limit (1 request per simulated second). Single
jobs go through the client's scheduler (submits and polls share that limit); the batch's calls
do not count against it. Requests are counted at the simulator.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from collections import Counter

from grok_nb import Client
from grok_nb.simulator import SimulatorConfig, SimulatorServer
from grok_nb.simulator.batch import batch_book


def _count(server: SimulatorServer, since: int) -> Counter[str]:
    kinds: Counter[str] = Counter()
    for method, path, status in list(server.simulator.requests)[since:]:
        if path.startswith("/v1/batches"):
            kinds["batch calls"] += 1
        elif path.startswith("/v1/videos/") and method == "POST":
            kinds["submits"] += 1
        elif path.startswith("/v1/videos/"):
            kinds["polls"] += 1
        elif path.startswith("/media/"):
            kinds["downloads"] += 1
        if status == 429:
            kinds["429s"] += 1
    return kinds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=24)
    parser.add_argument("--speed", type=float, default=30.0)
    args = parser.parse_args()
    config = SimulatorConfig(speed=args.speed, seed=11, render_scale=0.25, latency_jitter=0.0)
    with SimulatorServer(config) as server:
        batch_book(server.simulator).turnaround_s = 120.0  # the batch finishes within 2 simulated minutes
        prompts = [f"Sweep {i}" for i in range(args.jobs)]
        rows = []
        with Client(api_key="bench-key", base_url=server.url, home=tempfile.mkdtemp(), quiet=True) as client:
            start, t0 = len(server.simulator.requests), time.monotonic()
            handles = client.start_many([{"prompt": p, "duration": 1} for p in prompts])
            runs = [h.result() for h in handles]
            rows.append(("single jobs", runs, _count(server, start), time.monotonic() - t0))
            start, t0 = len(server.simulator.requests), time.monotonic()
            with client.batch(name="bench") as b:
                for p in prompts:
                    b.generate(p + " (batch)", duration=1)
            runs = b.wait()
            rows.append(("one batch", runs, _count(server, start), time.monotonic() - t0))
        limited = server.simulator.by_key.get("bench-key", Counter())
        print(f"{args.jobs} jobs of 1 s at 480p, simulator ×{args.speed:g}, key limit 1 request per simulated second")
        print("| run as | done | submits | polls | batch calls | downloads | 429s "
              "| requests/job on the key's limit | wall s |")
        print("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
        for name, runs, kinds, wall in rows:
            on_limit = (kinds["submits"] + kinds["polls"]) / len(runs)
            print(f"| {name} | {sum(r.ok for r in runs)} | {kinds['submits']} | {kinds['polls']} | "
                  f"{kinds['batch calls']} | {kinds['downloads']} | {kinds['429s']} | {on_limit:.2f} | {wall:.1f} |")
        print("requests the simulator counted against the key:", sum(limited.values()))


if __name__ == "__main__":
    main()
