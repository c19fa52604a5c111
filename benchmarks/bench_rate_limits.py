"""A limit the client cannot see: how many 429s a bucket draws, and how long the work takes, when the service allows
less than the client was told (another program on the key, a judge model's tokens per minute, a lower tier).

Run: `.venv/bin/python benchmarks/bench_rate_limits.py [--speed 20] [--cut 0.5]` (about a minute and a half;
``--cut`` tries another share of the pace kept after a 429 than grok_nb's).

Two buckets, each against a loopback simulator that allows a quarter of the client's configured rate:
- judge: 16 finished videos judged with ``client.judge_many`` (the simulator's judge model takes 0.1 calls a
  second; the client is told 0.4);
- videos: 48 one-second text→video jobs (the simulator takes 1 request a second; the client is told 4).

Each with the service's ``Retry-After`` sent or left out, and with the bucket's pace as grok_nb keeps it (a 429
takes 30 % off it and holds the bucket; good answers win it back) or held fixed (each 429 only delays the request it
answered). Times are in the simulator's seconds. Nothing is
asserted.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

KEY = "xai-bench-rate-limits-0000000000000000"
JOBS = 16
#: Video jobs: enough that their submits outrun the simulator's burst allowance (a second's worth of requests).
VIDEO_JOBS = 48
#: What the service allows, and what the client is told (requests per simulated second).
JUDGE_ALLOWED, VIDEO_ALLOWED, TOLD = 0.1, 1.0, 4.0


@contextmanager
def fixed_pace(on: bool) -> Any:
    """With ``on``: no 429 slows a bucket or holds it without a Retry-After (each delays its own request only)."""
    from grok_nb.runtime import sender

    kept = sender.rate_limited
    if on:
        sender.rate_limited = lambda problem: False  # type: ignore[assignment]
    try:
        yield
    finally:
        sender.rate_limited = kept


def run(bucket: str, retry_after: bool, fixed: bool, speed: float) -> dict[str, Any]:
    """One row: ``bucket`` is judge or videos."""
    from grok_nb import Client
    from grok_nb.simulator import SimulatorConfig, SimulatorServer

    home = Path(tempfile.mkdtemp(prefix="grok-nb-bench-429-"))
    server = SimulatorServer(SimulatorConfig(speed=speed, retry_after_header=retry_after, seed=7,
                                             judge_rate_limit=JUDGE_ALLOWED,
                                             rate_limit=VIDEO_ALLOWED if bucket == "videos" else 100.0))
    server.start()
    sim = server.simulator
    told = TOLD * VIDEO_ALLOWED if bucket == "videos" else 100.0
    client = Client(api_key=KEY, base_url=server.url, home=home, quiet=True, simulator_speed=speed,
                    rate_limit=told * speed, judge_rate_limit=TOLD * JUDGE_ALLOWED * speed)
    try:
        with fixed_pace(fixed):
            prompts = [f"A lighthouse at dusk, take {i}" for i in range(JOBS if bucket == "judge" else VIDEO_JOBS)]
            started = time.monotonic()
            handles = client.start_many([{"prompt": p, "duration": 1, "resolution": "480p"} for p in prompts])
            runs = [h.result(timeout=600) for h in handles]
            wall = time.monotonic() - started
            if bucket == "judge":
                sim.requests.clear()
                started = time.monotonic()
                judged = client.judge_many(runs)
                wall = time.monotonic() - started
                ok = sum(j.ok for j in judged)
                calls = [s for m, p, s in list(sim.requests) if m == "POST" and p == "/v1/responses"]
            else:
                ok = sum(r.ok for r in runs)
                calls = [s for m, p, s in list(sim.requests) if p.startswith("/v1/videos")]
    finally:
        client.close()
        server.stop()
    limited = sum(1 for s in calls if s == 429)
    return {"bucket": bucket, "retry_after": "sent" if retry_after else "left out",
            "pace": "fixed" if fixed else "learned", "ok": ok, "jobs": len(prompts) if bucket == "videos" else JOBS,
            "requests": len(calls), "429s": limited,
            "wall_s": wall * speed}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--speed", type=float, default=20.0, help="the simulator's clock (default 20x)")
    parser.add_argument("--cut", type=float, default=None, help="the share of the pace a 429 leaves (grok_nb: 0.7)")
    args = parser.parse_args()
    if args.cut is not None:
        from grok_nb.jobs.policy import Pace

        floor, _, regain = Pace.__init__.__defaults__ or (1 / 64, 0.7, 1.05)
        Pace.__init__.__defaults__ = (floor, args.cut, regain)
    print(f"{JOBS} judge calls (the service allows {JUDGE_ALLOWED:g}/s, the client is told {TOLD * JUDGE_ALLOWED:g}/s) "
          f"and {VIDEO_JOBS} video jobs (allowed {VIDEO_ALLOWED:g}/s, told {TOLD * VIDEO_ALLOWED:g}/s); simulator at "
          f"×{args.speed:g}, times in its seconds" + (f"; a 429 leaves {args.cut:g} of the pace" if args.cut else "")
          + "\n")
    print("| bucket | Retry-After | pace | done | requests | 429s | 429s per done | wall (s) |")
    print("|---|---|---|---:|---:|---:|---:|---:|")
    for bucket in ("judge", "videos"):
        for retry_after in (True, False):
            for fixed in (True, False):
                r = run(bucket, retry_after, fixed, args.speed)
                print(f"| {r['bucket']} | {r['retry_after']} | {r['pace']} | {r['ok']}/{r['jobs']} | {r['requests']} | "
                      f"{r['429s']} | {r['429s'] / max(1, r['ok']):.2f} | {r['wall_s']:.0f} |", flush=True)


if __name__ == "__main__":
    main()
