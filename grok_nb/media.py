"""Turn what users hold (URLs, files, bytes, PIL images) into image payloads the API accepts."""

from __future__ import annotations

import base64
import binascii
import hashlib
import io
import os
from pathlib import Path
from typing import Any

from .errors import ValidationError
from .validation import ImageRef

#: Larger inputs are almost certainly a mistake (a video, a RAW photo) and bloat the request.
MAX_IMAGE_BYTES = 20 * 1024 * 1024
MIN_IMAGE_SIDE, MAX_IMAGE_SIDE = 16, 8192
IMAGE_TYPES = ("image/jpeg", "image/png", "image/webp")
_ALLOWED = "an http(s) URL, a data: URI, a file path, bytes or a PIL image of type JPEG, PNG or WebP"


def sniff_image_type(data: bytes) -> str | None:
    """The MIME type from the file's magic bytes, for the three types the API accepts."""
    if data[:3] == b"\xff\xd8\xff":
        return "image/jpeg"
    if data[:8] == b"\x89PNG\r\n\x1a\n":
        return "image/png"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    return None


def content_label(data: bytes, mime: str) -> str:
    """What the history keeps for inline data: a content hash, never the bytes."""
    return f"sha256:{hashlib.sha256(data).hexdigest()[:16]} ({mime}, {len(data)} bytes)"


def _check_bytes(data: bytes, field: str, shown: Any) -> str:
    if not data:
        raise ValidationError(field, shown, "a non-empty image")
    if len(data) > MAX_IMAGE_BYTES:
        raise ValidationError(field, shown, f"an image of at most {MAX_IMAGE_BYTES // 2**20} MiB "
                                             f"(this one is {len(data) / 2**20:.1f} MiB)")
    mime = sniff_image_type(data)
    if mime is None:
        raise ValidationError(field, shown, "a JPEG, PNG or WebP image (the content is none of these)")
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(io.BytesIO(data)) as im:
            im.verify()
            width, height = im.size
    except (UnidentifiedImageError, OSError, SyntaxError) as exc:
        raise ValidationError(field, shown, f"a readable image (it failed to decode: {exc})") from None
    if not (MIN_IMAGE_SIDE <= width <= MAX_IMAGE_SIDE and MIN_IMAGE_SIDE <= height <= MAX_IMAGE_SIDE):
        raise ValidationError(field, shown, f"an image from {MIN_IMAGE_SIDE} to {MAX_IMAGE_SIDE} px a side "
                                             f"(this one is {width}×{height})")
    return mime


def _from_bytes(data: bytes, field: str, shown: Any) -> ImageRef:
    mime = _check_bytes(data, field, shown)
    uri = f"data:{mime};base64,{base64.b64encode(data).decode('ascii')}"
    return ImageRef({"url": uri}, content_label(data, mime))


def image_ref(value: Any, field: str = "image") -> ImageRef:
    """Normalise one image argument; local data becomes a base64 data URI."""
    if isinstance(value, ImageRef):
        return value
    if isinstance(value, dict):
        if isinstance(value.get("file_id"), str) and value["file_id"]:
            return ImageRef({"file_id": value["file_id"]}, f"file_id:{value['file_id']}")
        if isinstance(value.get("url"), str):
            return image_ref(value["url"], field)
        raise ValidationError(field, value, 'a dict with "url" or "file_id", or ' + _ALLOWED)
    if isinstance(value, (bytes, bytearray, memoryview)):
        data = bytes(value)
        return _from_bytes(data, field, f"<{len(data)} bytes>")
    if hasattr(value, "save") and hasattr(value, "mode") and hasattr(value, "size"):  # a PIL image
        buf = io.BytesIO()
        image = value if value.mode in ("RGB", "RGBA", "L") else value.convert("RGBA")
        image.save(buf, format="PNG")
        return _from_bytes(buf.getvalue(), field, f"<PIL image {value.size[0]}×{value.size[1]}>")
    if isinstance(value, str) and value.startswith(("http://", "https://")):
        return ImageRef({"url": value}, value)
    if isinstance(value, str) and value.startswith("data:"):
        header, _, payload = value.partition(",")
        mime = header[5:].split(";")[0].lower()
        if mime not in IMAGE_TYPES or ";base64" not in header:
            raise ValidationError(field, header + ",...", "a base64 data URI of type " + ", ".join(IMAGE_TYPES))
        try:
            data = base64.b64decode(payload, validate=True)
        except (binascii.Error, ValueError):
            raise ValidationError(field, header + ",...", "valid base64 after the comma") from None
        _check_bytes(data, field, header + ",...")
        return ImageRef({"url": value}, content_label(data, mime))
    if isinstance(value, (str, os.PathLike)):
        path = Path(value).expanduser()
        if not path.is_file():
            raise ValidationError(field, str(value), _ALLOWED + " (no such file)")
        if path.stat().st_size > MAX_IMAGE_BYTES:
            raise ValidationError(field, str(value), f"an image of at most {MAX_IMAGE_BYTES // 2**20} MiB")
        return _from_bytes(path.read_bytes(), field, str(value))
    raise ValidationError(field, value, _ALLOWED)
