"""How each job state looks, in one table every view reads: its word, its tone (colour) and its icon (pure).

The colour language: green (``ok``) = the video is here; red (``bad``) = the job ended without one;
amber (``warn``) = it may still be had (download again, resume, check the console); blue (``busy``) =
under way; grey (``idle``) = nothing sent. Cards, grid tiles, tables, the browser, static copies,
reports and plots all take their word and colour from here, so they cannot disagree.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..jobs.status import STATUSES, TONES, Status

__all__ = ["LOOKS", "TONES", "Look", "colour", "look", "state_of", "tone", "word"]


@dataclass(frozen=True)
class Look:
    """How one state is shown: the word, the tone (ok, bad, warn, busy, idle), a one-glyph icon, and what it
    means when the run carries no error of its own to say so."""

    word: str
    tone: str
    icon: str
    reason: str = ""


#: The states only a view knows: a cell not sent, a file on its way, a job no one waits for.
VIEW_STATES: dict[str, Look] = {
    "queued": Look("not started", "idle", "○"),
    "not_sent": Look("cancelled, not sent", "idle", "⊘"),
    "downloading": Look("downloading", "busy", "↓"),
    "stopped": Look("stopped (resumable)", "warn", "‖", "no longer waited for; the job goes on at the server"),
}
#: Every Status as the status table says it, plus the view's own states.
LOOKS: dict[str, Look] = {**{s.value: Look(i.word, i.tone, i.icon, i.reason) for s, i in STATUSES.items()},
                          **VIEW_STATES}
#: Other spellings of a state that tables carry (a grid row whose job was never sent).
ALIASES = {"not started": "queued"}  # the grid's table says a cell not sent this way

#: Text colours per tone from JupyterLab's theme variables. Mixing the theme colour with
#: ``--jp-ui-font-color0`` (black in light themes, white in dark ones) keeps text above 4.5:1 in both.
TONE_CSS: dict[str, str] = {
    "ok": "color-mix(in srgb, var(--jp-success-color1, #388e3c) 65%, var(--jp-ui-font-color0, #000))",
    "bad": "color-mix(in srgb, var(--jp-error-color1, #d32f2f) 70%, var(--jp-ui-font-color0, #000))",
    "warn": "color-mix(in srgb, var(--jp-warn-color1, #f57c00) 60%, var(--jp-ui-font-color0, #000))",
    "busy": "var(--jp-ui-font-color1, #212121)",
    "idle": "var(--jp-ui-font-color2, #616161)",
}
#: Plain colours per tone, for marks only (borders, dots, plot markers), never text: mid-saturation, so they
#: read on white and on near-black. Static copies need them: JupyterLab's sanitizer drops var() from saved outputs.
TONE_HEX: dict[str, str] = {"ok": "#22a55a", "bad": "#e5484d", "warn": "#f59e0b", "busy": "#3b82f6",
                            "idle": "#9ca3af"}
#: The ipywidgets FloatProgress style of a finished bar: the bar says what the text says.
BAR_STYLE: dict[str, str] = {"ok": "success", "bad": "danger", "warn": "warning", "busy": "", "idle": ""}


def look(state: Any) -> Look:
    """The look of a state (a Status, its text, or a view state); an unknown server state is still running."""
    key = str(getattr(state, "value", state) or "")
    return LOOKS.get(ALIASES.get(key, key), LOOKS[Status.PENDING.value])


def tone(state: Any) -> str:
    """The tone word (ok, bad, warn, busy, idle) of a state."""
    return look(state).tone


def word(state: Any) -> str:
    """The word a view says for a state."""
    return look(state).word


def colour(state: Any) -> str:
    """The plain colour of a state's tone (for marks, not text)."""
    return TONE_HEX[tone(state)]


def state_of(run: Any, cancelled: bool = False) -> str:
    """The one state a run reduces to for every view (a key of LOOKS); ``run`` None is a cell not yet sent."""
    if run is None:
        return "not_sent" if cancelled else "queued"
    status = str(getattr(run.status, "value", run.status))
    if status == Status.DONE.value and run.error is not None:
        return Status.DOWNLOAD_FAILED.value  # done at the server, but the MP4 is not here
    if status == Status.DONE.value and run.path is None and not run.stopped:
        return "downloading"  # the server is done; the MP4 is on its way to the cache
    if run.stopped and not run.finished:
        return "stopped"
    if run.error is not None and status in (Status.SUBMITTING.value, Status.PENDING.value):
        return Status.UNCERTAIN.value
    return status if status in LOOKS else Status.PENDING.value
