"""What a card shows for a run, as plain data and small HTML (pure: no widgets, no I/O).

Words and colours come from looks.py (JupyterLab's theme variables), so cards read in light and dark themes.
"""

from __future__ import annotations

import html
import re
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from ..errors import JobFailedError
from ..jobs.results import Run
from . import looks, tables
from .looks import TONE_CSS
from .tables import MUTED_CSS, seconds, usd

__all__ = ["CardView", "Media", "card_view", "dedupe_clauses", "elapsed_s", "error_html", "error_parts", "eta_s",
           "exchanges_html", "header_html", "outcome", "player_html", "seconds", "usd"]

_REQUEST_ID = re.compile(r"\s*\[request_id=[^\]]*\]")


@dataclass(frozen=True)
class Media:
    """What a view needs to show a finished video (found by the runtime, never by the view): where it loads live,
    its shape and length, a poster thumbnail, ``href``: a path relative to the notebook that outlives the
    kernel (static copies play it from there; never a result URL, which expires), and ``where``: the file's
    absolute path (a static copy opened elsewhere tries it, else shows the poster and says where the file is)."""

    src: str
    width: int
    height: int
    duration: float | None
    poster: str | None = None
    href: str | None = None
    where: str | None = None

    @property
    def source(self) -> tuple[str, int, int, float | None]:
        """(src, width, height, seconds), as a player takes them."""
        return self.src, self.width, self.height, self.duration


@dataclass(frozen=True)
class CardView:
    """The values a job card's widgets take."""

    state: str
    bar_value: float
    bar_style: str  # "info" (no progress known), "" (progress), "success", "danger", "warning"
    stats: str
    finished: bool
    failed: bool
    tone: str = "busy"  # ok, bad, warn, busy: the colour of the state text, the bar and the border


def outcome(run: Run) -> str:
    """The state a view shows for a run: a key of ``looks.LOOKS`` (``download_failed``, ``stopped``... when apt)."""
    return looks.state_of(run)


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
    """Bar, style and stats for a run: a finished job's bar is full, in its outcome's colour, as its state text."""
    elapsed = elapsed_s(run, now)
    status = outcome(run)
    seen = looks.look(status)
    ended = seen.tone in ("ok", "bad", "warn") and status != "stopped"
    if status == "stopped":
        value, style = float(run.progress or 0), looks.BAR_STYLE["warn"]  # not over: the job goes on at the server
    elif ended:
        value, style = 100.0, looks.BAR_STYLE[seen.tone]
    elif status == "downloading":
        value, style = 100.0, ""  # rendered; the MP4 is on its way
    elif run.progress is None:
        value, style = 0.0, "info"
    else:
        value, style = float(run.progress), ""
    state = seen.word
    if run.progress is not None and status in ("submitting", "pending"):
        state += f" {run.progress}%"
    parts = [f"elapsed {seconds(elapsed)}"]
    if not ended:
        parts.append(f"ETA {seconds(eta_s(run.progress, elapsed))}")
    est = run.estimate.usd if run.estimate else None
    parts.append(f"est. {usd(est)}")
    if run.cost_actual_usd is not None:
        parts.append(f"cost {usd(run.cost_actual_usd)}")
    parts.append(polls(run.polls))
    failed = ended and seen.tone in ("bad", "warn")
    return CardView(state, value, style, " · ".join(parts), ended or run.stopped, failed, seen.tone)


def polls(n: int) -> str:
    """'1 poll', '3 polls'."""
    return f"{n} poll" if n == 1 else f"{n} polls"


def state_html(view: CardView) -> str:
    """The state word, bold, in its tone's colour."""
    return (f'<b class="grok-state-text grok-tone-{view.tone}" style="color:{TONE_CSS[view.tone]}">'
            f"{html.escape(view.state)}</b>")


def error_parts(run: Run) -> tuple[str | None, str]:
    """(code, message) of a run's error, each said once: no request id (shown apart), no repeated advice."""
    err = run.error
    if err is None:
        return None, looks.word(outcome(run))
    code = getattr(err, "code", None)
    if isinstance(err, JobFailedError):
        message = err.message or "no message"
        if code in ("service_unavailable", "internal_error"):
            message += "; try again later"
    else:
        message = str(err)
    message = _REQUEST_ID.sub("", message)
    # History rows keep the whole sentence: drop its "video job failed (code):" lead, which the state says.
    lead = re.match(r"video job failed \(([^)]*)\):\s*", message)
    if lead:
        code = code or lead.group(1)
        message = message[lead.end():]
    return code, dedupe_clauses(message)


