"""The history at scale: run with `.venv/bin/python benchmarks/bench_history.py [--runs 100000]`.

Builds a history of ``--runs`` runs in a temporary folder in a few seconds (``executemany`` in one
transaction, with a few real MP4s in the video cache that the done runs point at), then times, as
the median of ``--repeat`` rounds taken in turns:

- ``pandas.read_sql_query("SELECT * FROM runs", ...)`` on the same file: the yardstick;
- ``Client.history()``: the DataFrame with its dtypes (goal: ≤ 1.2× the yardstick);
- the notebook display of ``Studio.history()`` (IPython's mimebundle: text/plain and text/html),
  first with no poster cached, then again (goal: ≤ 300 KB, no slower than the yardstick);
- ``studio.browse()`` opening on the history (goal: only what it shows is sent).

It prints one Markdown table with the goals.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sqlite3
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

WORDS = ("fox snow dawn boat harbour clouds ridge lantern dark storm sea balloon valley misty lighthouse seagull "
         "glides past waves roll city night neon rain forest river mountain sunrise desert camel market crowd "
         "slow motion close up wide shot drone aerial cinematic golden hour").split()
USERS = ("ada@lab", "grace@lab", "alan@lab")


def _prompt(rng: random.Random) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(rng.randint(6, 30))).capitalize()


def make_videos(folder: Path, count: int = 24) -> list[Path]:
    """``count`` small real MP4s rendered by the simulator's renderer (the posters are cut from them)."""
    from grok_nb.simulator import render

    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i in range(count):
        out = folder / f"xai-video-{uuid.UUID(int=i)}.mp4"
        render.execute({"kind": "generate", "prompt": f"bench clip {i}", "model": "grok-imagine-video",
                        "generate_audio": False, "width": 212, "height": 120, "seconds": 1,
                        "image_url": None, "media_dir": str(folder), "out_path": str(out)})
        paths.append(out)
    return paths


def build(home: Path, runs: int, *, users: int = 1, seed: int = 16, videos: int = 12) -> Path:
    """A history of ``runs`` runs in ``home/history.sqlite`` (the client's layout); returns its path."""
    from grok_nb.history.store import RUN_COLUMNS, RunStore

    path = home / "history.sqlite"
    RunStore(path).close()  # the schema, through the migrations
    clips = make_videos(home / "videos", videos)
    rng = random.Random(seed)
    start = datetime(2026, 1, 1, tzinfo=timezone.utc)
    rows = []
    for i in range(runs):
        kind = rng.choices(("generate", "edit", "extend"), (90, 5, 5))[0]
        status = rng.choices(("done", "failed", "moderated", "expired", "rejected"), (88, 5, 3, 2, 2))[0]
        created = start + timedelta(seconds=30 * i + rng.random())
        latency = rng.uniform(12, 400) if status != "rejected" else None
        duration = rng.choice((1, 2, 4, 6, 8, 10, 15))
        resolution = rng.choice(("480p", "720p"))
        done = status == "done"
        tags = rng.choices(([], [f"exp-{i // 500}"], ["fox-grid", "review"]), (70, 25, 5))[0]
        row = {
            "run_id": uuid.UUID(int=rng.getrandbits(128)).hex, "request_id": str(uuid.UUID(int=rng.getrandbits(128))),
            "backend": "simulator", "base_url": "http://127.0.0.1:8000", "kind": kind, "model": "grok-imagine-video",
            "prompt": _prompt(rng), "duration": float(duration), "resolution": resolution, "aspect_ratio": "16:9",
            "image": "sha256:" + uuid.UUID(int=rng.getrandbits(128)).hex if rng.random() < 0.1 else None,
            "reference_images": json.dumps(["sha256:" + uuid.UUID(int=rng.getrandbits(128)).hex])
            if rng.random() < 0.05 else None,
            "generate_audio": 1, "input_video": None, "parent_run_id": None, "status": status,
            "progress": 100 if done else 0, "error_code": None if status in ("done", "moderated") else "internal_error",
            "error_message": None if status in ("done", "moderated") else "The video could not be generated.",
            "created_at": created.isoformat(timespec="microseconds"),
            "submitted_at": (created + timedelta(seconds=0.3)).isoformat(timespec="microseconds"),
            "finished_at": (created + timedelta(seconds=latency or 0.5)).isoformat(timespec="microseconds"),
            "latency_s": latency, "poll_count": rng.randint(1, 6),
            "cost_estimated_usd": duration * (0.05 if resolution == "480p" else 0.07),
            "cost_actual_usd": duration * (0.05 if resolution == "480p" else 0.07) if done else None,
            "video_url": f"http://127.0.0.1:8000/media/xai-video-{i}.mp4" if done else None,
            "video_duration": float(duration) if done else None,
            "local_path": str(clips[i % len(clips)]) if done else None, "tags": json.dumps(tags),
            "rating": rng.randint(1, 5) if rng.random() < 0.05 else None,
            "note": "keep this one" if rng.random() < 0.02 else None,
            "made_by": USERS[i % users], "owner": "bench:1", "winner": 1 if rng.random() < 0.01 else None,
        }
        rows.append(tuple(row.get(c) for c in RUN_COLUMNS))  # columns later migrations added: NULL
    with sqlite3.connect(path) as conn:
        conn.executemany(f"INSERT INTO runs ({', '.join(RUN_COLUMNS)}) VALUES ({', '.join('?' * len(RUN_COLUMNS))})",
                         rows)
    return path


def _timed(fn: Callable[[], Any]) -> tuple[float, Any]:
    started = time.perf_counter()
    out = fn()
    return time.perf_counter() - started, out


