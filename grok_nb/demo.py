"""The main job: a small, real experiment on the simulator, end to end."""

from __future__ import annotations

import time
from collections.abc import Callable
from importlib import resources
from pathlib import Path
from typing import Any

from .api.probe import probe
from .jobs.results import JobHandle
from .notebook.compare import Grid
from .notebook.tables import one_line, seconds, usd
from .sync_client import Client

PROMPTS = (
    "A red fox trotting through fresh snow in a birch forest at dawn",
    "A paper boat drifting down a rain-soaked city gutter, neon reflections",
    "Time-lapse of clouds rolling over a mountain ridge at sunset",
)
RESOLUTIONS = ("480p", "720p")
DURATION = 4


def sample_image() -> Path:
    """The image bundled with grok_nb (a lighthouse at dusk), for image→video."""
    return Path(str(resources.files("grok_nb") / "assets" / "lighthouse.jpg"))


def run_demo(client: Client | None = None, say: Callable[[str], Any] = print) -> Any:
    """Run 3 prompts × 2 resolutions, one image→video, one edit, one extension; write the grid's HTML report.

    Returns the runs' history rows.
    """
    client = client or Client()
    tag = time.strftime("demo-%Y%m%d-%H%M%S")
    started = time.monotonic()
    comparison = Grid(client, {"prompt": list(PROMPTS), "resolution": list(RESOLUTIONS), "duration": DURATION},
                      tags=[tag])
    total = comparison.estimate_usd
    total += client.estimate_cost("The beam sweeps over the sea as waves roll in", image=sample_image(), duration=5).usd
    say(f"Submitting {len(comparison.cells)} text→video jobs and 1 image→video job (estimated ${total:.2f} before "
        f"the edit and extension; {'simulated, nothing billed' if client.simulated else 'billed by xAI'}).")
    comparison.start()
    grid = [cell.handle for cell in comparison.cells if cell.handle is not None]
    image_job = client.generate("The beam sweeps over the sea as waves roll in", image=sample_image(),
                                duration=5, tags=[tag], wait=False)
    assert isinstance(image_job, JobHandle)  # wait=False: a handle
    first = grid[0].result()
    say(f"First video ready after {time.monotonic() - started:.1f} s; editing it and extending the image→video one.")
    edit = client.edit(first, "Make it night, with falling stars", tags=[tag], wait=False)
    extension = client.extend(image_job.result(), "A seagull glides past the lighthouse", duration=3,
                              tags=[tag], wait=False)
    assert isinstance(edit, JobHandle) and isinstance(extension, JobHandle)
    runs = [h.result() for h in grid] + [image_job.run, edit.result(), extension.result()]
    wall = time.monotonic() - started

    df = client.history()
    df = df[df["run_id"].isin([r.run_id for r in runs])].copy()  # newest first, as every history reads
    df["prompt"] = [one_line(p, 38) if isinstance(p, str) else p for p in df["prompt"]]
    df["checked"] = [str(probe(p)) if isinstance(p, str) and Path(p).is_file() else "—" for p in df["local_path"]]
    columns = ["kind", "prompt", "resolution", "video_duration", "status", "cost_actual_usd", "latency_s",
               "poll_count", "checked"]
    import pandas as pd  # heavy: loaded only to print the table

    shown = df[columns].copy()  # dollars and seconds as every view shows them
    shown["cost_actual_usd"] = [usd(v) for v in shown["cost_actual_usd"]]
    shown["latency_s"] = [seconds(v) for v in shown["latency_s"]]
    with pd.option_context("display.width", 200, "display.max_columns", 20, "display.max_colwidth", 40):
        say(shown.to_string(index=False))
    say(f"\n{len(runs)} runs, {sum(r.ok for r in runs)} done, total cost {usd(df['cost_actual_usd'].sum())} "
        f"(simulated: {client.simulated}), wall time {wall:.1f} s, "
        f"mean latency {df['latency_s'].mean():.1f} s.")
    comparison.wait()
    report = comparison.to_html(client.home / "reports" / f"{tag}.html",
                                title=f"grok_nb demo: {len(PROMPTS)} prompts × {len(RESOLUTIONS)} resolutions")
    say(f"MP4s are in {client.cache_dir}")
    say(f"HTML report of the comparison (open it in a browser): {report}")
    say(f"History: {client.store.path}  (grok-nb history --csv runs.csv exports it; tag {tag!r})")
    return df
