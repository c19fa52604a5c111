"""Frames sampled from a local MP4 for a vision judge: a few JPEGs spread evenly over the clip (PyAV, Pillow).

The service takes no video input, so a judge sees sampled frames. Each frame is taken at the middle of
one of ``n`` equal slices of the clip, ``(i + 0.5) / n`` of its length, by seeking to the keyframe
before that time and decoding forward to it (never the whole clip), then scaled to a working width
and encoded as JPEG.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import MeasureError, ValidationError

#: The working width of a judged frame: enough for a vision model to see the scene, small in the request.
DEFAULT_WIDTH = 384
DEFAULT_FRAMES = 6
MIN_WIDTH, MAX_WIDTH = 16, 4096
MAX_FRAMES = 64
JPEG_QUALITY = 85


@dataclass(frozen=True)
class Frame:
    """One sampled frame: its time in the clip (seconds), the JPEG bytes and its size in pixels."""

    t_s: float
    jpeg: bytes
    width: int
    height: int

    def __repr__(self) -> str:  # never the bytes
        return f"Frame(t_s={self.t_s:.3f}, {self.width}×{self.height}, {len(self.jpeg)} bytes)"


def sample_times(duration_s: float, n: int) -> list[float]:
    """The ``n`` times at which frames are sampled: the middle of each of ``n`` equal slices of the clip."""
    return [duration_s * (i + 0.5) / n for i in range(n)]


def sample_frames(path: str | Path, n: int = DEFAULT_FRAMES, width: int = DEFAULT_WIDTH) -> list[Frame]:
    """``n`` frames sampled evenly over a local MP4, scaled to ``width`` pixels wide (height kept in proportion).

    A missing, unreadable or damaged file raises MeasureError naming it (nothing is sent).
    """
    if isinstance(n, bool) or not isinstance(n, int) or not 1 <= n <= MAX_FRAMES:
        raise ValidationError("n", n, f"a whole number of frames from 1 to {MAX_FRAMES}")
    if isinstance(width, bool) or not isinstance(width, int) or not MIN_WIDTH <= width <= MAX_WIDTH:
        raise ValidationError("width", width, f"a width in pixels from {MIN_WIDTH} to {MAX_WIDTH}")
    if not isinstance(path, (str, Path)):
        raise ValidationError("path", path, "the path of a local MP4 file")
    where = Path(path)
    if not where.is_file():
        raise MeasureError(str(path), "there is no file at this path")
    try:
        return _sample(where, n, width)
    except (MeasureError, ValidationError):
        raise
    except Exception as exc:  # PyAV and Pillow raise many types on a damaged file; each one means "unreadable"
        raise MeasureError(str(path), f"it failed to decode ({type(exc).__name__}: {exc})") from None


def _sample(path: Path, n: int, width: int) -> list[Frame]:
    import av  # PyAV, a heavy import: loaded only when frames are sampled

    with av.open(str(path), mode="r") as container:
        if not container.streams.video:
            raise MeasureError(str(path), "it has no video stream")
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        duration = _duration_s(container, stream)
        if duration is None or duration <= 0:
            raise MeasureError(str(path), "its length cannot be read")
        start = float(stream.start_time * stream.time_base) if stream.start_time is not None and stream.time_base \
            else 0.0
        times = sample_times(duration, n)
        frames = [_frame_at(container, stream, start + t, t, width) for t in times]
    missing = [f"{t:.2f} s" for t, f in zip(times, frames, strict=True) if f is None]
    if missing:
        raise MeasureError(str(path), f"it is incomplete: no frame could be decoded at {', '.join(missing)}")
    return [f for f in frames if f is not None]


def _duration_s(container: Any, stream: Any) -> float | None:
    """The clip's length: the video stream's own, else the container's."""
    if stream.duration is not None and stream.time_base:
        return float(stream.duration * stream.time_base)
    if container.duration is not None:
        return float(container.duration) / 1_000_000  # av.time_base: microseconds
    return None


def _frame_at(container: Any, stream: Any, at_s: float, t_s: float, width: int) -> Frame | None:
    """The frame showing at ``at_s``: seek to the keyframe before it, decode forward to the last frame not after it."""
    container.seek(int(at_s / stream.time_base), stream=stream, backward=True, any_frame=False)
    chosen = None
    for frame in container.decode(stream):
        if frame.time is None:
            continue
        if chosen is not None and frame.time > at_s + 1e-6:
            break
        chosen = frame
        if frame.time > at_s + 1e-6:  # the seek landed past the time (the first keyframe is later): take it
            break
    if chosen is None:
        return None
    height = max(2, round(chosen.height * width / chosen.width / 2) * 2)
    image = chosen.to_image(width=width, height=height)  # scaled by swscale while converting to RGB
    buf = io.BytesIO()
    image.save(buf, format="JPEG", quality=JPEG_QUALITY)
    return Frame(t_s=t_s, jpeg=buf.getvalue(), width=width, height=height)
