"""Prices of the Grok Imagine video models and of the vision models that judge videos, and cost estimates (pure).

The table lives here and nowhere else: the client estimates with it before a request
is sent, and the simulator bills with it (``usage.cost_in_usd_ticks``). Every figure
says whether it is official, where it comes from and when it was recorded; an estimate
built on an unofficial or assumed figure says so (``exact=False`` and a note).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from .models import family_of

#: When xAI published the figures below (its pricing page; every figure is official).
PRICES_AS_OF = "2026-09-29"

#: One US dollar in the API's ``cost_in_usd_ticks`` unit.
TICKS_PER_USD = 10_000_000_000

_XAI_PAGE = "xAI's pricing page (docs.x.ai), published 2026-09-29"


@dataclass(frozen=True)
class Price:
    """One figure of the table: USD (None: nobody publishes one), official or not, its source and date."""

    usd: float | None
    official: bool
    source: str
    as_of: str


def _official(usd: float | None) -> Price:
    return Price(usd, usd is not None, _XAI_PAGE if usd is not None else "not offered", PRICES_AS_OF)


#: Per model: USD per second of output by resolution, per input image (first frame, each reference, each
#: keyframe, a last frame), per second of input video (edits, extensions). Audio is not billed apart.
PRICES: dict[str, dict[str, Price]] = {
    "grok-imagine-video": {
        "480p": _official(0.05), "720p": _official(0.07), "1080p": _official(None),
        "input_image": _official(0.002), "input_video_per_s": _official(0.01),
    },
    "grok-imagine-video-1.5": {
        "480p": _official(0.08), "720p": _official(0.14), "1080p": _official(0.25),
        "input_image": _official(0.01), "input_video_per_s": _official(None),
    },
    "grok-imagine-video-1.5-lite": {
        "480p": _official(0.02), "720p": _official(0.03), "1080p": _official(0.14),
        "input_image": _official(0.01), "input_video_per_s": _official(None),
    },
}

#: The same figures as plain numbers (``None``: no figure known), for a quick look.
PRICE_TABLE: dict[str, dict[str, float | None]] = {
    model: {item: price.usd for item, price in items.items()} for model, items in PRICES.items()
}


def usd_text(amount: float) -> str:
    """Dollars as people read them: two decimals ($2.84); below a cent, two significant digits ($0.0042)."""
    if amount != 0 and abs(amount) < 0.01:  # two decimals would say $0.00 or $0.01
        digits = 1 - math.floor(math.log10(abs(amount)))
        return f"${amount:.{digits}f}".rstrip("0")
    return f"${amount:,.2f}"


@dataclass(frozen=True)
class CostEstimate:
    """A price computed before sending; ``exact`` is False when a figure was unofficial or assumed."""

    usd: float
    exact: bool = True
    notes: tuple[str, ...] = field(default_factory=tuple)

    def __str__(self) -> str:
        text = usd_text(self.usd)
        if not self.exact:
            text += " (estimate: " + "; ".join(self.notes) + ")"
        return text


def usd_from_ticks(ticks: int | float | str | None) -> float | None:
    """Convert ``usage.cost_in_usd_ticks`` to dollars; None when absent or unreadable."""
    if ticks is None or isinstance(ticks, bool):
        return None
    try:
        usd = float(ticks) / TICKS_PER_USD
    except (TypeError, ValueError, OverflowError):
        return None
    return usd if usd == usd and abs(usd) != float("inf") else None


def ticks_from_usd(usd: float) -> int:
    """Convert dollars to the API's tick unit."""
    return round(usd * TICKS_PER_USD)


def _dearest_family() -> str:
    return max(PRICES, key=lambda m: PRICES[m]["720p"].usd or 0.0)


def _family(model: str, notes: list[str]) -> str:
    """The family whose prices apply; an unknown model is priced at the dearest known rates, and says so."""
    family = family_of(model)
    if family is not None and family in PRICES:
        return family
    dearest = _dearest_family()
    notes.append(f"price unknown for model {model!r}: estimated at {dearest}'s rates as a budget guard")
    return dearest