def _bundle(obj: Any) -> dict[str, Any]:
    """What a notebook gets for ``obj`` as a cell's value: IPython's mimebundle."""
    from IPython.core.formatters import DisplayFormatter

    data, _ = DisplayFormatter().format(obj)
    return data


def measure(home: Path, repeat: int = 3) -> dict[str, Any]:
    """Median timings (seconds) and sizes (bytes) of the yardstick, the client, the display and the browser."""
    import pandas as pd

    import grok_nb
    from grok_nb.notebook import posters

    path = home / "history.sqlite"
    client = grok_nb.Client(api_key="bench", base_url="http://127.0.0.1:9", home=home, quiet=True)
    studio = grok_nb.Studio(client=client)
    plain, ours, shown_warm, browse_s = [], [], [], []

    def read_plain() -> Any:
        with sqlite3.connect(path) as conn:
            return pd.read_sql_query("SELECT * FROM runs", conn)

    frame = studio.history()
    posters._poster.cache_clear()
    cold_s, bundle = _timed(lambda: _bundle(frame))
    for _ in range(repeat):  # in turns, so that a busy moment of the machine hits each alike
        plain.append(_timed(read_plain)[0])
        ours.append(_timed(client.history)[0])
        shown_warm.append(_timed(lambda: _bundle(frame))[0])
    browser_html = ""
    for _ in range(repeat):
        seconds, browser = _timed(lambda: studio.browse(live=False))
        browse_s.append(seconds)
        browser_html = browser.outputs()[0].get("text/html", "")
        # What the page receives for the list: the run list widget's state (its option labels).
        sent = len(json.dumps(browser.runs.get_state(), default=str).encode())
        browser.close()
    df = read_plain()
    return {
        "runs": len(df), "plain_s": statistics.median(plain), "history_s": statistics.median(ours),
        "frame_rows": len(frame), "newest_first": _newest_first(bundle.get("text/html", ""), frame),
        "display_cold_s": cold_s, "display_s": statistics.median(shown_warm),
        "display_bytes": sum(len(str(v).encode()) for v in bundle.values()),
        "html_bytes": len(bundle.get("text/html", "").encode()), "posters": bundle.get("text/html", "").count(
            "data:image/jpeg"), "browse_s": statistics.median(browse_s), "browser_static_bytes": len(
            browser_html.encode()), "browser_sent_bytes": sent,
    }


def _newest_first(html: str, frame: Any) -> bool:
    newest, oldest = frame["request_id"].iloc[frame["created_at"].argmax()], frame["request_id"].iloc[
        frame["created_at"].argmin()]
    return newest in html and (oldest not in html or html.index(newest) < html.index(oldest))


def table(m: dict[str, Any]) -> str:
    """The measurements as one Markdown table, with the goals."""
    kb = 1024
    ratio = m["history_s"] / m["plain_s"]
    rows = [
        ("`pandas.read_sql_query` of the runs table (yardstick)", f"{m['plain_s']:.3f} s", "—", ""),
        ("`Client.history()`", f"{m['history_s']:.3f} s ({ratio:.2f}×)", "≤ 1.2×", _ok(ratio <= 1.2)),
        ("`Studio.history()` display, size (text/plain + text/html)", f"{m['display_bytes'] / kb:,.0f} KB",
         "≤ 300 KB", _ok(m["display_bytes"] <= 300 * kb)),
        ("`Studio.history()` display, first draw (posters cut)", f"{m['display_cold_s']:.3f} s",
         "≤ yardstick", _ok(m["display_cold_s"] <= m["plain_s"])),
        ("`Studio.history()` display, again (posters cached)", f"{m['display_s']:.3f} s", "≤ yardstick",
         _ok(m["display_s"] <= m["plain_s"])),
        ("rows in the DataFrame / posters shown", f"{m['frame_rows']:,} / {m['posters']}", "every row", _ok(
            m["frame_rows"] == m["runs"])),
        ("newest run shown first", "yes" if m["newest_first"] else "no", "yes", _ok(m["newest_first"])),
        ("`studio.browse()` opens in", f"{m['browse_s']:.3f} s", "", ""),
        ("`studio.browse()` static copy", f"{m['browser_static_bytes'] / kb:,.0f} KB", "", ""),
    ]
    if m.get("browser_sent_bytes") is not None:
        rows.append(("`studio.browse()` run list sent to the page", f"{m['browser_sent_bytes'] / kb:,.0f} KB",
                     "what it shows", ""))
    lines = [f"| {m['runs']:,} runs | measured | goal | |", "|---|---|---|---|"]
    lines += [f"| {a} | {b} | {c} | {d} |" for a, b, c, d in rows]
    return "\n".join(lines)


def _ok(flag: bool) -> str:
    return "met" if flag else "**not met**"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--users", type=int, default=1, help="people who made the runs (the `who` column)")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="grok-nb-bench-history-") as tmp:
        os.environ["GROK_NB_HOME"] = tmp
        os.environ.pop("GROK_NB_HISTORY_URL", None)
        home = Path(tmp)
        seconds, _ = _timed(lambda: build(home, args.runs, users=args.users))
        size = sum(p.stat().st_size for p in home.glob("history.sqlite*")) / 2**20
        print(f"python {sys.version.split()[0]}, {os.cpu_count()} cores; built {args.runs:,} runs in {seconds:.1f} s "
              f"({size:.1f} MiB); median of {args.repeat}", flush=True)
        print(table(measure(home, args.repeat)))


if __name__ == "__main__":
    main()
