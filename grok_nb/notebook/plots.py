"""Plots from the history (matplotlib, no global pyplot state) that read in light and dark notebooks.

A kernel cannot see the front end's theme, so ``theme="auto"`` draws on a transparent background with
mid-grey text that reads on white and on near-black; ``"light"`` and ``"dark"`` pick text for one of them.
"""

from __future__ import annotations

import io
import textwrap
from typing import Any

import matplotlib
import matplotlib.dates as mdates
import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch
from matplotlib.ticker import MaxNLocator

from ..api.pricing import usd_text
from ..errors import ValidationError
from . import looks
from .looks import TONE_HEX
from .timeline import Timeline

#: Text and grid colours per theme; backgrounds are always transparent (the notebook's own shows through).
THEMES = {
    "auto": {"fg": "#808080", "grid": "#80808040"},
    "light": {"fg": "#303030", "grid": "#30303026"},
    "dark": {"fg": "#d8d8d8", "grid": "#d8d8d833"},
}
#: Request kinds on a timeline (mid-saturation: they read on both backgrounds).
KIND_COLOURS: dict[str, str] = {"submit": TONE_HEX["busy"], "poll": TONE_HEX["idle"], "done": TONE_HEX["ok"],
                                "download": "#a855f7", "refused": TONE_HEX["bad"]}
#: Consecutive request slots alternate between two colours, so each slot's edges show.
SLOT_COLOURS = (TONE_HEX["busy"], TONE_HEX["warn"])


class PlotFigure(Figure):
    """A Figure that shows itself as a PNG in any notebook, without pyplot's inline backend."""

    #: The numbers a plot of measures was drawn from (``measures_by``): its points and its means.
    points: Any = None
    means: Any = None

    def _repr_png_(self) -> bytes:
        buf = io.BytesIO()
        self.savefig(buf, format="png", dpi=90, transparent=True)
        return buf.getvalue()


def _outcome_colour(status: str, otherwise: str) -> str:
    """A finished job's colour from looks.py (green, red, amber); a running one keeps ``otherwise``."""
    seen = looks.look(status)
    return TONE_HEX[seen.tone] if seen.tone in ("ok", "bad", "warn") else otherwise


def _theme(theme: str) -> dict[str, str]:
    if theme not in THEMES:
        raise ValidationError("theme", theme, "'auto' (reads on light and dark), 'light' or 'dark'")
    return THEMES[theme]


def _figure(size: tuple[float, float], theme: str) -> tuple[PlotFigure, Any, dict[str, str]]:
    colours = _theme(theme)
    fig = PlotFigure(figsize=size)
    fig.patch.set_alpha(0.0)
    ax = fig.add_subplot()
    ax.set_facecolor("none")
    return fig, ax, colours


def _style(ax: Any, colours: dict[str, str]) -> None:
    fg = colours["fg"]
    for spine in ax.spines.values():
        spine.set_color(fg)
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)
    ax.tick_params(colors=fg, which="both")
    ax.xaxis.label.set_color(fg)
    ax.yaxis.label.set_color(fg)
    ax.title.set_color(fg)
    ax.grid(True, color=colours["grid"], linewidth=0.6)
    ax.set_axisbelow(True)
    legend = ax.get_legend()
    if legend is not None:
        legend.get_frame().set_alpha(0.0)
        for text in [*legend.get_texts(), legend.get_title()]:
            text.set_color(fg)


def latency_by_resolution_and_duration(df: Any, theme: str = "auto") -> Any:
    """Latency (s) against video length, one series per resolution, for finished generations."""
    fig, ax, colours = _figure((6.5, 3.6), theme)
    done = df[(df["status"] == "done") & df["latency_s"].notna()]
    for resolution, group in done.groupby("resolution"):
        points = ax.scatter(group["video_duration"], group["latency_s"], label=str(resolution), alpha=0.8)
        means = group.groupby("video_duration")["latency_s"].mean()
        ax.plot(means.index, means.values, alpha=0.6, color=points.get_facecolor()[0])
    ax.set_xlabel("video length (s)")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))  # lengths are whole seconds: no tick at 2.25 s
    ax.set_ylabel("latency (s)")
    ax.set_title("Latency by resolution and duration")
    if not done.empty:
        ax.legend(title="resolution")
    _style(ax, colours)
    fig.tight_layout()
    return fig


