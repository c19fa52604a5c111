"""Turn what users hold (URLs, files, bytes, base64, PIL images, MP4s) into payloads the API accepts.

Whatever the value, a bad one raises ValidationError: never OSError ("File name too
long"), DecompressionBombError, or a decoder's own exception.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import io
import os
import re
import warnings
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from ..errors import ValidationError
from .probe import is_mp4, probe
from .refs import ImageRef, VideoRef, check_text

#: Larger inputs are almost certainly a mistake (a video, a RAW photo) and bloat the request.
MAX_IMAGE_BYTES = 20 * 1024 * 1024
MIN_IMAGE_SIDE, MAX_IMAGE_SIDE = 16, 8192
IMAGE_TYPES = ("image/jpeg", "image/png", "image/webp")
#: An input video travels base64-encoded inside the JSON body; past this, upload it and pass its URL or file_id.
MAX_VIDEO_BYTES = 50 * 1024 * 1024
#: Longer strings cannot name a file (PATH_MAX on Linux is 4096); they are data, or a mistake.
MAX_PATH_LENGTH = 4096
MAX_URL_LENGTH = 8192
_ALLOWED = ("an http(s) URL, a data: URI, a base64 string, a file path, bytes or a PIL image of type JPEG, "
            "PNG or WebP")
_VIDEO_ALLOWED = ("an http(s) URL of an MP4, a local MP4 (path or bytes), a data:video/mp4;base64 URI, "
                  "{'url': ...} or {'file_id': ...}")
_BASE64 = re.compile(r"[A-Za-z0-9+/_\-\s]+={0,2}\s*")


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
    from PIL import Image  # Pillow, a heavy import: loaded only when an image is checked

    if not data:
        raise ValidationError(field, shown, "a non-empty image")
    if len(data) > MAX_IMAGE_BYTES:
        raise ValidationError(field, shown, f"an image of at most {MAX_IMAGE_BYTES // 2**20} MiB "
                                             f"(this one is {len(data) / 2**20:.1f} MiB)")
    mime = sniff_image_type(data)
    if mime is None:
        raise ValidationError(field, shown, "a JPEG, PNG or WebP image (the content is none of these)")
    sides = f"an image from {MIN_IMAGE_SIDE} to {MAX_IMAGE_SIDE} px a side"
    try:
        with warnings.catch_warnings():
            # A header declaring billions of pixels is refused, not decompressed.
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data)) as im:
                width, height = im.size
                if not (MIN_IMAGE_SIDE <= width <= MAX_IMAGE_SIDE and MIN_IMAGE_SIDE <= height <= MAX_IMAGE_SIDE):
                    raise ValidationError(field, shown, f"{sides} (this one is {width}×{height})")
                im.verify()
    except ValidationError:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise ValidationError(field, shown, f"{sides} (its header declares far more pixels)") from None
    except Exception as exc:  # Pillow's decoders raise many types on malformed data; each one is bad input
        raise ValidationError(field, shown, f"a readable image (it failed to decode: {exc})") from None
    return mime


def _from_bytes(data: bytes, field: str, shown: Any) -> ImageRef:
    mime = _check_bytes(data, field, shown)
    uri = f"data:{mime};base64,{base64.b64encode(data).decode('ascii')}"
    return ImageRef({"url": uri}, content_label(data, mime))


def _from_pil(value: Any, field: str) -> ImageRef:
    try:
        width, height = (int(v) for v in value.size)
    except Exception:
        raise ValidationError(field, value, _ALLOWED) from None
    shown = f"<PIL image {width}×{height}>"
    if not (MIN_IMAGE_SIDE <= width <= MAX_IMAGE_SIDE and MIN_IMAGE_SIDE <= height <= MAX_IMAGE_SIDE):
        raise ValidationError(field, shown, f"an image from {MIN_IMAGE_SIDE} to {MAX_IMAGE_SIDE} px a side")
    buf = io.BytesIO()
    try:
        image = value if value.mode in ("RGB", "RGBA", "L") else value.convert("RGBA")
        image.save(buf, format="PNG")
    except Exception as exc:  # an image Pillow cannot convert or encode (odd modes, closed files)
        raise ValidationError(field, shown, f"an image Pillow can save as PNG ({exc})") from None
    return _from_bytes(buf.getvalue(), field, shown)


def _b64decode(text: str) -> bytes | None:
    compact = re.sub(r"\s+", "", text)
    try:
        if "-" in compact or "_" in compact:
            return base64.urlsafe_b64decode(compact + "=" * (-len(compact) % 4))
        return base64.b64decode(compact + "=" * (-len(compact) % 4), validate=True)
    except (binascii.Error, ValueError):
        return None


def _from_data_uri(value: str, field: str, types: tuple[str, ...]) -> tuple[bytes, str]:
    header, _, payload = value.partition(",")
    shown = header[:60] + ",..."
    mime = header[5:].split(";")[0].lower()
    if mime not in types or ";base64" not in header.lower():
        raise ValidationError(field, shown, "a base64 data URI of type " + ", ".join(types))
    try:
        data = base64.b64decode(payload, validate=True)
    except (binascii.Error, ValueError):
        raise ValidationError(field, shown, "valid base64 after the comma") from None
    return data, shown


def _local_file(value: str | os.PathLike[str], field: str, allowed: str, max_bytes: int) -> tuple[bytes, str]:
    """The bytes of a local file, or ValidationError (never OSError/ValueError/RuntimeError)."""
    shown = str(value) if len(str(value)) <= 200 else str(value)[:200] + "..."
    try:
        path = Path(value).expanduser()
        if not path.is_file():
            raise ValidationError(field, shown, allowed + " (no such file)")
        if path.stat().st_size > max_bytes:
            raise ValidationError(field, shown, f"a file of at most {max_bytes // 2**20} MiB")
        return path.read_bytes(), shown
    except ValidationError:
        raise
    except (OSError, ValueError, RuntimeError, TypeError) as exc:  # too long, NUL, unknown ~user, bytes fspath
        raise ValidationError(field, shown, f"{allowed} ({type(exc).__name__}: {exc})") from None


def _file_id_of(value: dict[str, Any], field: str) -> str | None:
    """The file id of a ``{"file_id": ...}`` dict (checked), or None when it has none."""
    file_id = value.get("file_id")
    if not isinstance(file_id, str) or not file_id.strip():
        return None
    check_text(file_id, field, "a file id")
    if len(file_id) > 256 or any(c.isspace() or ord(c) < 32 for c in file_id):
        raise ValidationError(field, value, "a file id without spaces, at most 256 characters")
    return file_id


def check_url(value: str, field: str) -> str:
    """An http(s) URL the service can fetch: a host, no spaces, a sane length."""
    if len(value) > MAX_URL_LENGTH or any(c.isspace() for c in value):
        raise ValidationError(field, value, f"a URL without spaces, at most {MAX_URL_LENGTH} characters")
    try:
        host = urlsplit(value).hostname
    except ValueError:  # a malformed port or IPv6 literal
        host = None
    if not host:
        raise ValidationError(field, value, "an http(s) URL with a host, such as https://example.com/photo.jpg "
                                            "(this one names no host)")
    return value


def _looks_like_path(value: str) -> bool:
    """True for a string shaped like a file path (absolute, ~, ./, or one with a file extension), not data."""
    return value.startswith(("/", "~", "./", "../")) or bool(re.search(r"\.[A-Za-z0-9]{1,5}$", value)) or \
        "\\" in value or bool(re.match(r"[A-Za-z]:[\\/]", value))


def image_ref(value: Any, field: str = "image") -> ImageRef:
    """Normalise one image argument; local data becomes a base64 data URI."""
    if isinstance(value, ImageRef):
        return value
    if isinstance(value, dict):
        file_id = _file_id_of(value, field)
        if file_id:
            return ImageRef({"file_id": file_id}, f"file_id:{file_id}")
        if isinstance(value.get("url"), str):
            return image_ref(value["url"], field)
        raise ValidationError(field, value, 'a dict with "url" or "file_id", or ' + _ALLOWED)
    if isinstance(value, (bytes, bytearray, memoryview)):
        data = bytes(value)
        return _from_bytes(data, field, f"<{len(data)} bytes>")
    if hasattr(value, "save") and hasattr(value, "mode") and hasattr(value, "size"):  # a PIL image
        return _from_pil(value, field)
    if isinstance(value, str):
        check_text(value, field, _ALLOWED)
        if value.startswith(("http://", "https://")):
            return ImageRef({"url": check_url(value, field)}, value)
        if value.startswith("data:"):
            data, shown = _from_data_uri(value, field, IMAGE_TYPES)
            mime = _check_bytes(data, field, shown)
            return ImageRef({"url": value}, content_label(data, mime))
        if len(value) >= 16 and _BASE64.fullmatch(value):
            decoded = _b64decode(value)
            if decoded is not None and sniff_image_type(decoded):
                return _from_bytes(decoded, field, f"<base64 string, {len(value)} characters>")
            if len(value) > 255 and not _looks_like_path(value):  # longer than a file name, no path: data
                raise ValidationError(field, f"<base64 string, {len(value)} characters>",
                                      "base64 of a JPEG, PNG or WebP image, or the path of an existing file "
                                      "(it is neither: no file has this name, and it decodes to none of these)")
        if not value.strip() or len(value) > MAX_PATH_LENGTH or "\x00" in value:
            raise ValidationError(field, value, _ALLOWED)
    if isinstance(value, (str, os.PathLike)):
        data, shown = _local_file(value, field, _ALLOWED, MAX_IMAGE_BYTES)
        return _from_bytes(data, field, shown)
    raise ValidationError(field, value, _ALLOWED)


# -- input videos (edits and extensions) ----------------------------------------------------------
def _video_facts(data: bytes) -> tuple[float | None, str | None]:
    """(seconds, resolution) of an MP4 held in memory; (None, None) when PyAV cannot read it."""
    try:
        info = probe(io.BytesIO(data))
    except Exception:  # the server judges a file PyAV cannot read; an unknown length is estimated high
        return None, None
    short = min(info.width, info.height)
    resolution = "1080p" if short >= 1080 else "720p" if short >= 720 else "480p"
    return round(info.duration, 3), resolution


def _video_from_bytes(data: bytes, field: str, shown: Any) -> VideoRef:
    if not data:
        raise ValidationError(field, shown, "a non-empty MP4")
    if len(data) > MAX_VIDEO_BYTES:
        raise ValidationError(field, shown, f"an MP4 of at most {MAX_VIDEO_BYTES // 2**20} MiB to send inline "
                                             f"(this one is {len(data) / 2**20:.1f} MiB): pass its URL or file_id")
    if not is_mp4(data):
        raise ValidationError(field, shown, "an MP4 file (H.264, H.265 or AV1); the content has no 'ftyp' box")
    seconds, resolution = _video_facts(data)
    uri = "data:video/mp4;base64," + base64.b64encode(data).decode("ascii")
    return VideoRef(uri, seconds, resolution, label=content_label(data, "video/mp4"))


def looks_like_local_video(value: Any) -> bool:
    """True for what :func:`video_ref` handles beyond URLs and runs: bytes, paths, dicts, data URIs, existing files."""
    if isinstance(value, (bytes, bytearray, memoryview, os.PathLike, dict)):
        return True
    if isinstance(value, str) and value.startswith("data:"):
        return True
    if isinstance(value, str) and 0 < len(value) <= MAX_PATH_LENGTH and "\x00" not in value:
        try:
            return Path(value).expanduser().is_file()
        except (OSError, ValueError, RuntimeError):
            return False
    return False


def video_ref(value: Any, field: str = "video") -> VideoRef:
    """An input video: http(s) URL, local MP4 path or bytes (sent as a data URI), data URI, {'url'} or {'file_id'}."""
    if isinstance(value, VideoRef):
        return value
    if isinstance(value, dict):
        file_id = _file_id_of(value, field)
        if file_id:
            return VideoRef(None, file_id=file_id, label=f"file_id:{file_id}")
        if isinstance(value.get("url"), str):
            return video_ref(value["url"], field)
        raise ValidationError(field, value, _VIDEO_ALLOWED)
    if isinstance(value, (bytes, bytearray, memoryview)):
        data = bytes(value)
        return _video_from_bytes(data, field, f"<{len(data)} bytes>")
    if isinstance(value, str):
        check_text(value, field, _VIDEO_ALLOWED)
        if value.startswith(("http://", "https://")):
            return VideoRef(check_url(value, field), label=value)
        if value.startswith("data:"):
            data, shown = _from_data_uri(value, field, ("video/mp4",))
            ref = _video_from_bytes(data, field, shown)
            return VideoRef(value, ref.duration, ref.resolution, label=ref.label)
        if not value.strip() or len(value) > MAX_PATH_LENGTH or "\x00" in value:
            raise ValidationError(field, value, _VIDEO_ALLOWED)
    if isinstance(value, (str, os.PathLike)):
        data, shown = _local_file(value, field, _VIDEO_ALLOWED, MAX_VIDEO_BYTES)
        return _video_from_bytes(data, field, shown)
    raise ValidationError(field, value, _VIDEO_ALLOWED)
