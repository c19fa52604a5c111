"""Uploads to the Files API: one file, remembered by content hash, and large local inputs sent as ``file_id``.

The same bytes are not uploaded twice to one server while their id lives: the history keeps
each upload's id, hash, size and expiry. An id is checked with the server before it is reused
(a file may have been deleted), which costs one small request instead of megabytes.
"""

from __future__ import annotations

import asyncio
import io
import os
import time
from dataclasses import replace
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..api.files import (
    FILES_PATH,
    MAX_UPLOAD_BYTES,
    REUSE_MARGIN_S,
    FileInfo,
    check_expires_after,
    check_upload_size,
    filename_for,
    inline_data,
    large_inline_inputs,
    parse_file,
    replace_at,
    sha256_hex,
)
from ..api.media import sniff_image_type
from ..api.probe import is_mp4
from ..api.validation import JobSpec
from ..errors import APIError, ConnectionFailed, GrokError, NotFoundError, ValidationError, error_from_response
from .scheduler import POLL, SUBMIT
from .sender import Reading, problem_of
from .transport import Answer

if TYPE_CHECKING:  # uploads use the engine's request path and history; the engine knows nothing of uploads
    from .engine import Engine
_ALLOWED = "a file path, bytes or a PIL image (JPEG, PNG or WebP images; MP4 videos)"


def read_input(value: Any) -> tuple[bytes, str | None, str | None]:
    """(bytes, MIME type, file name) of a path, bytes or PIL image; the size is checked before a file is read."""
    if isinstance(value, (bytes, bytearray, memoryview)):
        data = bytes(value)
        check_upload_size(len(data), f"<{len(data)} bytes>")
        return data, _mime(data), None
    if hasattr(value, "save") and hasattr(value, "mode") and hasattr(value, "size"):  # a PIL image
        buf = io.BytesIO()
        try:
            image = value if value.mode in ("RGB", "RGBA", "L") else value.convert("RGBA")
            image.save(buf, format="PNG")
        except Exception as exc:  # odd modes, closed images: Pillow raises many types
            raise ValidationError("file", f"<PIL image {getattr(value, 'size', '?')}>",
                                  f"an image Pillow can save as PNG ({exc})") from None
        data = buf.getvalue()
        check_upload_size(len(data), "<PIL image>")
        return data, "image/png", None
    if isinstance(value, (str, os.PathLike)):
        shown = str(value)[:200]
        try:
            path = Path(value).expanduser()
            if not path.is_file():
                raise ValidationError("file", shown, _ALLOWED + " (no such file)")
            check_upload_size(path.stat().st_size, shown)
            data = path.read_bytes()
        except ValidationError:
            raise
        except (OSError, ValueError, RuntimeError) as exc:  # a name too long, a NUL, no permission
            raise ValidationError("file", shown, f"{_ALLOWED} ({type(exc).__name__}: {exc})") from None
        check_upload_size(len(data), shown)
        return data, _mime(data), path.name
    raise ValidationError("file", value, _ALLOWED)


def _mime(data: bytes) -> str | None:
    return "video/mp4" if is_mp4(data) else sniff_image_type(data)


def _iso(epoch: int | None) -> str | None:
    return datetime.fromtimestamp(epoch, timezone.utc).isoformat() if epoch is not None else None


def _epoch(iso: str | None) -> int | None:
    return int(datetime.fromisoformat(iso).timestamp()) if iso else None


