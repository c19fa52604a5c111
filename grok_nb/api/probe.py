"""What is inside an MP4: is it one at all (its first box), and its codecs, frame size, length (PyAV, as ffprobe)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

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
        video = container.streams.video[0]
        audio = container.streams.audio[0] if container.streams.audio else None
        fps = float(video.average_rate or 24)
        frames = int(video.frames)
        if not frames:  # some muxers leave the count out: count by decoding
            frames = sum(1 for _ in container.decode(video=0))
        return VideoInfo(
            video_codec=video.codec_context.name, width=video.codec_context.width,
            height=video.codec_context.height, pix_fmt=video.codec_context.pix_fmt, fps=fps, frames=frames,
            duration=frames / fps, audio_codec=audio.codec_context.name if audio else None,
        )
