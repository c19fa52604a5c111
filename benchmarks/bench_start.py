"""How long does starting a grid hold the caller? Run with `.venv/bin/python benchmarks/bench_start.py`.

For grids of 16, 256 and 1,024 cells (``studio.compare(prompt=[...], duration=1)``, confirmed, well within
budget), single jobs and one batch alike, it prints the wall time until ``compare()`` returns and the CPU
this process spent in it, in all and per cell. Starting N jobs should cost O(N): the estimate and the budget
are decided before ``compare()`` returns, the rows are written in one go, and the submits (or the batch's
calls) go out in the background. A flat "CPU per cell" column is the goal.

Each grid runs on a fresh embedded simulator (render scale 0.1, ×300) and a fresh history; after the
measurement the client is closed (its jobs stay resumable in that throw-away history).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

SIZES = (16, 256, 1024)


def one(cells: int, batch: bool) -> tuple[float, float]:
    """(seconds until compare() returned, CPU seconds of this process meanwhile) for a grid of ``cells``."""
    import grok_nb

    home = tempfile.mkdtemp(prefix="grok-nb-bench-start-")
    os.environ["GROK_NB_HOME"] = home
    studio = grok_nb.Studio(simulator_speed=300, quiet=True, budget_usd=cells * 1.0, confirm_above_usd=None)
    prompts = [f"A lighthouse, take {i}" for i in range(cells)]
    try:
        cpu0, t0 = time.process_time(), time.perf_counter()
        grid = studio.compare(prompt=prompts, duration=1, display=False, batch=batch)
        wall, cpu = time.perf_counter() - t0, time.process_time() - cpu0
        assert len(grid.cells) == cells and grid.started_at is not None
        grid.stop()
        return wall, cpu
    finally:
        studio.client.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=list(SIZES))
    options = parser.parse_args()
    os.environ.setdefault("GROK_NB_SIMULATOR_SCALE", "0.1")
    print(f"python {sys.version.split()[0]}, {os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f}")
    print("| cells | sent as | compare() returned after | CPU in it | CPU per cell |")
    print("|---:|---|---:|---:|---:|")
    for batch in (False, True):
        for cells in options.sizes:
            wall, cpu = one(cells, batch)
            print(f"| {cells:,} | {'one batch' if batch else 'single jobs'} | {wall:.2f} s | {cpu:.2f} s | "
                  f"{1000 * cpu / cells:.2f} ms |", flush=True)


if __name__ == "__main__":
    main()
