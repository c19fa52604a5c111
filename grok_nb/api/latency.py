"""How long a job takes, from xAI's reported latencies: one model for the client's planner and the simulator (pure).

Reported: 1 s 480p in ~12–20 s; 6 s 480p 1–3 min; 15 s 720p 4–8 min; edits ~80 s; higher
resolution, longer duration and edits take longer. The cheaper lite model is assumed faster.
"""

from __future__ import annotations

from dataclasses import dataclass

from .models import family_of

#: How much longer a second of output takes at each resolution than at 480p.
RESOLUTION_FACTOR = {"480p": 1.0, "720p": 1.7, "1080p": 2.6}
#: Relative speed of a family (the price table's cheaper lite model is assumed faster).
MODEL_FACTOR = {"grok-imagine-video-1.5-lite": 0.6}
#: Extra seconds an input image adds (fetching and encoding it).
IMAGE_OVERHEAD_S = 5.0
#: When a job's length is unknown, the latency of a 6 s clip is assumed.
DEFAULT_SECONDS = 6.0


@dataclass(frozen=True)
class LatencyPrior:
    """What a job's latency (submit → done) is expected to be, in seconds of the server's clock.

    ``low`` and ``high`` are the 5th and 95th percentiles; ``samples``, when given, are latencies of
    finished jobs like it (seconds), whose spread the expectation follows more closely than those two.
    """

    low: float
    typical: float
    high: float
    source: str = "documented"
    samples: tuple[float, ...] = ()


def typical_latency_s(kind: str, seconds: float | None, resolution: str | None, *, has_image: bool = False,
                      model: str | None = None) -> float:
    """The service's typical latency in real seconds: 1 s 480p ≈ 22 s, 6 s 480p ≈ 1.5 min, 15 s 720p ≈ 6 min.

    An edit of ~6 s takes ≈ 80 s. ``seconds`` is the output's length (None: 6 s).
    """
    factor = RESOLUTION_FACTOR.get(resolution or "480p", 1.0) * MODEL_FACTOR.get(family_of(model) or "", 1.0)
    length = float(seconds) if seconds else DEFAULT_SECONDS
    if kind == "edit":
        return 20.0 + 10.0 * length * factor
    return 8.0 + 14.0 * length * factor + (IMAGE_OVERHEAD_S if has_image else 0.0)


def documented_prior(kind: str, duration: float | None, resolution: str | None, speed: float = 1.0,
                     model: str | None = None) -> LatencyPrior:
    """The documented spread around the typical latency (0.6× to 2×), scaled by ``speed`` (a simulator's clock)."""
    typical = typical_latency_s(kind, duration, resolution, model=model)
    return LatencyPrior(0.6 * typical / speed, typical / speed, 2.0 * typical / speed)
