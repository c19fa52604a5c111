"""Small poster thumbnails of videos (PyAV + Pillow): a few KB of JPEG as a data URI, never the video's bytes."""

from __future__ import annotations

import base64
import functools
import io
from pathlib import Path

#: Wide enough to recognise a clip in a saved notebook, small enough that twelve stay under ~100 KB.
POSTER_WIDTH = 240


def poster_data_uri(path: str | Path | None, width: int = POSTER_WIDTH, at_s: float = 0.5) -> str | None:
    """A JPEG data URI of the frame at ``at_s`` (or the last one before it); None when unreadable."""
    if path is None or not Path(path).is_file():
        return None
    p = Path(path)
    return _poster(str(p), p.stat().st_mtime_ns, width, at_s)


@functools.lru_cache(maxsize=512)
def _poster(path: str, _mtime: int, width: int, at_s: float) -> str | None:
    import av  # PyAV and Pillow: heavy, loaded only when a poster is first cut
    from PIL import Image

    try:
        with av.open(path) as container:
            frame = None
            for frame in container.decode(video=0):
                # A clip may fade in: a frame a moment in says more than the very first one.
                if frame.time is not None and frame.time >= at_s:
                    break
            if frame is None:
                return None
            image = frame.to_image()  # type: ignore[no-untyped-call]
    except (av.error.FFmpegError, OSError):
        return None
    image.thumbnail((width, width), Image.Resampling.LANCZOS)
    buf = io.BytesIO()
    image.convert("RGB").save(buf, "JPEG", quality=70, optimize=True)
    return "data:image/jpeg;base64," + base64.b64encode(buf.getvalue()).decode("ascii")