#: Jobs submitted further apart than this belong to different batches (a grid, a re-run of an experiment).
BATCH_GAP_S = 120.0
#: Below this span (or when every batch is this short), cost is shown per job, not against the clock.
SHORT_SPAN_S = 600.0


def _batches(spent: Any) -> list[tuple[str, list[int]]]:
    """Consecutive jobs (in submit order) grouped into batches: a gap over BATCH_GAP_S or other tags starts one.

    Each batch is named by its tags (the experiment) and its start time, so repeated runs of one
    experiment read apart: "fox-grid · 10:42", "fox-grid · 11:15".
    """
    out: list[tuple[str, list[int]]] = []
    previous_at, previous_tags = None, None
    for i, (at, tags) in enumerate(zip(spent["submitted_at"], spent["tags"], strict=True)):
        key = tuple(sorted(tags)) if isinstance(tags, (list, tuple)) else ()
        if previous_at is None or (at - previous_at).total_seconds() > BATCH_GAP_S or key != previous_tags:
            name = ", ".join(key) or "runs"
            out.append((f"{name} · {at:%H:%M}", []))
        out[-1][1].append(i)
        previous_at, previous_tags = at, key
    return out


def cost_over_time(df: Any, theme: str = "auto") -> Any:
    """What finished jobs cost (actual where reported, else estimated): per job in submit order when they ran
    close together (a grid), else cumulative against a clock axis; batches (re-runs of an experiment) coloured apart."""
    colours = _theme(theme)
    spent = df[(df["status"] == "done") & df["submitted_at"].notna()].sort_values("submitted_at")
    spent = spent.reset_index(drop=True)
    if "tags" not in spent.columns:
        spent = spent.assign(tags=[[] for _ in range(len(spent))])
    cost = spent["cost_actual_usd"].fillna(spent["cost_estimated_usd"]).fillna(0.0).to_numpy(dtype=float)
    batches = _batches(spent) if len(spent) else []
    when = list(spent["submitted_at"])
    span = (when[-1] - when[0]).total_seconds() if when else 0.0
    batch_spans = [(when[ix[-1]] - when[ix[0]]).total_seconds() for _, ix in batches]
    # A few bursts (grids, re-runs of one) read best per job; jobs spread over hours, against the clock.
    bursts = len(batches) <= 8 and len(cost) >= 3 * len(batches) and max(batch_spans, default=0.0) < SHORT_SPAN_S
    by_job = span < SHORT_SPAN_S or bursts
    palette = [matplotlib.colormaps["tab10"](k % 10) for k in range(max(len(batches), 1))]
    money = "${x:,.3f}" if len(cost) and float(cost.sum()) < 1 else "${x:,.2f}"
    if by_job:
        fig, ax, _ = _figure((6.5, 3.4), theme)
        order = np.arange(1, len(cost) + 1)
        for k, (label, ix) in enumerate(batches):
            ax.bar(order[ix], cost[ix], color=palette[k], alpha=0.85, label=label, width=0.8)
            if k:
                ax.axvline(order[ix[0]] - 0.5, color=colours["fg"], linewidth=0.6, alpha=0.6)
        total = ax.twinx()
        total.step(order, np.cumsum(cost), where="mid", color=colours["fg"], linewidth=1.2, label="running total")
        total.set_ylim(bottom=0, top=max(float(cost.sum()) * 1.1, 0.01))
        total.yaxis.set_major_formatter(money)
        total.set_ylabel("running total")
        total.patch.set_alpha(0.0)
        _style(total, colours)
        total.grid(False)
        total.spines["right"].set_visible(True)
        ax.set_xlabel("jobs in submit order")
        ax.set_ylabel("cost per job")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True, nbins=12))
        ax.set_xlim(0.4, max(len(cost), 1) + 0.6)
        ax.set_ylim(0, max(float(cost.max()) if len(cost) else 0.0, 0.01) * 1.5)  # room for the legend
        ax.set_title(f"Cost by job: {len(cost)} jobs, {usd_text(float(cost.sum()))}")
    else:
        fig, ax, _ = _figure((6.5, 3.2), theme)
        times = np.array([t.tz_convert("UTC").tz_localize(None).to_datetime64() for t in when])
        running = np.cumsum(cost)
        ax.step(times, running, where="post", color=colours["fg"], linewidth=1.0, alpha=0.7)
        for k, (label, ix) in enumerate(batches):
            ax.plot(times[ix], running[ix], "o", markersize=4, color=palette[k], label=label)
        one_day = when[0].date() == when[-1].date()
        ax.xaxis.set_major_locator(mdates.AutoDateLocator(minticks=3, maxticks=7))  # type: ignore[no-untyped-call]
        ax.xaxis.set_major_formatter(mdates.DateFormatter("%H:%M" if one_day else "%m-%d %H:%M"))  # type: ignore[no-untyped-call]
        ax.set_xlabel(f"submitted (UTC, {when[0]:%Y-%m-%d})" if one_day else "submitted (UTC)")
        ax.set_ylabel("cumulative cost")
        ax.set_ylim(bottom=0, top=max(float(running[-1]) * 1.15, 0.01))
        ax.set_title(f"Cost over time: {len(cost)} jobs, {usd_text(float(cost.sum()))}")
    ax.yaxis.set_major_formatter(money)
    if 1 < len(batches) <= 10:  # more would be a list, not a legend
        ax.legend(title="batch (experiment · start)", fontsize=8, title_fontsize=8, loc="upper left")
    _style(ax, colours)
    fig.tight_layout()
    return fig


