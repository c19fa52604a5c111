"""Every status a job can have, and everything grok_nb decides by it, in one table (pure).

The engine, batches, ``client.get``/``resume``, the history's repair, every cost total and every view
read a status's facts from :data:`STATUSES`: whether it is final, whether ``resume()`` picks it up,
whether the budget counts its estimate when the server reports no cost, which error a run ending in
it carries, and the word, tone and icon it is shown with. A new status is one member of
:class:`Status` and one row of the table (plus its error class in ``errors.py`` if it needs a new one).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from typing import Any

from ..errors import (
    DownloadError,
    GrokError,
    JobCancelledError,
    JobError,
    JobExpiredError,
    JobFailedError,
    ModeratedError,
    SubmitUncertainError,
)


class Status(str, Enum):
    """Where a job stands; a ``str``, so ``run.status == "done"`` keeps working."""

    SUBMITTING = "submitting"
    PENDING = "pending"
    DONE = "done"
    FAILED = "failed"
    MODERATED = "moderated"
    EXPIRED = "expired"
    CANCELLED = "cancelled"
    DOWNLOAD_FAILED = "download_failed"
    UNCERTAIN = "uncertain"
    REJECTED = "rejected"

    def __str__(self) -> str:  # f"{status}" reads "done", not "Status.DONE"
        return self.value

    @property
    def info(self) -> StatusInfo:
        """This status's row of the table."""
        return STATUSES[self]

    @property
    def final(self) -> bool:
        """True when nothing more will happen to the job by itself."""
        return STATUSES[self].final

    @property
    def resumable(self) -> bool:
        """True when ``resume()`` picks the job up again (the server may still have, or be making, the video)."""
        return STATUSES[self].resumable

    @property
    def billed(self) -> bool:
        """True when the budget counts the job's estimate if the server reports no (sane) cost."""
        return STATUSES[self].billed

    @property
    def ok(self) -> bool:
        """True for a finished video on disk."""
        return self is Status.DONE


#: Tones: ``ok`` the video is here; ``bad`` the job ended without one; ``warn`` it may still be had;
#: ``busy`` under way; ``idle`` nothing was made.
TONES = ("ok", "bad", "warn", "busy", "idle")


@dataclass(frozen=True)
class StatusInfo:
    """What a status means to every part of grok_nb."""

    final: bool  # nothing more happens to the job by itself
    resumable: bool  # resume() picks it up again
    billed: bool  # without a sane cost from the server, the budget counts the estimate (else nothing)
    video_possible: bool  # the server may have made a video this history does not hold (a cached MP4 proves it)
    error: type[GrokError] | None  # the error a run ending here carries (None: no error)
    word: str  # what a view says
    tone: str  # one of TONES
    icon: str  # one glyph that renders with the fonts JupyterLab ships
    reason: str  # what it means, for a run that carries no error of its own


STATUSES: dict[Status, StatusInfo] = {
    Status.SUBMITTING: StatusInfo(
        final=False, resumable=True, billed=True, video_possible=True, error=None,
        word="submitting", tone="busy", icon="↑", reason="the request is on its way to the server"),
    Status.PENDING: StatusInfo(
        final=False, resumable=True, billed=True, video_possible=True, error=None,
        word="rendering", tone="busy", icon="◔", reason="the server accepted the job and is making the video"),
    Status.DONE: StatusInfo(
        final=True, resumable=False, billed=True, video_possible=False, error=None,
        word="done", tone="ok", icon="✓", reason="the video is here"),
    Status.FAILED: StatusInfo(
        final=True, resumable=False, billed=False, video_possible=False, error=JobFailedError,
        word="failed", tone="bad", icon="✗", reason="the server says the job failed"),
    Status.MODERATED: StatusInfo(
        final=True, resumable=False, billed=True, video_possible=False, error=ModeratedError,
        word="moderated", tone="bad", icon="✗", reason="withheld by moderation"),
    Status.EXPIRED: StatusInfo(
        final=True, resumable=False, billed=True, video_possible=False, error=JobExpiredError,
        word="expired", tone="bad", icon="✗", reason="the job ran but its video is gone"),
    Status.CANCELLED: StatusInfo(
        final=True, resumable=False, billed=False, video_possible=False, error=JobCancelledError,
        word="cancelled", tone="idle", icon="⊘", reason="cancelled before it ran; nothing billed"),
    Status.DOWNLOAD_FAILED: StatusInfo(
        final=True, resumable=True, billed=True, video_possible=True, error=DownloadError,
        word="not downloaded", tone="warn", icon="⚠",
        reason="done at the server; the MP4 is not here yet (resume fetches it)"),
    Status.UNCERTAIN: StatusInfo(
        final=True, resumable=False, billed=True, video_possible=True, error=SubmitUncertainError,
        word="submit uncertain", tone="warn", icon="⚠", reason="the submit may have reached the server; not resent"),
    Status.REJECTED: StatusInfo(
        final=True, resumable=False, billed=False, video_possible=False, error=GrokError,
        word="refused", tone="bad", icon="✗", reason="refused before any job started (nothing billed)"),
}

#: Statuses after which nothing changes by itself, and the ones ``resume()`` looks at (derived from the table).
FINAL = frozenset(s for s, i in STATUSES.items() if i.final)
RESUMABLE = frozenset(s for s, i in STATUSES.items() if i.resumable)


def status_of(value: Any) -> Status:
    """A Status from its text (history rows store text); unknown text counts as pending."""
    try:
        return Status(str(getattr(value, "value", value)))
    except ValueError:
        return Status.PENDING


def restored_error(status: Status, message: str | None, request_id: str | None,
                   code: str | None = None) -> GrokError | None:
    """The error of a finished run rebuilt from its history row: the status's class, the stored message and code."""
    error = status.info.error
    if not message or error is None or not status.final:
        return None
    cls = error if issubclass(error, JobError) else JobError
    restored = cls.__new__(cls)
    suffix = f" [request_id={request_id}]"
    text = message[: -len(suffix)] if message.endswith(suffix) else message
    JobError.__init__(restored, text, request_id=request_id)
    # What the live error carried, as far as the row says it (JobFailedError's code and message).
    restored.code, restored.message = code, text  # type: ignore[attr-defined]
    return restored
