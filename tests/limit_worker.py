"""One notebook-like process: N jobs on one key through the shared limiter; prints a JSON summary.

    python tests/limit_worker.py BASE_URL KEY RATE JOBS HOME START SHARED_URL|shared|local [SPEED]

With SPEED, the client polls as it does by default on a simulator at that speed (benchmarks);
without it, with the tests' quick timings.

``shared`` is the client's default (a SQLite budget under HOME); a URL puts it in Redis or PostgreSQL;
``local`` keeps one limiter per process, as grok_nb did before the budget was shared.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from pathlib import Path

from grok_nb import AsyncClient
from grok_nb.errors import GrokError
from grok_nb.jobs.policy import PollPolicy
from grok_nb.runtime.ratelimit import make_limiter


async def main(base_url: str, key: str, rate: float, jobs: int, home: str, start: float, mode: str,
               speed: float | None = None) -> dict:
    if speed:
        policy = PollPolicy(deadline=600.0).scaled(speed)
    else:
        policy = PollPolicy(interval=0.1, max_interval=0.4, retry_base=0.05, retry_max=1.0, deadline=120.0)
    limiter = make_limiter(key, rate, Path(home), None if mode == "shared" else mode)
    client = AsyncClient(api_key=key, base_url=base_url, rate_limit=rate, policy=policy, home=home, quiet=True,
                         limiter=limiter)
    time.sleep(max(0.0, start - time.time()))  # every process starts at the same instant
    t0 = time.monotonic()
    results = await asyncio.gather(*(client.generate(f"a lighthouse, take {i}", duration=1, resolution="480p")
                                     for i in range(jobs)), return_exceptions=True)
    wall = time.monotonic() - t0
    errors = [f"{type(r).__name__}: {r}" for r in results if isinstance(r, BaseException)]
    done = sum(1 for r in results if not isinstance(r, BaseException) and r.ok)
    await client.aclose()  # closes the limiter too
    return {"done": done, "errors": errors, "wall_s": wall}


if __name__ == "__main__":
    url, key, rate, jobs, home, start, mode = sys.argv[1:8]
    speed = float(sys.argv[8]) if len(sys.argv) > 8 else None
    try:
        summary = asyncio.run(main(url, key, float(rate), int(jobs), home, float(start), mode, speed))
    except GrokError as exc:
        summary = {"done": 0, "errors": [f"{type(exc).__name__}: {exc}"], "wall_s": 0.0}
    print(json.dumps(summary))