class Uploads:
    """Uploads for one client: through its one request path (an upload takes a slot of the key's budget), into its
    history."""

    def __init__(self, engine: Engine, base_url: str, speed: float = 1.0):
        self.engine = engine
        self.base_url = base_url  # without a password: the key of the files table
        self.margin_s = REUSE_MARGIN_S / max(1e-9, speed)  # a simulator's clock runs faster
        self.sent = 0  # uploads actually sent by this client (re-used ids are not counted)

    async def upload(self, value: Any, *, expires_after: Any = None, filename: str | None = None) -> FileInfo:
        """Upload a path, bytes or PIL image (at most 50 MB); an earlier upload of the same bytes is reused."""
        expires = check_expires_after(expires_after)
        data, mime, name = await asyncio.to_thread(read_input, value)
        return await self.upload_bytes(data, mime, filename or name, expires)

    async def upload_bytes(self, data: bytes, mime: str | None, filename: str | None = None,
                           expires_after: int | None = None) -> FileInfo:
        """Upload bytes already read (size checked here too); reuse a live id of the same bytes."""
        check_upload_size(len(data))
        digest = sha256_hex(data)
        known = await self._reusable(digest)
        if known is not None:
            return known
        fields = {"expires_after": str(expires_after)} if expires_after is not None else {}
        part = (filename_for(data, mime, filename), data, mime or "application/octet-stream")
        reply = await self.engine.sender.send(self.engine.unattached, "POST", FILES_PATH, self._read_upload,
                                              started=time.monotonic(), form=fields, file=part, turn=SUBMIT)
        if reply.outcome != "ok":
            assert reply.error is not None
            raise reply.error
        assert reply.answer is not None
        try:
            info = parse_file(reply.value)
        except ValueError as exc:
            raise APIError(f"the upload was answered {reply.answer.status_code} without a usable file id ({exc})",
                           status_code=reply.answer.status_code or 0) from None
        self.sent += 1
        await asyncio.to_thread(self.engine.store.remember_file, file_id=info.id, base_url=self.base_url,
                                sha256=digest, size=len(data), filename=part[0], expires_at=_iso(info.expires_at))
        return info

    def _read_upload(self, answer: Answer) -> Reading:
        problem = problem_of(answer)
        summary = f"{answer.status_code}" if answer.status_code is not None else f"no answer ({answer.problem})"
        if problem is None:
            return Reading(answer.body, None, None, summary)
        error: GrokError
        if answer.status_code is None or answer.status_code < 400:
            sent = "nothing was sent" if answer.never_sent else "it may have arrived"
            error = ConnectionFailed(f"the upload got no usable answer ({answer.problem}; {sent}). It was not resent: "
                                     "call client.upload() again (an upload bills nothing but a little storage)")
        elif answer.status_code == 413:
            error = ValidationError("file", "<upload>", f"a file of at most {MAX_UPLOAD_BYTES // 10**6} MB "
                                                        "(the server said 413)")
        else:
            error = error_from_response(answer.status_code, answer.body, headers=answer.headers,
                                        secret=self.engine.secret)
        return Reading(None, problem, error, summary)

    async def _reusable(self, digest: str) -> FileInfo | None:
        rows = await asyncio.to_thread(self.engine.store.find_files, digest, self.base_url)
        for row in rows:
            info = FileInfo(row["file_id"], row["bytes"], None, row.get("filename"), _epoch(row.get("expires_at")))
            if not info.alive_at(time.time(), self.margin_s):
                continue
            reply = await self.engine.sender.send(self.engine.unattached, "GET", f"{FILES_PATH}/{info.id}",
                                                  self._read_upload, started=time.monotonic(), turn=POLL)
            if reply.outcome == "ok":
                return info
            if isinstance(reply.error, NotFoundError):
                await asyncio.to_thread(self.engine.store.forget_file, info.id, self.base_url)
        return None

    async def externalize(self, spec: JobSpec) -> JobSpec:
        """The spec with every inline input over 10 MiB uploaded and sent as ``{"file_id": ...}``."""
        return replace(spec, body=await self.externalize_body(spec.body))

    async def externalize_body(self, body: dict[str, Any]) -> dict[str, Any]:
        """A request body with every inline input over 10 MiB uploaded and sent as ``{"file_id": ...}``."""
        for path, payload in large_inline_inputs(body):
            decoded = inline_data(payload)
            if decoded is None:
                continue
            data, mime = decoded
            info = await self.upload_bytes(data, mime)
            body = replace_at(body, path, {"file_id": info.id})
        return body