def _figure(family: str, item: str, notes: list[str], *, fallback: tuple[str, str] | None = None) -> float:
    price = PRICES[family].get(item)
    if price is None or price.usd is None:
        if fallback is None:
            return 0.0
        other_family, other_item = fallback
        other = PRICES[other_family][other_item]
        notes.append(f"no {item.replace('_', ' ')} price for {family}: {other_family}'s {other_item} "
                     f"rate ${other.usd:g} used")
        return _figure(other_family, other_item, notes)
    if not price.official:
        notes.append(f"{family} {item.replace('_', ' ')} ${price.usd:g} is unofficial ({price.source}, "
                     f"recorded {price.as_of})")
    return float(price.usd)


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
    Generations: seconds × resolution rate + each input image. Edits: seconds × (resolution
    rate + input video rate). Extensions: added seconds × resolution rate + the input's seconds
    at the input video rate, an estimate (xAI gives no example for extensions).
    """
    if kind not in ("generate", "edit", "extend"):
        raise ValueError(f"kind must be generate, edit or extend, not {kind!r}")
    notes: list[str] = []
    family = _family(model, notes)
    # 1080p without a figure: the 720p rate is the best available floor.
    per_s = _figure(family, resolution, notes, fallback=(family, "720p"))
    if kind == "generate":
        usd = duration * per_s + n_images * _figure(family, "input_image", notes)
    elif kind == "edit":
        seconds = input_duration if input_duration is not None else duration
        video_rate = _figure(family, "input_video_per_s", notes,
                             fallback=("grok-imagine-video", "input_video_per_s"))
        usd = seconds * per_s + seconds * video_rate
    else:
        video_rate = _figure(family, "input_video_per_s", notes,
                             fallback=("grok-imagine-video", "input_video_per_s"))
        usd = duration * per_s + (input_duration or 0.0) * video_rate
        notes.append(f"extension: {duration:g} s added at the {resolution} rate plus the input's "
                     f"{input_duration or 0.0:g} s at ${video_rate:g}/s (xAI publishes no extension example)")
    if not input_duration_known:
        notes.append("input video length unknown, the longest documented input assumed")
    return CostEstimate(usd=round(usd, 6), exact=not notes, notes=tuple(dict.fromkeys(notes)))


#: A reported cost above this many times the estimate is taken as a wrong figure, not a price.
ABSURD_COST_FACTOR = 10.0
#: Below this estimate, ten times it is no bound (a job priced at nothing); a cost up to it is plausible.
_COST_FLOOR_USD = 0.01


def cost_problem(estimate_usd: float, actual_usd: float | None, reported: Any = None) -> str | None:
    """Why the server's cost cannot be counted (missing, not a number, negative, absurd), or None when it can."""
    if actual_usd is None:
        if reported is None:
            return "no cost reported"
        shown = repr(reported)
        return f"the reported cost_in_usd_ticks {shown[:40]} is not a number"
    if actual_usd != actual_usd or actual_usd in (float("inf"), float("-inf")):
        return "the reported cost is not a finite number"
    if actual_usd < 0:
        return f"the reported cost ${actual_usd:.3f} is negative"
    if actual_usd > ABSURD_COST_FACTOR * max(estimate_usd, _COST_FLOOR_USD):
        return (f"the reported cost ${actual_usd:.2f} is over {ABSURD_COST_FACTOR:g}x "
                f"the estimate ${estimate_usd:.3f}")
    return None


# -- the judge models (POST /v1/responses) ------------------------------------------------------------
#: Per judge model: USD per million input tokens (images are billed as input tokens) and per million output
#: tokens. The 4.20 model is sold as a reasoning and a non-reasoning variant at the same price.
JUDGE_PRICES: dict[str, dict[str, Price]] = {
    "grok-4.3": {"input_per_mtok": _official(1.25), "output_per_mtok": _official(2.50)},
    "grok-4.20-0309": {"input_per_mtok": _official(1.25), "output_per_mtok": _official(2.50)},
    "grok-4.6": {"input_per_mtok": _official(2.00), "output_per_mtok": _official(6.00)},
    "grok-4.7": {"input_per_mtok": _official(2.00), "output_per_mtok": _official(6.00)},
}
#: Tokens one image is assumed to cost, by ``detail``: xAI does not publish the figure, so the estimate is
#: deliberately high (``auto`` may pick ``high``).
JUDGE_IMAGE_TOKENS = {"low": 1_000, "high": 2_000, "auto": 2_000}
#: The judgement's JSON is short; output tokens are assumed to stay under this (a reasoning model may spend more,
#: which the answer's own cost then shows).
JUDGE_MAX_OUTPUT_TOKENS = 300
#: Characters of text per token, counted low (English runs near 4), and the request's fixed overhead in tokens
#: (roles, the JSON schema).
_CHARS_PER_TOKEN = 3
_JUDGE_OVERHEAD_TOKENS = 200


def _judge_rates(model: str, notes: list[str]) -> tuple[float, float]:
    """USD per token (input, output); an unknown model at the dearest known rates, with a note saying so."""
    prices = JUDGE_PRICES.get(model)
    if prices is None:
        dearest = max(JUDGE_PRICES, key=lambda m: (JUDGE_PRICES[m]["output_per_mtok"].usd or 0.0,
                                                   JUDGE_PRICES[m]["input_per_mtok"].usd or 0.0))
        notes.append(f"price unknown for judge model {model!r}: estimated at {dearest}'s rates as a budget guard")
        prices = JUDGE_PRICES[dearest]
    return (float(prices["input_per_mtok"].usd or 0.0) / 1e6, float(prices["output_per_mtok"].usd or 0.0) / 1e6)


def judge_usd(model: str, input_tokens: int, output_tokens: int) -> CostEstimate:
    """The price of a judge call that used these tokens (what the simulator bills; exact for a known model)."""
    notes: list[str] = []
    rate_in, rate_out = _judge_rates(model, notes)
    usd = max(0, input_tokens) * rate_in + max(0, output_tokens) * rate_out
    return CostEstimate(usd=round(usd, 8), exact=not notes, notes=tuple(notes))


def judge_estimate(model: str, *, images: int, detail: str, text_chars: int) -> CostEstimate:
    """A conservative price of one judge call before it is sent (never exact: image token counts are unpublished).

    Each image at ``JUDGE_IMAGE_TOKENS[detail]``, the text at one token per three characters plus a fixed
    overhead, and ``JUDGE_MAX_OUTPUT_TOKENS`` of output.
    """
    notes: list[str] = []
    rate_in, rate_out = _judge_rates(model, notes)
    per_image = JUDGE_IMAGE_TOKENS.get(detail, max(JUDGE_IMAGE_TOKENS.values()))
    tokens_in = max(0, images) * per_image + math.ceil(max(0, text_chars) / _CHARS_PER_TOKEN) + _JUDGE_OVERHEAD_TOKENS
    usd = tokens_in * rate_in + JUDGE_MAX_OUTPUT_TOKENS * rate_out
    notes.append(f"xAI does not publish what an image costs in tokens: {per_image:,} per {detail!r} image and "
                 f"{JUDGE_MAX_OUTPUT_TOKENS} output tokens assumed")
    return CostEstimate(usd=round(usd, 8), exact=False, notes=tuple(notes))
