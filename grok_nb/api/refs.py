"""Inputs ready to send (an image, a video) and the one text check every module of the contract shares (pure).

:mod:`grok_nb.api.media` builds these from what users hold; :mod:`grok_nb.api.validation`
checks requests made of them. Both import this module, neither imports the other's internals.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..errors import ValidationError


@dataclass(frozen=True)
class ImageRef:
    """An image ready to send: the JSON payload and what the history keeps (URL or hash, never base64)."""

    payload: dict[str, str]
    label: str


@dataclass(frozen=True)
class VideoRef:
    """An input video: its URL (https or ``data:video/mp4``) or file id, and its length and resolution when known."""

    url: str | None
    duration: float | None = None
    resolution: str | None = None
    parent_run_id: str | None = None
    file_id: str | None = None
    label: str | None = None  # what the history keeps: the URL, or a hash for inline data

    @property
    def payload(self) -> dict[str, str]:
        """The body's ``video`` object."""
        return {"file_id": self.file_id} if self.file_id else {"url": self.url or ""}


def check_text(value: Any, field_name: str, allowed: str = "a string") -> str:
    """A str that can be sent as UTF-8 (no lone surrogates)."""
    if not isinstance(value, str):
        raise ValidationError(field_name, value, allowed)
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise ValidationError(field_name, value, f"{allowed} that can be sent as UTF-8 (it holds a lone "
                                                 f"surrogate {value[exc.start]!r} at index {exc.start})") from None
    return value
