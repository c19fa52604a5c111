"""What a card shows for a run, as plain data and small HTML (pure: no widgets, no I/O)."""

from __future__ import annotations

import html
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from ..results import Run

_STATE_TEXT = {"submitting": "submitting…", "pending": "rendering", "done": "done", "failed": "failed",
               "expired": "expired", "moderated": "withheld by moderation", "rejected": "refused",
               "uncertain": "submit uncertain"}


@dataclass(frozen=True)
class CardView:
    """The values a job card's widgets take."""

    state: str
    bar_value: float
    bar_style: str  # "info" (no progress known), "" (progress), "success", "danger", "warning"
    stats: str
    finished: bool
    failed: bool


def usd(value: float | None) -> str:
    """Dollars with cents, or a dash."""
    return "—" if value is None else f"${value:,.3f}"


def seconds(value: float | None) -> str:
    """A duration as 12.3 s or 4 min 05 s."""
    if value is None:
        return "—"
    if value < 60:
        return f"{value:.1f} s"
    return f"{int(value // 60)} min {int(value % 60):02d} s"


def elapsed_s(run: Run, now: datetime | None = None) -> float | None:
    """Seconds since the submit (or the whole latency once finished)."""
    if run.latency_s is not None and run.finished:
        return run.latency_s
    if run.submitted_at is None:
        return None
    return max(0.0, ((now or datetime.now(timezone.utc)) - run.submitted_at).total_seconds())


def eta_s(progress: int | None, elapsed: float | None) -> float | None:
    """Time left if progress keeps its pace; None before there is any progress."""
    if progress is None or elapsed is None or progress <= 0 or progress >= 100:
        return None
    return elapsed * (100 - progress) / progress


def card_view(run: Run, now: datetime | None = None) -> CardView:
    """Bar, style and stats line for a run's current state."""
    elapsed = elapsed_s(run, now)
    failed = run.error is not None or run.status in ("failed", "expired", "moderated", "rejected", "uncertain")
    if run.status == "done" and run.error is None:
        value, style = 100.0, "success"
    elif failed:
        value, style = float(run.progress or 0), "danger"
    elif run.progress is None:
        value, style = 0.0, "info"
    else:
        value, style = float(run.progress), ""
    state = _STATE_TEXT.get(run.status, run.status)
    if run.stopped and not run.finished:
        state, style = "stopped waiting (resumable)", "warning"
    if run.progress is not None and not run.finished and not run.stopped:
        state += f" {run.progress}%"
    parts = [f"elapsed {seconds(elapsed)}"]
    if not run.finished:
        parts.append(f"ETA {seconds(eta_s(run.progress, elapsed))}")
    est = run.estimate.usd if run.estimate else None
    parts.append(f"est. {usd(est)}")
    if run.cost_actual_usd is not None:
        parts.append(f"cost {usd(run.cost_actual_usd)}")
    parts.append(f"{run.polls} polls")
    return CardView(state, value, style, " · ".join(parts), run.finished or run.stopped, failed)


def header_html(run: Run, width: int = 90) -> str:
    """Kind, prompt and parameters of a run."""
    prompt = run.prompt or "(no prompt)"
    if len(prompt) > width:
        prompt = prompt[: width - 1] + "…"
    p = run.params
    bits = [b for b in (
        f"{p['duration']:g} s" if isinstance(p.get("duration"), (int, float)) else None,
        p.get("resolution"), p.get("aspect_ratio"), run.model,
        "image→video" if p.get("image") else None,
        f"{len(p['reference_images'])} reference images" if p.get("reference_images") else None,
    ) if b]
    return (f'<div class="grok-card-title"><b>{html.escape(run.kind)}</b> · <i>{html.escape(prompt)}</i></div>'
            f'<div class="grok-card-params" style="font-size:12px;color:#666">{html.escape(" · ".join(bits))}</div>')


def player_html(src: str, width: int, height: int, duration: float | None, request_id: str | None) -> str:
    """An HTML5 player sized to the video's shape: no autoplay, no loop, with a download link."""
    shown_w = min(width, 480)
    name = f"{request_id or 'video'}.mp4"
    return (f'<div class="grok-player-wrap"><video class="grok-video" src="{html.escape(src)}" controls '
            f'preload="metadata" playsinline data-expected-duration="{duration or 0:g}" data-expected-width="{width}" '
            f'style="width:{shown_w}px;max-width:100%;aspect-ratio:{width}/{height};height:auto;background:#000">'
            f'</video><div style="font-size:12px"><a href="{html.escape(src)}" download="{html.escape(name)}">'
            f"download MP4</a> · {width}×{height} · {duration or 0:g} s</div></div>")


def error_html(run: Run) -> str:
    """The failure in red, with the request id and what to do."""
    what = html.escape(str(run.error) if run.error else run.status)
    return (f'<div class="grok-error" style="color:#b00020;border-left:3px solid #b00020;padding-left:8px">'
            f"<b>{html.escape(type(run.error).__name__ if run.error else run.status)}</b>: {what}<br>"
            f"request id: <code>{html.escape(run.request_id or '—')}</code></div>")


def exchanges_html(exchanges: list[dict[str, Any]], limit: int = 40) -> str:
    """The run's HTTP exchanges as a small table (the last ``limit``)."""
    shown = exchanges[-limit:]
    skipped = len(exchanges) - len(shown)
    rows = "".join(
        f"<tr><td>{html.escape(e['at'][11:23])}</td><td>{html.escape(e['method'])}</td>"
        f"<td><code>{html.escape(e['path'])}</code></td><td>{e['status'] if e['status'] is not None else '—'}</td>"
        f"<td>{e['elapsed_ms']:.0f} ms</td><td>{html.escape(e['summary'])}</td></tr>" for e in shown)
    note = f"<div>… {skipped} earlier exchanges (all are in the history)</div>" if skipped else ""
    return (f'{note}<table class="grok-http-table" style="font-size:11px"><tr><th>time (UTC)</th><th>method</th>'
            f"<th>path</th><th>status</th><th>took</th><th>answer</th></tr>{rows}</table>")
