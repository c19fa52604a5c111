"""What is inside an MP4: is it one at all (its first box), and its codecs, frame size, length (PyAV, as ffprobe)."""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, BinaryIO

#: An MP4 (ISO-BMFF) file starts with a box whose type, bytes 4 to 8, is ``ftyp``.
_HEAD = 12


def is_mp4(data: bytes | str | Path) -> bool:
    """True when ``data`` (the bytes, or a file's path) starts like an MP4: an ``ftyp`` box first.

    A path that cannot be read is not an MP4 (False, never OSError).
    """
    if isinstance(data, (str, Path)):
        try:
            with open(data, "rb") as f:
                data = f.read(_HEAD)
        except (OSError, ValueError):
            return False
    return len(data) >= _HEAD and data[4:8] == b"ftyp"


@dataclass(frozen=True)
class VideoInfo:
    """The streams of one video file."""

    video_codec: str
    width: int
    height: int
    pix_fmt: str | None
    fps: float
    frames: int
    duration: float
    audio_codec: str | None

    def __str__(self) -> str:
        audio = f" + {self.audio_codec}" if self.audio_codec else ", no audio"
        return f"{self.video_codec} {self.width}×{self.height} {self.duration:.2f} s{audio}"


def probe(path: str | Path | BinaryIO) -> VideoInfo:
    """Read an MP4's stream facts (a path or a binary file object); the length comes from the video stream's frames."""
    import av  # PyAV, a heavy import: loaded only when a video is probed

    with av.open(str(path) if isinstance(path, (str, Path)) else path, mode="r") as container:
        info = stream_info(container)
        if not info.frames:  # some muxers leave the count out: count by decoding
            frames = sum(1 for _ in container.decode(video=0))
            info = replace(info, frames=frames, duration=frames / info.fps)
        return info


def stream_info(container: Any) -> VideoInfo:
    """The stream facts a container PyAV has open states in its header (its first video and audio streams).

    ``frames`` is 0 when the header leaves the count out; ``duration`` is then the stream's or container's.
    """
    video = container.streams.video[0]
    audio = container.streams.audio[0] if container.streams.audio else None
    fps = float(video.average_rate or 24)
    frames = int(video.frames)
    if frames:
        duration = frames / fps
    elif video.duration is not None and video.time_base is not None:
        duration = float(video.duration * video.time_base)
    else:
        duration = (container.duration or 0) / 1_000_000  # AV_TIME_BASE
    return VideoInfo(
        video_codec=video.codec_context.name, width=video.codec_context.width,
        height=video.codec_context.height, pix_fmt=video.codec_context.pix_fmt, fps=fps, frames=frames,
        duration=duration, audio_codec=audio.codec_context.name if audio else None,
    )


#: Top-level boxes every playable MP4 has: the file type, the index (moov), the media data (mdat).
_REQUIRED_BOXES = ("ftyp", "moov", "mdat")


def mp4_problem(path: str | Path, expected_bytes: int | None = None, *, decode: bool = True) -> str | None:
    """Why a file on disk is not a whole MP4 (None when it is): size against what was downloaded, the box
    structure from the first byte to the last, then PyAV opening it and decoding its first frame (unless
    ``decode`` is False: a caller about to decode it anyway)."""
    try:
        size = Path(path).stat().st_size
    except OSError as exc:
        return f"it cannot be read ({exc.strerror or exc})"
    if expected_bytes is not None and size != expected_bytes:
        return f"it has {size} bytes where {expected_bytes} were downloaded"
    problem = _box_problem(Path(path), size)
    if problem is not None or not decode:
        return problem
    try:
        import av  # PyAV: heavy, only loaded when a cached file is checked

        with av.open(str(path), "r") as container:
            if not container.streams.video:
                return "it has no video stream"
            next(container.decode(video=0))
    except StopIteration:
        return "its video stream has no frame"
    except Exception as exc:  # PyAV raises its own error classes for every kind of damage
        return f"PyAV cannot decode it ({type(exc).__name__}: {' '.join(str(exc).split())[:120]})"
    return None


def _box_problem(path: Path, size: int) -> str | None:
    """Walk the top-level boxes: each one must fit in the file, and they must end exactly at its end."""
    seen: list[str] = []
    offset = 0
    try:
        with open(path, "rb") as f:
            while offset < size:
                f.seek(offset)
                header = f.read(16)
                if len(header) < 8:
                    return f"it ends inside a box header at byte {offset} of {size} (truncated)"
                box_size = int.from_bytes(header[:4], "big")
                kind = header[4:8].decode("latin-1")
                if box_size == 1:  # a 64-bit size follows the type
                    if len(header) < 16:
                        return f"it ends inside a box header at byte {offset} of {size} (truncated)"
                    box_size = int.from_bytes(header[8:16], "big")
                elif box_size == 0:  # the box runs to the end of the file
                    box_size = size - offset
                if box_size < 8 or not kind.isprintable():
                    return f"its box structure is damaged at byte {offset} (a {box_size}-byte {kind!r} box)"
                if offset + box_size > size:
                    return (f"its {kind!r} box needs {offset + box_size} bytes but the file has {size} "
                            "(truncated)")
                if not seen and kind != "ftyp":
                    return f"it does not start with an 'ftyp' box (found {kind!r})"
                seen.append(kind)
                offset += box_size
    except OSError as exc:
        return f"it cannot be read ({exc.strerror or exc})"
    missing = [k for k in _REQUIRED_BOXES if k not in seen]
    if missing:
        return f"it has no {', '.join(repr(m) for m in missing)} box"
    return None
