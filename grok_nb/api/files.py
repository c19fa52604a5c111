"""The Files API's contract, pure: upload limits, expiry, what an upload answer holds, which inputs go as uploads.

``POST /v1/files`` takes a multipart body: ``expires_after`` (seconds) must come before the
``file`` part, or the upload is refused. Anywhere a video request takes ``{"url": ...}`` for
an image or a video, ``{"file_id": ...}`` of a complete upload works instead.
"""

from __future__ import annotations

import base64
import hashlib
import math
from dataclasses import dataclass
from typing import Any

from ..errors import ValidationError

#: The Files API's limit for one file ("at most 50 MB"), checked before a byte is sent.
MAX_UPLOAD_BYTES = 50_000_000
#: Local inputs larger than this go as an upload and ``{"file_id": ...}``, not as a data URI
#: (a single request is capped at about 25 MB, and base64 adds a third).
INLINE_MAX_BYTES = 10 * 2**20
#: What ``expires_after`` may be, in seconds (one hour to 30 days).
EXPIRES_AFTER_RANGE = (3_600, 2_592_000)
#: An id whose expiry is this close is not reused: a job must be able to read it after it is sent.
REUSE_MARGIN_S = 15 * 60
FILES_PATH = "/v1/files"

_MIME_EXT = {"image/jpeg": "jpg", "image/png": "png", "image/webp": "webp", "video/mp4": "mp4"}


@dataclass(frozen=True)
class FileInfo:
    """One uploaded file as the service describes it."""

    id: str
    bytes: int | None = None
    created_at: int | None = None  # Unix seconds
    filename: str | None = None
    expires_at: int | None = None  # Unix seconds; None: kept until deleted

    def alive_at(self, now: float, margin_s: float = REUSE_MARGIN_S) -> bool:
        """True while the id can still be used by a job sent at ``now`` (Unix seconds)."""
        return self.expires_at is None or self.expires_at - margin_s > now


def check_expires_after(value: Any) -> int | None:
    """``expires_after`` in whole seconds within the allowed range, or None (not sent)."""
    if value is None:
        return None
    lo, hi = EXPIRES_AFTER_RANGE
    allowed = f"whole seconds from {lo:,} (1 hour) to {hi:,} (30 days), or None to keep the file until deleted"
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ValidationError("expires_after", value, allowed)
    if value != int(value) or not lo <= value <= hi:
        raise ValidationError("expires_after", value, allowed)
    return int(value)


def check_upload_size(size: int, shown: Any = None) -> None:
    """Refuse an upload over the Files API's 50 MB (and an empty one) before anything is sent."""
    if size <= 0:
        raise ValidationError("file", shown if shown is not None else "<0 bytes>", "a non-empty file")
    if size > MAX_UPLOAD_BYTES:
        raise ValidationError("file", shown if shown is not None else f"<{size} bytes>",
                              f"a file of at most {MAX_UPLOAD_BYTES // 1_000_000} MB for the Files API "
                              f"(this one is {size / 1e6:.1f} MB): shorten or re-encode it first")


def sha256_hex(data: bytes) -> str:
    """The content hash an upload is remembered by."""
    return hashlib.sha256(data).hexdigest()


def filename_for(data: bytes, mime: str | None, name: str | None = None) -> str:
    """A file name for the multipart part: the given one, else ``upload-<hash>.<ext>`` from the content type."""
    if name:
        return name.replace("\\", "/").rsplit("/", 1)[-1][:200] or "upload"
    ext = _MIME_EXT.get(mime or "", "bin")
    return f"upload-{sha256_hex(data)[:12]}.{ext}"


def parse_file(body: Any) -> FileInfo:
    """An upload answer ``{"id": "file_...", "bytes", "created_at", "filename", "expires_at"?}`` (lenient)."""
    if not isinstance(body, dict):
        raise ValueError(f"the upload answer is not a JSON object: {str(body)[:200]!r}")
    file_id = body.get("id") or body.get("file_id")
    if not isinstance(file_id, str) or not file_id.strip():
        raise ValueError(f"the upload answer has no file id: {str(body)[:200]!r}")

    def whole(key: str) -> int | None:
        value = body.get(key)
        return int(value) if isinstance(value, (int, float)) and not isinstance(value, bool) \
            and math.isfinite(value) else None

    filename = body.get("filename")
    return FileInfo(file_id.strip(), whole("bytes"), whole("created_at"),
                    filename if isinstance(filename, str) else None, whole("expires_at"))


def inline_data(payload: Any) -> tuple[bytes, str] | None:
    """The bytes and MIME type of a ``{"url": "data:...;base64,..."}`` payload, else None."""
    if not isinstance(payload, dict):
        return None
    url = payload.get("url")
    if not isinstance(url, str) or not url.startswith("data:"):
        return None
    header, _, data = url.partition(",")
    if ";base64" not in header:
        return None
    try:
        return base64.b64decode(data, validate=True), header[5:].split(";")[0]
    except ValueError:
        return None


def large_inline_inputs(body: dict[str, Any],
                        limit: int | None = None) -> list[tuple[tuple[Any, ...], dict[str, Any]]]:
    """Where a request body holds inline data over ``limit`` (INLINE_MAX_BYTES) bytes: (path of keys, payload) each."""
    if limit is None:
        limit = INLINE_MAX_BYTES
    found: list[tuple[tuple[Any, ...], dict[str, Any]]] = []

    def visit(value: Any, path: tuple[Any, ...]) -> None:
        if isinstance(value, dict):
            if "url" in value and isinstance(value.get("url"), str) and value["url"].startswith("data:"):
                # base64 is 4/3 of the data: the string's length tells the size without decoding it
                if (len(value["url"]) - len(value["url"].partition(",")[0]) - 1) * 3 // 4 > limit:
                    found.append((path, value))
                return
            for key, inner in value.items():
                visit(inner, (*path, key))
        elif isinstance(value, list):
            for i, inner in enumerate(value):
                visit(inner, (*path, i))

    visit(body, ())
    return found


def replace_at(body: Any, path: tuple[Any, ...], value: Any) -> Any:
    """A copy of ``body`` (dicts and lists) with the value at ``path`` (keys and list indexes) replaced."""
    if not path:
        return value
    head, rest = path[0], path[1:]
    out: Any = list(body) if isinstance(body, list) else dict(body)
    out[head] = replace_at(out[head], rest, value)
    return out