def plot_timeline(timeline: Timeline, theme: str = "auto", width: float = 8.0) -> Any:
    """One row per job (submit ▶, polls |, done ★, download bar, refusals ×) under a row of request slots."""
    # Each API request takes one slot of the shared rate limit, 1/rate seconds wide: slots that overlap are
    # requests closer together than the limit allows.
    lanes = timeline.lanes
    height = 2.0 + 0.32 * max(1, len(lanes))
    fig, ax, colours = _figure((width, height), theme)
    fg = colours["fg"]
    slot_y = -1.3
    interval = timeline.interval
    for n, r in enumerate(timeline.api_requests):
        if interval:
            ax.broken_barh([(r.start, interval)], (slot_y - 0.35, 0.7),
                           facecolors=KIND_COLOURS["refused"] if r.refused else SLOT_COLOURS[n % 2],
                           alpha=0.85, linewidth=0)
        else:
            ax.plot([r.start], [slot_y], marker="|", markersize=12, color=KIND_COLOURS["submit"])
    for i, lane in enumerate(lanes):
        if not lane.requests:
            continue
        first, last = lane.requests[0].start, max(r.end for r in lane.requests)
        ax.plot([first, last], [i, i], color=_outcome_colour(lane.status, fg), alpha=0.45, linewidth=2,
                solid_capstyle="butt")
        for r in lane.requests:
            if r.refused:
                ax.plot([r.start], [i], marker="x", markersize=7, color=KIND_COLOURS["refused"], linestyle="none")
            elif r.kind == "submit":
                ax.plot([r.start], [i], marker=">", markersize=7, color=KIND_COLOURS["submit"], linestyle="none")
            elif r.kind == "poll":
                ax.plot([r.start], [i], marker="|", markersize=9, color=KIND_COLOURS["poll"], linestyle="none")
            elif r.kind == "done":
                ax.plot([r.start], [i], marker="*", markersize=10,
                        color=_outcome_colour(lane.status, KIND_COLOURS["done"]),
                        linestyle="none")
            else:
                ax.broken_barh([(r.start, max(r.end - r.start, 1e-3))], (i - 0.22, 0.44),
                               facecolors=KIND_COLOURS["download"], linewidth=0)
    labels = ["API request slots" if interval else "API requests"]
    labels += [lane.label if len(lane.label) <= 34 else lane.label[:33] + "…" for lane in lanes]
    ax.set_yticks([slot_y, *range(len(lanes))], labels=labels)
    ax.set_ylim(len(lanes) - 0.4, slot_y - 0.8)  # first job on top, the shared strip above it
    ax.axhline(-0.6, color=fg, linewidth=0.6, alpha=0.5)
    ax.set_xlim(left=0, right=max(timeline.end, 0.1) * 1.02)
    ax.set_xlabel("seconds since the first request")
    ax.set_title(timeline.summary().replace(" (", "\n(", 1), fontsize=10)
    handles = [Line2D([], [], marker=">", linestyle="none", color=KIND_COLOURS["submit"], label="submit (POST)"),
               Line2D([], [], marker="|", linestyle="none", markersize=9, color=KIND_COLOURS["poll"],
                      label="poll (GET)"),
               Line2D([], [], marker="*", linestyle="none", markersize=10, color=KIND_COLOURS["done"], label="done"),
               Patch(color=KIND_COLOURS["download"], label="download MP4"),
               Line2D([], [], marker="x", linestyle="none", color=KIND_COLOURS["refused"], label="refused (429…)")]
    if interval:
        handles.append(Patch(color=SLOT_COLOURS[0], label=f"one request slot ({interval:.2g} s)"))
    legend = fig.legend(handles=handles, loc="lower center", ncol=len(handles), fontsize=8, frameon=False,
                        handletextpad=0.3, columnspacing=1.2)
    for text in legend.get_texts():
        text.set_color(fg)
    _style(ax, colours)
    ax.grid(True, axis="x", color=colours["grid"], linewidth=0.6)
    ax.grid(False, axis="y")
    fig.tight_layout(rect=(0, 0.35 / height, 1, 1))  # room for the legend below
    return fig


