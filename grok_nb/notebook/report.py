"""Self-contained HTML reports: open in any browser, no Jupyter server needed.

The report draws the same tile state and runs the same script as the notebook's grid (its ESM is
inlined, never fetched), so it keeps the 2-D layout and the synchronized playback.
"""

from __future__ import annotations

import base64
import html
import json
import shutil
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from ..api.probe import probe
from . import assets, fallback, gridstate, metrics
from .gridstate import short
from .posters import poster_data_uri
from .present import Media

_PAGE_STYLE = "body{font-family:system-ui,sans-serif;margin:24px;background:#fff;color:#212121} .sum{margin:8px 0 16px}"
# The grid script asks its model for state and sends clicks back; a report's model is a fixed dict.
_BOOT = """
const state = JSON.parse(document.getElementById("grok-state").textContent);
const model = {get: (k) => state[k], set() {}, save_changes() {}, on() {}, off() {}, send() {}};
render({model, el: document.getElementById("grok-grid")});
"""


def _video_src(path: Path, out: Path, embed: bool) -> str:
    if embed:
        return "data:video/mp4;base64," + base64.b64encode(path.read_bytes()).decode("ascii")
    media = out.with_name(out.stem + "_files")
    media.mkdir(exist_ok=True)
    shutil.copy2(path, media / path.name)
    return f"{media.name}/{path.name}"


def _script_safe(text: str) -> str:
    return text.replace("</", "<\\/")


def grid_report(grid: Any, out: Path, *, embed: bool = True, title: str = "grok_nb comparison") -> Path:
    """Write a Grid (compare.py) as rows × columns of players with headers, synchronized playback, cost and latency."""
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    lay = gridstate.layout([c.label for c in grid.cells], grid.varying, short)
    takes = grid.takes
    runs = list(grid.runs)
    view = getattr(grid, "view", None)  # the notebook's grid: its reviews, chosen takes and picked metrics

    def media(i: int, k: int) -> Media | None:
        run = runs[i * takes + k]
        if run is None or run.path is None or not Path(run.path).is_file():
            return None
        info = probe(run.path)
        return Media(_video_src(Path(run.path), out, embed), info.width, info.height, info.duration,
                     poster_data_uri(run.path))

    reviews = ({"ratings": view.ratings, "notes": view.notes, "winners": view.winners, "chosen": view.chosen}
               if view is not None else {})
    found, names = gridstate.grid_tiles(runs, takes, lay, [c.args.get("prompt") for c in grid.cells],
                                        media=media, **reviews)
    # The player is the link here; a second copy of the video would double the file.
    tiles = [{**t, "href": "", "takes": [{**k, "href": ""} for k in t["takes"]]} for t in found]
    jobs = [k for t in tiles for k in (t["takes"] or [t])]
    summary = gridstate.summary(jobs, runs, estimate_usd=grid.estimate_usd, started=grid.started_at is not None,
                                wall_s=grid.wall_time_s)
    axes = gridstate.axes_line(grid, lay)
    picked = list(view.widget.metrics_shown) if view is not None else list(metrics.DEFAULT_SHOWN)
    shown = [n for n in picked if n in names]  # what the takes have
    state = {"tiles": [gridstate.synced(t) for t in tiles], "rows": lay.rows, "row_titles": lay.row_titles,
             "cols": lay.cols, "col_titles": lay.col_titles, "axes": axes, "summary": summary, "message": "",
             "interactive": False, "metric_names": [[n, metrics.label(n)] for n in names], "metrics_shown": picked,
             "metric_scale": list(metrics.SCALE)}
    fixed = {k: v for k, v in (grid.cells[0].args.items() if grid.cells else ()) if k not in grid.cells[0].label}
    plan = grid.plan_text
    fixed_text = " · ".join(f"{k}={short(v, 80)}" for k, v in fixed.items())
    still = fallback.grid_html(lay.rows, lay.cols, axes, tiles, summary["text"],
                               metrics=[(n, metrics.label(n)) for n in shown])
    doc = f"""<!doctype html><html><head><meta charset="utf-8"><title>{html.escape(title)}</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>{_PAGE_STYLE}</style><style>{assets.css("grid.css")}</style></head><body>
<h1>{html.escape(title)}</h1>
<div class="sum">{html.escape(plan)} · {html.escape(fixed_text)} · backend {html.escape(str(grid.client.backend))}
 · written {datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC</div>
<div id="grok-grid"></div><noscript>{still}</noscript>
<script type="application/json" id="grok-state">{_script_safe(json.dumps(state))}</script>
<script type="module">{_script_safe(assets.esm("grid.js"))}
{_BOOT}</script></body></html>"""
    out.write_text(doc, encoding="utf-8")
    return out
