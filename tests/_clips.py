"""Small MP4s made for a test with PyAV: each frame's picture is a function of its index, so a test knows what
any sampled frame must show."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np


def write_clip(path: Path, picture: Callable[[int], np.ndarray], *, frames: int = 48, fps: int = 24,
               width: int = 160, height: int = 96, gop: int = 12) -> Path:
    """An H.264 MP4 of ``frames`` frames; ``picture(i)`` gives frame i as an (height, width, 3) uint8 array."""
    import av

    with av.open(str(path), mode="w") as out:
        stream = out.add_stream("libx264", rate=fps)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        stream.gop_size = gop  # keyframes every gop frames: sampling must decode forward from one
        stream.options = {"crf": "18", "preset": "ultrafast", "bf": "0"}
        for i in range(frames):
            frame = av.VideoFrame.from_ndarray(picture(i), format="rgb24")
            for packet in stream.encode(frame):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    return path


def grey_ramp(frames: int, width: int = 160, height: int = 96) -> Callable[[int], np.ndarray]:
    """Frame i is a flat grey whose level rises with i (from 16 to 240): its brightness tells its index."""
    def picture(i: int) -> np.ndarray:
        level = round(16 + 224 * i / max(1, frames - 1))
        return np.full((height, width, 3), level, dtype=np.uint8)
    return picture


def flat(rgb: tuple[int, int, int], *, noise: int = 0, moving: bool = False, width: int = 160,
         height: int = 96) -> Callable[[int], np.ndarray]:
    """A flat colour (with fixed noise), optionally with a white square crossing it (motion)."""
    rng = np.random.default_rng(0)
    base = np.clip(np.array(rgb, dtype=np.int16) + rng.integers(-noise, noise + 1, (height, width, 3)), 0, 255)
    base = base.astype(np.uint8)

    def picture(i: int) -> np.ndarray:
        image = base.copy()
        if moving:
            x = (i * 7) % (width - 24)
            image[30:54, x:x + 24] = 255
        return image
    return picture
