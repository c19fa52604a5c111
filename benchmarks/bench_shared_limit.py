"""One key, several processes: one process × 48 jobs vs four × 12, against a simulator that enforces the key's limit.

Run: `.venv/bin/python benchmarks/bench_shared_limit.py [--speed 30] [--redis URL] [--postgres URL]`.
Prints requests per job (submit, polls and the download), 429 answers, failed jobs and wall time for
each set-up, the median of ``--repeats`` runs (the machine is shared: single runs vary by 2×). No assertions.
The rate is xAI's 1 request/s, in the simulator's time (``speed`` requests per wall second).
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from grok_nb.simulator import SimulatorConfig, SimulatorServer  # noqa: E402

WORKER = ROOT / "tests" / "limit_worker.py"
KEY = "xai-BENCHKEY0123456789"


def run(procs: int, jobs: int, mode: str, speed: float) -> dict:
    """``procs`` processes × ``jobs`` jobs on one key; what the simulator saw and how long it took."""
    config = SimulatorConfig(speed=speed, seed=3, enforce_rate_limit=True, rate_limit=1.0)
    home = Path(tempfile.mkdtemp(prefix="grok-nb-bench-shared-"))
    with SimulatorServer(config) as sim:
        start = time.time() + 4.0
        running = [subprocess.Popen([sys.executable, str(WORKER), sim.url, KEY, str(speed), str(jobs), str(home),
                                     repr(start), mode, str(speed)], stdout=subprocess.PIPE, text=True)
                   for _ in range(procs)]
        results = [json.loads(p.communicate(timeout=1800)[0].strip().splitlines()[-1]) for p in running]
        statuses = [s for _, _, s in list(sim.simulator.requests)]
    total = procs * jobs
    return {"requests_per_job": len(statuses) / total, "429s": statuses.count(429),
            "done": sum(r["done"] for r in results), "failed": total - sum(r["done"] for r in results),
            "wall_s": max(r["wall_s"] for r in results)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--speed", type=float, default=10.0)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--redis", default=None, help="also run four processes on this Redis budget")
    parser.add_argument("--postgres", default=None, help="also run four processes on this PostgreSQL budget")
    args = parser.parse_args()
    setups = [("1 process × 48, own limiter", 1, 48, "local"),
              ("4 processes × 12, own limiters (before)", 4, 12, "local"),
              ("1 process × 48, shared SQLite budget", 1, 48, "shared"),
              ("4 processes × 12, shared SQLite budget", 4, 12, "shared")]
    if args.redis:
        setups.append(("4 processes × 12, shared Redis budget", 4, 12, args.redis))
    if args.postgres:
        setups.append(("4 processes × 12, shared PostgreSQL budget", 4, 12, args.postgres))
    print(f"simulator speed {args.speed:g}: the key's limit is {args.speed:g} requests per wall second; "
          f"median of {args.repeats} runs\n")
    print("| set-up | requests/job | 429s | jobs done | failed | wall s |\n|---|---:|---:|---:|---:|---:|")
    for label, procs, jobs, mode in setups:
        runs = [run(procs, jobs, mode, args.speed) for _ in range(args.repeats)]
        r = {k: statistics.median(x[k] for x in runs) for k in runs[0]}
        print(f"| {label} | {r['requests_per_job']:.2f} | {r['429s']:g} | {r['done']:g} | {r['failed']:g} | "
              f"{r['wall_s']:.1f} |", flush=True)


if __name__ == "__main__":
    main()
