"""Lenient parsing of the API's answers: unknown fields are ignored, missing ones tolerated.

Beyond the spec, the live service has been seen to send: a done answer without ``status``
(``{"video": {"url": ...}}``), a done answer without a usable URL (or with the video nested
under ``response``), a 202 with an empty body while pending, and moderation at poll time as
an HTTP 400 that carries the job's cost. Each is understood here.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from ..errors import parse_error_body, redact
from .pricing import usd_from_ticks

#: Official statuses. Anything else ("processing", a future word) counts as still running.
TERMINAL_STATUSES = ("done", "failed", "expired")
_MODERATION = re.compile(r"moderat", re.IGNORECASE)
#: The error code the live service gives moderation at poll time (HTTP 400), whatever the message says.
MODERATION_CODES = ("imagine:content-moderated",)
#: A failed job with this code whose message speaks of moderation was moderated (billed), not refused.
_MODERATED_FAILURE_CODES = ("invalid_argument", "invalid-argument")


@dataclass(frozen=True)
class JobStatus:
    """One poll answer, normalised."""

    status: str
    progress: int | None = None
    url: str | None = None
    duration: float | None = None
    moderated: bool = False
    cost_usd: float | None = None
    #: ``usage.cost_in_usd_ticks`` as sent (None when absent), kept to say why a figure was not counted.
    cost_reported: Any = None
    model: str | None = None
    error_code: str | None = None
    error_message: str | None = None
    #: Why a done answer has no video to download (None when it has one, or is not done).
    no_video_reason: str | None = None
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
        """done, moderated, no_video (done without a usable URL), failed, expired, or running."""
        if self.moderated and self.status in ("done", "failed"):
            return "moderated"  # withheld (done) or blocked (failed invalid_argument): billed either way, final
        if self.status == "done":
            return "no_video" if self.url is None else "done"
        return self.status if self.terminal else "running"

    @property
    def message(self) -> str | None:
        """What happened, in a sentence, for the outcomes that have no video (None otherwise)."""
        outcome = self.outcome
        if outcome == "moderated":
            return "the video was withheld by moderation" + (f" ({self.error_message})" if self.error_message else "")
        if outcome == "no_video":
            return (f"the service reported the job done but sent no video URL to download ({self.no_video_reason}); "
                    "it may have been delivered elsewhere (output.upload_url / storage_options), or the answer "
                    "changed shape. Nothing was downloaded; the request id is kept")
        if outcome == "failed":
            return f"the job failed ({self.error_code or 'unknown'}): {self.error_message or 'no message'}"
        if outcome == "expired":
            return "the job's content has expired on the server"
        return None


def _int_or_none(value: Any) -> int | None:
    try:
        number = float(value)
    except (TypeError, ValueError, OverflowError):
        return None
    if number != number or number in (float("inf"), float("-inf")):
        return None
    return max(0, min(100, int(number)))


def _float_or_none(value: Any) -> float | None:
    try:
        number = float(value)
    except (TypeError, ValueError, OverflowError):
        return None
    return number if number == number and abs(number) != float("inf") else None


def _reported(value: Any, secret: str | None = None) -> Any:
    """A reported figure as sent (a number), else as text without any key, cut short (it only goes into a note)."""
    if value is None or isinstance(value, (int, float, bool)):
        return value
    text = redact(value if isinstance(value, str) else str(value), secret)
    return text[:40] + "..." if len(text) > 40 else text


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _usable_url(value: Any) -> tuple[str | None, str]:
    """(the URL, or None and why it cannot be downloaded)."""
    if value is None:
        return None, "no video.url"
    if not isinstance(value, str):
        return None, f"video.url is a {type(value).__name__}, not a string"
    if not value.strip():
        return None, "video.url is empty"
    if not value.strip().startswith(("http://", "https://")):
        return None, f"video.url is not an http(s) URL: {value.strip()[:60]!r}"
    return value.strip(), ""


def parse_job_status(body: Any, secret: str | None = None) -> JobStatus:
    """Normalise a ``GET /v1/videos/{id}`` answer, however sparse (an empty 202 body is pending).

    The server's texts (error code and message, why there is no video) come out without any API key
    in them (``secret``, a live client's key, anything shaped like a key or bearer token): a gateway may
    quote the key, and these texts go on to exceptions, the history and every export.
    """
    if not isinstance(body, dict):
        body = {}
    # Seen live: the whole answer, or just its video, nested under "response".
    nested = _dict(body.get("response"))
    video = _dict(body.get("video")) or _dict(nested.get("video"))
    usage = _dict(body.get("usage")) or _dict(nested.get("usage"))
    url, why = _usable_url(video.get("url"))
    raw_status = body.get("status") or nested.get("status")
    if isinstance(raw_status, str) and raw_status.strip():
        status = raw_status.strip().lower()
    elif url is not None or video.get("respect_moderation") is False:
        status = "done"  # a video without a status: done (one SDK guards against exactly this)
    else:
        status = "pending"
    error = body.get("error") if "error" in body else nested.get("error")
    code = message = None
    if isinstance(error, dict):
        code, message = error.get("code"), error.get("message")
    elif isinstance(error, str):
        message = error
    # Moderation withholds the video (done, respect_moderation false, URL left empty), or blocks the job
    # (failed, invalid_argument, a message about moderation): a moderated, billed outcome either way.
    moderated = (status == "done" and video.get("respect_moderation") in (False, "false")) or (
        status == "failed" and str(code).lower() in _MODERATED_FAILURE_CODES and bool(_MODERATION.search(str(message))))
    progress = _int_or_none(body.get("progress", nested.get("progress")))
    if status == "done" and progress is None:
        progress = 100
    model = body.get("model") or nested.get("model")
    return JobStatus(
        status=status,
        progress=progress,
        url=None if moderated else url,
        duration=_float_or_none(video.get("duration")),
        moderated=moderated,
        cost_usd=usd_from_ticks(usage.get("cost_in_usd_ticks")),
        cost_reported=_reported(usage.get("cost_in_usd_ticks"), secret),
        model=redact(model, secret) if isinstance(model, str) and model else None,
        error_code=redact(str(code), secret) if code else None,
        error_message=redact(str(message), secret) if message else None,
        no_video_reason=redact(why, secret) if status == "done" and not moderated and url is None else None,
        raw=body,
    )


def parse_poll_error(status_code: int, body: Any, secret: str | None = None) -> JobStatus | None:
    """An HTTP error answer to a poll that is really a job outcome, else None.

    Seen live: moderation at poll time as HTTP 400, ``{"code": "imagine:content-moderated",
    "error": "Generated video rejected by content moderation.", "usage": {...}}`` (earlier with the
    code "Client specified an invalid argument"), reported as billed. It is recognised by its code
    whatever the wording, else by the wording: the moderated outcome, with its cost, final.
    """
    if not isinstance(status_code, int) or not 400 <= status_code < 500:
        return None
    code, message = parse_error_body(body, secret)
    if (code or "").strip().lower() not in MODERATION_CODES and not _MODERATION.search(message or ""):
        return None
    usage = _dict(body.get("usage")) if isinstance(body, dict) else {}
    return JobStatus(status="done", progress=100, moderated=True,
                     cost_usd=usd_from_ticks(usage.get("cost_in_usd_ticks")),
                     cost_reported=_reported(usage.get("cost_in_usd_ticks"), secret), error_code=code,
                     error_message=message, raw=body if isinstance(body, dict) else {})