def dedupe_clauses(text: str) -> str:
    """'busy; try again later.; try again later' → 'busy; try again later.' (clauses compared loosely)."""
    seen: set[str] = set()
    kept = []
    for clause in re.split(r"\s*;\s*", text.strip()):
        key = re.sub(r"[\W_]+", " ", clause).strip().lower()
        if key and key not in seen:
            seen.add(key)
            kept.append(clause)
    return "; ".join(kept)


def header_html(run: Run, width: int = 90) -> str:
    """Kind, prompt (one line, whole on hover) and parameters of a run."""
    prompt = run.prompt or "(no prompt)"
    shown = prompt if len(prompt) <= width else prompt[: width - 1] + "…"
    p = run.params
    bits = [b for b in (
        f"{p['duration']:g} s" if isinstance(p.get("duration"), (int, float)) else None,
        p.get("resolution"), p.get("aspect_ratio"), run.model,
        "image→video" if p.get("image") else None,
        f"{len(p['reference_images'])} reference images" if p.get("reference_images") else None,
    ) if b]
    return (f'<div class="grok-card-title" title="{html.escape(prompt)}" '
            f'style="color:{tables.TEXT_CSS};line-height:1.4">'
            f"<b>{html.escape(run.kind)}</b> · <i>{html.escape(shown)}</i></div>"
            f'<div class="grok-card-params" style="font-size:12px;color:{MUTED_CSS};line-height:1.4">'
            f'{html.escape(" · ".join(bits))}</div>')


def player_html(src: str, width: int, height: int, duration: float | None, request_id: str | None) -> str:
    """An HTML5 player sized to the video's shape: no autoplay, no loop, with a download link."""
    shown_w = min(width, 480)
    name = f"{request_id or 'video'}.mp4"
    return (f'<div class="grok-player-wrap"><video class="grok-video" src="{html.escape(src)}" controls '
            f'preload="metadata" playsinline data-expected-duration="{duration or 0:g}" data-expected-width="{width}" '
            f'style="width:{shown_w}px;max-width:100%;aspect-ratio:{width}/{height};height:auto;background:#000">'
            f'</video><div class="grok-player-meta" style="font-size:12px;color:{MUTED_CSS}">'
            f'<a href="{html.escape(src)}" download="{html.escape(name)}" '
            f'style="color:var(--jp-content-link-color, #1565c0)">download MP4</a> · {width}×{height} · '
            f"{duration or 0:g} s</div></div>")


def error_html(run: Run) -> str:
    """What went wrong, once: the code, the message with its advice, and the request id, in the outcome's colour."""
    code, message = error_parts(run)
    colour = TONE_CSS[looks.tone(outcome(run))]
    head = f"<b>{html.escape(code)}</b>: " if code else ""
    return (f'<div class="grok-error" role="status" style="color:{colour};border-left:3px solid {colour};'
            f'padding-left:8px;font-size:13px;line-height:1.4">{head}{html.escape(message)}'
            f'<div class="grok-error-id" style="color:{MUTED_CSS};font-size:12px">request id '
            f"<code style=\"background:none;color:inherit\">{html.escape(run.request_id or '—')}</code></div></div>")


def exchanges_html(exchanges: list[dict[str, Any]], limit: int = 40) -> str:
    """The run's HTTP exchanges as a small table (the last ``limit``)."""
    shown = exchanges[-limit:]
    skipped = len(exchanges) - len(shown)
    rows = "".join(
        f"<tr><td>{html.escape(e['at'][11:23])}</td><td>{html.escape(e['method'])}</td>"
        f"<td>{tables.path_cell(e['path'])}</td><td>{e['status'] if e['status'] is not None else '—'}</td>"
        f"<td>{e['elapsed_ms']:.0f} ms</td><td>{html.escape(e['summary'])}</td></tr>" for e in shown)
    note = f"<div>… {skipped} earlier exchanges (all are in the history)</div>" if skipped else ""
    return (f'{note}<table class="grok-http-table" style="font-size:11px;color:{tables.TEXT_CSS}"><tr>'
            f"<th>time (UTC)</th><th>method</th><th>path</th><th>status</th><th>took</th><th>answer</th></tr>"
            f"{rows}</table>")
