"""Prices of the Grok Imagine video models and cost estimates (pure functions, no I/O).

The table lives here and nowhere else: the client estimates with it before a request
is sent, and the simulator bills with it (``usage.cost_in_usd_ticks``).
"""

from __future__ import annotations

from dataclasses import dataclass, field

#: When the table below was last checked against xAI's model page.
PRICES_AS_OF = "2026-06-01"

#: One US dollar in the API's ``cost_in_usd_ticks`` unit.
TICKS_PER_USD = 10_000_000_000

#: USD per second of output by resolution, per input image, per second of input video.
#: ``None`` means xAI publishes no figure.
PRICE_TABLE: dict[str, dict[str, float | None]] = {
    "grok-imagine-video": {
        "480p": 0.05,
        "720p": 0.07,
        "1080p": None,
        "input_image": 0.002,
        "input_video_per_s": 0.01,
    },
    "grok-imagine-video-1.5": {
        "480p": 0.08,
        "720p": 0.14,
        "1080p": None,
        "input_image": 0.01,
        "input_video_per_s": None,
    },
}


@dataclass(frozen=True)
class CostEstimate:
    """A price computed before sending; ``exact`` is False when a figure was assumed."""

    usd: float
    exact: bool = True
    notes: tuple[str, ...] = field(default_factory=tuple)

    def __str__(self) -> str:
        text = f"${self.usd:.3f}"
        if not self.exact:
            text += " (estimate: " + "; ".join(self.notes) + ")"
        return text


def usd_from_ticks(ticks: int | float | str | None) -> float | None:
    """Convert ``usage.cost_in_usd_ticks`` to dollars; None when absent or unreadable."""
    if ticks is None:
        return None
    try:
        return float(ticks) / TICKS_PER_USD
    except (TypeError, ValueError):
        return None


def ticks_from_usd(usd: float) -> int:
    """Convert dollars to the API's tick unit."""
    return round(usd * TICKS_PER_USD)


def _rates(model: str) -> dict[str, float | None]:
    try:
        return PRICE_TABLE[model]
    except KeyError:
        raise KeyError(f"no price known for model {model!r}; known: {sorted(PRICE_TABLE)}") from None


def _per_second(model: str, resolution: str, notes: list[str]) -> float:
    rates = _rates(model)
    rate = rates.get(resolution)
    if rate is None:
        # 1080p has no published price: the 720p rate is the best available floor.
        rate = rates["720p"]
        notes.append(f"no published {resolution} price, {model} 720p rate used as a floor")
    return float(rate)  # type: ignore[arg-type]


def estimate(
    kind: str,
    *,
    model: str,
    duration: float,
    resolution: str,
    n_images: int = 0,
    input_duration: float | None = None,
    input_duration_known: bool = True,
) -> CostEstimate:
    """Estimate one job's price in USD from the table.

    ``duration`` is the output's length for generations and edits, the added part
    for extensions; ``input_duration`` is the input video's length (edit/extend).
    """
    notes: list[str] = []
    per_s = _per_second(model, resolution, notes)
    rates = _rates(model)
    if kind == "generate":
        usd = duration * per_s + n_images * float(rates["input_image"] or 0.0)
    elif kind == "edit":
        seconds = input_duration if input_duration is not None else duration
        video_rate = rates["input_video_per_s"]
        if video_rate is None:
            video_rate = PRICE_TABLE["grok-imagine-video"]["input_video_per_s"]
            notes.append(f"no published input-video price for {model}, grok-imagine-video's used")
        usd = seconds * per_s + seconds * float(video_rate or 0.0)
    elif kind == "extend":
        # No official figure: bill the whole output (input + added) at the resolution
        # rate, which errs high, as a budget guard should.
        seconds = duration + (input_duration or 0.0)
        usd = seconds * per_s
        notes.append("no published extension price, output seconds at the resolution rate")
    else:
        raise ValueError(f"kind must be generate, edit or extend, not {kind!r}")
    if not input_duration_known:
        notes.append("input video length unknown, the longest documented input assumed")
    return CostEstimate(usd=round(usd, 6), exact=not notes, notes=tuple(notes))
