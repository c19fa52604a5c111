"""What measuring a video costs: `.venv/bin/python benchmarks/bench_measure.py` (about a minute and a half).

Prints numbers, asserts nothing:

1. Per clip size and length (480p, 720p, 1080p × 4 s and 10 s, rendered on the spot by the simulator's
   renderer at full scale, with audio): the CPU seconds of ``grok_nb.measure`` against a plain PyAV decode of
   every frame to RGB (``frame.to_ndarray(format="rgb24")``), and their ratio. One more row: the 720p 10 s clip
   re-encoded by x264 with B-frames, CABAC and deblocking (PyAV), as encoders other than the simulator's make
   them. CPU seconds are the process's user + system time (every thread), the median of ``--repeat`` runs taken
   in turns; on a machine shared with other work they vary less than wall time.
2. A 12-cell grid of ``generate()`` jobs (notebook 02's: 3 prompts × 480p/720p × 2 s/4 s) on the embedded
   simulator through ``grok_nb.Client``, each downloaded file then measured: the grid's wall time, the total
   CPU of measuring the 12 files, and the share of the grid's wall time that is.
3. The goal: at most 1 s of one core per 10-s 720p clip, and a ratio of at most 1.0 on every clip.

Options: ``--repeat N`` (default 3), ``--no-grid`` (skip part 2), ``--speed X`` (the simulator's time factor for
the grid, default 30 as in the notebooks).
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("GROK_NB_HOME", tempfile.mkdtemp(prefix="grok-nb-bench-"))
os.environ.pop("XAI_API_KEY", None)  # the grid runs on the embedded simulator, never on the real service
os.environ.pop("GROK_NB_BASE_URL", None)

import av  # noqa: E402

import grok_nb  # noqa: E402
from grok_nb.api.validation import frame_size  # noqa: E402
from grok_nb.simulator.render import RenderSpec, render  # noqa: E402

SIZES = ("480p", "720p", "1080p")
LENGTHS = (4.0, 10.0)
PROMPT = "A red fox trotting through fresh snow at dawn, then cut to a storm over the sea"
GRID_PROMPTS = ("A red fox trotting through fresh snow at dawn",
                "A paper boat drifting down a rain-soaked street, neon reflections",
                "Clouds rolling over a mountain ridge at sunset")


def cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def plain_decode(path: Path) -> None:
    """The yardstick: every frame decoded and converted to RGB, as a PyAV user writes it."""
    with av.open(str(path)) as container:
        for frame in container.decode(video=0):
            frame.to_ndarray(format="rgb24")


def cpu_of(fn, *args) -> float:
    start = cpu()
    fn(*args)
    return cpu() - start


def reencode(src: Path, dst: Path) -> Path:
    """The clip as a common encoder writes it: x264 with B-frames, CABAC and deblocking (no audio)."""
    with av.open(str(src)) as inp, av.open(str(dst), "w", format="mp4") as out:
        stream = inp.streams.video[0]
        video = out.add_stream("libx264", rate=24, options={"preset": "veryfast", "crf": "23", "bframes": "3"})
        video.width, video.height, video.pix_fmt = stream.width, stream.height, "yuv420p"
        for i, frame in enumerate(inp.decode(stream)):
            again = av.VideoFrame.from_ndarray(frame.to_ndarray(format="rgb24"), format="rgb24")
            again.pts = i
            out.mux(video.encode(again))
        out.mux(video.encode())
    return dst


def clip_table(repeat: int) -> list[tuple[str, float, float, float]]:
    rows = []
    print(f"{'clip':<34} {'frames':>6} {'measure CPU s':>14} {'plain decode CPU s':>19} {'ratio':>6}")
    with tempfile.TemporaryDirectory() as tmp:
        clips = []
        for res in SIZES:
            for seconds in LENGTHS:
                w, h = frame_size(res, "16:9")
                path = Path(tmp) / f"{res}-{seconds:g}.mp4"
                render(RenderSpec("generate", PROMPT, w, h, seconds, model="grok-imagine-video"), str(path))
                clips.append((f"{res} {seconds:g} s ({w}×{h}, simulator)", path))
        clips.append(("720p 10 s (x264 B-frames, no audio)", reencode(Path(tmp) / "720p-10.mp4",
                                                                  Path(tmp) / "720p-10-bframes.mp4")))
        grok_nb.measure(clips[0][1])  # imports and first-use costs are not the clip's
        for label, path in clips:
            mine, plain = [], []
            for _ in range(repeat):  # in turns, so a burst of load on the machine hits both
                mine.append(cpu_of(grok_nb.measure, path))
                plain.append(cpu_of(plain_decode, path))
            m, p = statistics.median(mine), statistics.median(plain)
            frames = grok_nb.api.probe.probe(path).frames
            rows.append((label, m, p, m / p))
            print(f"{label:<34} {frames:>6} {m:>14.3f} {p:>19.3f} {m / p:>6.2f}")
    return rows


def grid(speed: float) -> None:
    runs = []
    with grok_nb.Client(simulator_speed=speed, quiet=True) as client:
        started = time.perf_counter()
        handles = [client.generate(p, resolution=r, duration=d, wait=False)
                   for p in GRID_PROMPTS for r in ("480p", "720p") for d in (2, 4)]
        runs = [h.result(timeout=600) for h in handles]
        wall = time.perf_counter() - started
    cost = 0.0
    print(f"\n{'cell':<48} {'measure CPU s':>13} {'bright':>6} {'motion':>7} {'cuts':>4} {'loud dBFS':>9}")
    for run in runs:
        run.raise_for_status()
        spent = cpu()
        m = grok_nb.measure(run.path)
        spent = cpu() - spent
        cost += spent
        label = f"{run.prompt[:28]} {m.height}p {m.duration_s:g} s"
        print(f"{label:<48} {spent:>13.3f} {m.brightness:>6.2f} {m.motion:>7.4f} {m.cuts:>4} {m.loudness_dbfs:>9.1f}")
    print(f"12-cell grid on the embedded simulator (speed ×{speed:g}): {wall:.2f} s wall; measuring its 12 files: "
          f"{cost:.3f} s CPU, {100 * cost / wall:.1f} % of the grid's wall time")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--no-grid", action="store_true")
    parser.add_argument("--speed", type=float, default=30.0)
    args = parser.parse_args()
    print(f"python {sys.version.split()[0]}, PyAV {av.__version__}, {os.cpu_count()} cores, "
          f"load average {os.getloadavg()[0]:.1f}; median of {args.repeat} runs in turns")
    rows = clip_table(args.repeat)
    if not args.no_grid:
        grid(args.speed)
    at_720 = next(m for label, m, _, _ in rows if label.startswith("720p 10 s (1280"))
    worst = max(rows, key=lambda r: r[3])
    print(f"\ngoal: ≤ 1 s of one core per 10-s 720p clip: {at_720:.3f} s, "
          f"{'meets it' if at_720 <= 1.0 else 'misses it'}")
    print(f"goal: ratio ≤ 1.0 on every clip: worst {worst[3]:.2f} ({worst[0]}), "
          f"{'meets it' if worst[3] <= 1.0 else 'misses it'}")
    print(f"load average at the end {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
