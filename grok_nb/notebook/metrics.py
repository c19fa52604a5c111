"""Numbers the views show per run, by name: the video's measures (``m_motion``...) and any other numeric run column
registered here; each formatted, and placed on a colour scale across the runs shown together (pure: no I/O).

A view asks ``value(run, name)`` and lists ``present(runs)``: what a run holds is found the same way for every
metric (``run.metric(name)`` when runs grow one, else the measures, else the history columns the run carries), so a
new score (a judge's ``judge_score``) appears in every view once it is registered with ``register``.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from ..api.measure import MEASURE_COLUMNS, MEASURE_FIELDS

__all__ = ["DEFAULT_SHOWN", "METRICS", "Metric", "colour", "label", "present", "register", "scale", "text", "value"]


@dataclass(frozen=True)
class Metric:
    """A number a view can show for a run: its column name, the label people read, its unit, and whether it is
    a whole number."""

    name: str
    label: str
    unit: str = ""
    whole: bool = False
    #: Shown in tables by default (the facts of the file, its length and frame size, are kept but not shown).
    quality: bool = True


#: Every metric the views know, in the order they list them.
METRICS: dict[str, Metric] = {}
#: What a grid's tile footers show until someone picks otherwise (each once a take has it: the judge's score once
#: the grid is judged).
DEFAULT_SHOWN = ("m_motion", "m_brightness", "judge_score")
#: The measures in the order people look for them: what moves, how it looks, how it sounds, then the file's facts.
_ORDER = ("motion", "brightness", "contrast", "colourfulness", "sharpness", "flicker", "cuts", "frozen", "black",
          "loudness_dbfs", "peak_dbfs", "silence", "duration_s", "fps", "width", "height")
_LABELS = {"loudness_dbfs": ("loudness", "dBFS"), "peak_dbfs": ("peak", "dBFS"), "duration_s": ("length", "s"),
           "width": ("width", "px"), "height": ("height", "px")}
_FACTS = ("duration_s", "fps", "width", "height", "peak_dbfs")


def register(name: str, label: str | None = None, *, unit: str = "", whole: bool = False,
             quality: bool = True) -> Metric:
    """Make a numeric run column a metric every view can show (its label defaults to the name, ``m_`` and
    underscores dropped); registering a name again replaces it in place."""
    if not isinstance(name, str) or not name.isidentifier():
        raise ValueError(f"metric name {name!r} is not allowed: a column name such as 'judge_score'")
    metric = Metric(name, label or name.removeprefix("m_").replace("_", " "), unit, whole, quality)
    METRICS[name] = metric
    return metric


for _field in (*_ORDER, *(f for f in MEASURE_FIELDS if f not in _ORDER)):
    _kind = MEASURE_COLUMNS[f"m_{_field}"]
    if _kind in (int, float):
        _label, _unit = _LABELS.get(_field, (_field, ""))
        register(f"m_{_field}", _label, unit=_unit, whole=_kind is int, quality=_field not in _FACTS)


#: A vision judge's score of how well a video shows what was asked (``studio.judge``), 0 to 1.
register("judge_score", "judge")


def _number(raw: Any) -> float | None:
    """A finite number as a float; None for anything else (None, NaN, pandas' NA, text, a flag)."""
    if raw is None or isinstance(raw, (bool, str, bytes)):
        return None
    try:
        number = float(raw)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def value(run: Any, name: str) -> float | None:
    """The run's value of the metric ``name`` (a number), or None when it has none (yet)."""
    if run is None:
        return None
    own = getattr(run, "metric", None)
    found = _number(own(name)) if callable(own) else None
    if found is not None:
        return found
    measures = getattr(run, "measures", None)
    if measures is not None and name.startswith("m_") and hasattr(measures, name[2:]):
        return _number(getattr(measures, name[2:]))
    extra = getattr(run, "extra", None)
    if isinstance(extra, dict) and name in extra:
        return _number(extra[name])
    return _number(getattr(run, name, None)) if not name.startswith("_") else None


def present(runs: Iterable[Any], names: Iterable[str] | None = None) -> list[str]:
    """The metrics (registered order) at least one of the runs has a value of."""
    runs = [r for r in runs if r is not None]
    return [n for n in (names if names is not None else METRICS) if any(value(r, n) is not None for r in runs)]


def text(name: str, number: float | None) -> str:
    """A metric's value as people read it: about three significant digits, whole numbers whole, a dash if none."""
    if number is None or not math.isfinite(number):
        return "—"
    metric = METRICS.get(name)
    if (metric is not None and metric.whole) or (number.is_integer() and abs(number) >= 100):
        return f"{number:,.0f}"
    size = abs(number)
    shown = (f"{number:,.0f}" if size >= 100 else f"{number:.1f}" if size >= 10 else f"{number:.2f}" if size >= 1
             else "0" if size == 0 else f"{number:.3f}" if size >= 0.001 else _exponent(number))
    return shown.replace("-", "\u2212")  # a minus sign, not a hyphen


def _exponent(number: float) -> str:
    mantissa, power = f"{number:.1e}".split("e")
    return f"{mantissa}e{int(power)}"  # 1.5e-5, not 1.5e-05


def with_spread(name: str, mean: float, sd: float) -> str:
    """A mean and its spread as people read them: the spread to two significant digits, the mean to as many
    decimals ("0.02843 ± 0.00014", "1,310 ± 25")."""
    if sd <= 0 or not math.isfinite(sd):
        return text(name, mean)
    decimals = max(0, 1 - math.floor(math.log10(sd)))
    return f"{mean:,.{decimals}f} ± {sd:,.{decimals}f}".replace("-", "\u2212")


def scale(values: Sequence[float | None]) -> list[float | None]:
    """Where each value sits between the smallest and the largest of them (0 to 1); None for a missing value, and
    for every value when they are all the same (nothing to tell apart)."""
    known = [v for v in values if v is not None]
    if not known:
        return [None] * len(values)
    low, high = min(known), max(known)
    if high - low <= 1e-12 * max(abs(low), abs(high), 1.0):
        return [None] * len(values)
    return [None if v is None else (v - low) / (high - low) for v in values]


#: The colour scale, low to high: viridis from its blue-violet (its near-black start left out, which would not show
#: on a dark theme) to its yellow. Views mix it with the theme's background, so text keeps the theme's colour.
_STOPS = ((0.0, (0x48, 0x28, 0x78)), (0.25, (0x3b, 0x52, 0x8b)), (0.5, (0x21, 0x91, 0x8c)),
          (0.75, (0x5e, 0xc9, 0x62)), (1.0, (0xfd, 0xe7, 0x25)))


#: The scale's colours from low to high, for a key beside the values.
SCALE: tuple[str, ...] = tuple("#{:02x}{:02x}{:02x}".format(*c) for _, c in _STOPS)


def colour(position: float | None) -> str | None:
    """The scale's colour at ``position`` (0 to 1) as #rrggbb; None for no position (missing or constant)."""
    if position is None:
        return None
    t = min(1.0, max(0.0, float(position)))
    for (t0, c0), (t1, c1) in zip(_STOPS, _STOPS[1:], strict=False):
        if t <= t1:
            f = (t - t0) / (t1 - t0)
            return "#" + "".join(f"{round(a + (b - a) * f):02x}" for a, b in zip(c0, c1, strict=True))
    return "#{:02x}{:02x}{:02x}".format(*_STOPS[-1][1])


def label(name: str) -> str:
    """How a metric is named in headers and pickers (its unit after it)."""
    metric = METRICS.get(name)
    if metric is None:
        return name.removeprefix("m_").replace("_", " ")
    return f"{metric.label} ({metric.unit})" if metric.unit else metric.label