#: How far the takes of one x value spread sideways, as a share of the gap between neighbouring x values.
JITTER = 0.36


def measure_points(df: Any, x: str, y: str) -> tuple[Any, Any]:
    """What ``measures_by`` draws: every row with a value of ``y`` as a point ``(x, y, at)`` (``at``: where it is
    drawn, spread sideways within its x value) and per x value ``n``, ``mean`` and ``sd`` (the sample standard
    deviation, n − 1; NaN for a single take), x values in their order (numbers ascending, else as first made)."""
    missing = [c for c in (x, y) if c not in df.columns]
    if missing:
        raise ValidationError("x" if x in missing else "y", missing[0],
                              f"a column of the history: {', '.join(map(str, df.columns))}")
    data = df
    if "created_at" in df.columns:  # as the runs were made (a history comes newest first)
        data = df.sort_values("created_at", kind="stable")
    data = data[[x, y]].copy()
    data[y] = pd.to_numeric(data[y], errors="coerce")
    data = data[data[y].notna() & data[x].notna()].reset_index(drop=True)
    numeric = pd.api.types.is_numeric_dtype(data[x]) and not pd.api.types.is_bool_dtype(data[x])
    keys = sorted(data[x].unique()) if numeric else list(dict.fromkeys(data[x].map(_key)))
    data["_key"] = data[x] if numeric else data[x].map(_key)
    base = {k: (float(k) if numeric else float(i)) for i, k in enumerate(keys)}
    gaps = np.diff(sorted(base.values())) if len(base) > 1 else np.array([1.0])
    width = JITTER * float(gaps.min()) if len(gaps) else JITTER
    at = np.zeros(len(data))
    for k in keys:
        rows = np.flatnonzero((data["_key"] == k).to_numpy())
        offsets = np.linspace(-width / 2, width / 2, len(rows)) if len(rows) > 1 else np.zeros(1)
        at[rows] = base[k] + offsets
    data["at"] = at
    stats = data.groupby("_key", sort=False)[y].agg(n="count", mean="mean", sd="std")
    means = stats.reindex(keys).reset_index(names=x)
    means["at"] = [base[k] for k in keys]
    points = data.drop(columns="_key")
    return points, means


