"""Lenient parsing of the API's answers: unknown fields are ignored, missing ones tolerated."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .pricing import usd_from_ticks

#: Official statuses. Anything else ("processing", a future word) counts as still running.
TERMINAL_STATUSES = ("done", "failed", "expired")


@dataclass(frozen=True)
class JobStatus:
    """One poll answer, normalised."""

    status: str
    progress: int | None = None
    url: str | None = None
    duration: float | None = None
    moderated: bool = False
    cost_usd: float | None = None
    model: str | None = None
    error_code: str | None = None
    error_message: str | None = None
    raw: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @property
    def terminal(self) -> bool:
        """True when the job will not change any more."""
        return self.status in TERMINAL_STATUSES

    @property
    def known_status(self) -> bool:
        """False for statuses outside the official set (treated as running)."""
        return self.status in TERMINAL_STATUSES or self.status == "pending"

    @property
    def outcome(self) -> str:
        """done, moderated, failed, expired, or running."""
        if self.status == "done":
            return "moderated" if self.moderated else "done"
        return self.status if self.terminal else "running"


def _int_or_none(value: Any) -> int | None:
    try:
        return max(0, min(100, int(float(value))))
    except (TypeError, ValueError):
        return None


def _float_or_none(value: Any) -> float | None:
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def parse_job_status(body: Any) -> JobStatus:
    """Normalise a ``GET /v1/videos/{id}`` answer, however sparse."""
    if not isinstance(body, dict):
        body = {}
    status = str(body.get("status") or "pending").strip().lower()
    video = body.get("video") if isinstance(body.get("video"), dict) else {}
    usage = body.get("usage") if isinstance(body.get("usage"), dict) else {}
    error = body.get("error")
    code = message = None
    if isinstance(error, dict):
        code, message = error.get("code"), error.get("message")
    elif isinstance(error, str):
        message = error
    url = video.get("url") or None
    # Moderation withholds the video: respect_moderation false, and the URL left empty.
    moderated = status == "done" and (video.get("respect_moderation") is False or (bool(video) and not url))
    progress = _int_or_none(body.get("progress"))
    if status == "done" and progress is None:
        progress = 100
    return JobStatus(
        status=status,
        progress=progress,
        url=None if moderated else url,
        duration=_float_or_none(video.get("duration")),
        moderated=moderated,
        cost_usd=usd_from_ticks(usage.get("cost_in_usd_ticks")),
        model=body.get("model") or None,
        error_code=str(code) if code else None,
        error_message=str(message) if message else None,
        raw=body,
    )
