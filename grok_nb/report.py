"""Self-contained HTML reports: open in any browser, no Jupyter server needed."""

from __future__ import annotations

import base64
import html
import shutil
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .compare import Grid

_STYLE = """
body{font-family:system-ui,sans-serif;margin:24px;color:#222}
table.grid{border-collapse:collapse} table.grid td,table.grid th{border:1px solid #ddd;padding:8px;vertical-align:top}
th{background:#f5f5f5;text-align:left} video{max-width:360px;width:100%;height:auto;background:#000}
.meta{font-size:12px;color:#555} .err{color:#b00020} .sum{margin:12px 0;font-size:14px}
"""


def _video_src(path: Path, out: Path, embed: bool) -> str:
    if embed:
        return "data:video/mp4;base64," + base64.b64encode(path.read_bytes()).decode("ascii")
    media = out.with_name(out.stem + "_files")
    media.mkdir(exist_ok=True)
    shutil.copy2(path, media / path.name)
    return f"{media.name}/{path.name}"


def grid_report(grid: "Grid", out: Path, *, embed: bool = True, title: str = "grok_nb comparison") -> Path:
    """Write the grid as a table of players with parameters, cost and latency; videos inline (``embed``) or alongside."""
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    heads = "".join(f"<th>{html.escape(c)}</th>" for c in grid.columns)
    rows = []
    for cell in grid.cells:
        run = cell.run
        params = "".join(f"<td>{html.escape(str(v if not isinstance(v, bytes) else '<bytes>'))[:200]}</td>"
                         for v in cell.label.values())
        if run is not None and run.path is not None and Path(run.path).is_file():
            player = (f'<video controls preload="metadata" src="{_video_src(Path(run.path), out, embed)}"></video>')
        elif run is not None and run.error is not None:
            player = f'<div class="err">{html.escape(str(run.error))}</div>'
        else:
            player = "<i>not run</i>"
        meta = []
        if run is not None:
            meta.append(f"status {html.escape(run.status)}")
            if run.cost_usd is not None:
                meta.append(f"${run.cost_usd:.3f} ({run.cost_basis})")
            if run.latency_s is not None:
                meta.append(f"{run.latency_s:.1f} s latency")
            if run.duration is not None:
                meta.append(f"{run.duration:g} s video")
            meta.append(f"request {html.escape(run.request_id or '—')}")
        fixed = {k: v for k, v in cell.args.items() if k not in cell.label}
        fixed_text = ", ".join(f"{k}={html.escape(str(v))[:80]}" for k, v in fixed.items())
        rows.append(f"<tr>{params}<td>{player}<div class='meta'>{' · '.join(meta)}</div>"
                    f"<div class='meta'>{fixed_text}</div></td></tr>")
    wall = f"{grid.wall_time_s:.1f} s" if grid.wall_time_s is not None else "not run"
    doc = f"""<!doctype html><html><head><meta charset="utf-8"><title>{html.escape(title)}</title>
<style>{_STYLE}</style></head><body><h1>{html.escape(title)}</h1>
<div class="sum">{len(grid.cells)} jobs · estimated ${grid.estimate_usd:.3f} · cost ${grid.total_cost_usd:.3f} · wall time {wall}
 · backend {html.escape(str(grid.client.backend))} · written {datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC</div>
<table class="grid"><tr>{heads}<th>video</th></tr>{''.join(rows)}</table></body></html>"""
    out.write_text(doc, encoding="utf-8")
    return out