def _key(value: Any) -> Any:
    """A value as a group key (lists and other unhashable values by their text)."""
    try:
        hash(value)
        return value
    except TypeError:
        return str(value)


def measures_by(df: Any, x: str, y: str, *, label: str | None = None, whole: bool = False,
                theme: str = "auto") -> Any:
    """Every take as a point (spread sideways within its x value) and, per x value, the mean with a bar of ± 1
    sample standard deviation; ``label`` names ``y`` on the axis, ``whole``: y is a whole number."""
    fig, ax, colours = _figure((6.5, 3.6), theme)
    points, means = measure_points(df, x, y)
    shown = label or y
    ax.scatter(points["at"], points[y], s=22, alpha=0.75, color=TONE_HEX["busy"], linewidths=0, label="a take",
               zorder=2)
    spread = means["sd"].fillna(0.0)
    ax.errorbar(means["at"], means["mean"], yerr=spread, fmt="_", markersize=22, markeredgewidth=2.2,
                elinewidth=1.4, capsize=5, color=colours["fg"], label="mean ± 1 sd (sample)", zorder=3)
    ax.set_xticks(list(means["at"]), labels=[_tick(v) for v in means[x]])
    if len(means) > 4:  # many long labels: slanted, so that neighbours do not overlap
        for tick in ax.get_xticklabels():
            tick.set_rotation(20)
            tick.set_horizontalalignment("right")
    ax.margins(x=0.15, y=0.15)  # room around the outermost takes (and for the legend)
    if whole:
        ax.yaxis.set_major_locator(MaxNLocator(integer=True))  # no tick at 1.5 cuts
    ax.set_xlabel(x)
    ax.set_ylabel(shown)
    takes = len(points)
    ax.set_title(f"{shown} by {x}: {takes} take{'s' if takes != 1 else ''}")
    if len(points):
        ax.legend(fontsize=8, loc="best")
    _style(ax, colours)
    fig.tight_layout()
    fig.points, fig.means = points, means  # the numbers behind the picture
    return fig


def _tick(value: Any) -> str:
    """An x value as a tick label: whole numbers whole (2, not 2.0), texts on at most two short lines."""
    if isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool):
        return f"{float(value):g}"
    lines = textwrap.wrap(" ".join(str(value).split()), 22) or [""]
    return "\n".join(lines[:2]) + ("…" if len(lines) > 2 else "")


#: Colours of voters on a ranking plot: people first, then judges (mid-saturation, legible on both themes).
VOTER_COLOURS = (TONE_HEX["busy"], "#a855f7", TONE_HEX["warn"], TONE_HEX["ok"], TONE_HEX["bad"], "#14b8a6")


def _label(option: Any, width: int = 40) -> str:
    text = " ".join(str(option).split())
    return text if len(text) <= width else text[: width - 1] + "…"


