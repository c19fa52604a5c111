"""What the simulator's clips are made of, known without rendering one (the server answers from it)."""

from __future__ import annotations

#: Frames per second of every simulated clip.
FPS = 24
#: Audio samples per second.
SAMPLE_RATE = 48_000


def clip_seconds(seconds: float) -> float:
    """The length of a clip asked to last ``seconds``: a whole number of frames, at least one."""
    return max(1, int(round(seconds * FPS))) / FPS