def plot_ranking(frame: Any, theme: str = "auto", title: str | None = None) -> Any:
    """A forest plot of a ranking: each option's strength (a dot) and its interval (a line), strongest on top; an
    end no vote bounds (``lo = -inf`` or ``hi = inf``) is drawn as an arrow to the plot's edge. With a ``voter``
    column, each voter's ranking is drawn side by side on each option's row (one colour per voter)."""
    colours = _theme(theme)
    fg = colours["fg"]
    for column in ("option", "strength", "lo", "hi"):
        if column not in frame.columns:
            raise ValidationError("frame", list(frame.columns), "a ranking: option, strength, lo, hi (and voter)")
    voters = list(dict.fromkeys(frame["voter"])) if "voter" in frame.columns else [None]
    # Options ordered by their mean strength over the voters: the strongest on top.
    means = frame.groupby("option", sort=False)["strength"].mean().sort_values(ascending=False, kind="stable")
    options = list(means.index)
    n = max(len(options), 1)
    extra = 0.5 if len(voters) > 1 else 0.0  # room for the legend under the axis
    fig, ax, _ = _figure((7.0, 1.6 + extra + 0.42 * n * (1 + 0.35 * (len(voters) - 1))), theme)
    finite = [float(v) for c in ("strength", "lo", "hi") for v in frame[c] if np.isfinite(v)]
    low, high = (min(finite), max(finite)) if finite else (-1.0, 1.0)
    pad = max(0.25, 0.12 * (high - low))
    left, right = low - pad, high + pad
    spread = 0.6 if len(voters) > 1 else 0.0
    for k, voter in enumerate(voters):
        colour = VOTER_COLOURS[k % len(VOTER_COLOURS)]
        rows = frame if voter is None else frame[frame["voter"] == voter]
        offset = (k / max(len(voters) - 1, 1) - 0.5) * spread if len(voters) > 1 else 0.0
        for option, s, lo, hi in zip(rows["option"], rows["strength"], rows["lo"], rows["hi"], strict=True):
            y = options.index(option) + offset
            if not (np.isnan(lo) and np.isnan(hi)):
                a = left if np.isinf(lo) else float(lo)
                b = right if np.isinf(hi) else float(hi)
                ax.plot([a, b], [y, y], color=colour, linewidth=2, solid_capstyle="butt", alpha=0.85)
                for end, is_open, towards in ((a, np.isinf(lo), -1), (b, np.isinf(hi), 1)):
                    if is_open:  # unbounded: an arrow to the edge says "and beyond"
                        ax.annotate("", xy=(end, y), xytext=(end - towards * 0.06 * (right - left), y),
                                    arrowprops={"arrowstyle": "-|>", "color": colour, "linewidth": 2,
                                                "shrinkA": 0, "shrinkB": 0})
                    else:
                        ax.plot([end, end], [y - 0.12, y + 0.12], color=colour, linewidth=1.5)
            ax.plot([s], [y], "o", color=colour, markersize=7, zorder=3)
    ax.axvline(0.0, color=fg, linewidth=0.8, linestyle="--", alpha=0.6)
    ax.set_yticks(range(len(options)), labels=[_label(o) for o in options])
    ax.set_ylim(n - 0.5, -0.5)  # the strongest on top
    ax.set_xlim(left, right)
    ax.set_xlabel("strength (log-odds; 0 = the average option)")
    level = frame.attrs.get("level", 0.95)
    by = frame.attrs.get("by")
    ax.set_title(title or f"Ranking{' by ' + str(by) if by else ''}: strength, {level:.0%} interval\n"
                          "(an arrow: no vote bounds that end)", fontsize=10)
    if frame.empty:
        ax.text(0.5, 0.5, "no votes yet", transform=ax.transAxes, ha="center", va="center", color=fg)
    if len(voters) > 1:
        ax.legend(handles=[Line2D([], [], marker="o", color=VOTER_COLOURS[k % len(VOTER_COLOURS)], label=str(v))
                           for k, v in enumerate(voters)], title="voter", fontsize=8, title_fontsize=8,
                  loc="upper center", bbox_to_anchor=(0.5, -0.22), ncol=min(len(voters), 3))
    _style(ax, colours)
    ax.grid(False, axis="y")
    fig.tight_layout()
    return fig
