"""Plots from the history (matplotlib, no global pyplot state) that read in light and dark notebooks.

A kernel cannot see the front end's theme, so ``theme="auto"`` draws on a transparent background with
mid-grey text that reads on white and on near-black; ``"light"`` and ``"dark"`` pick text for one of them.
"""

from __future__ import annotations

import io
from typing import Any

import matplotlib.dates as mdates
import numpy as np
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch

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
    ax.set_ylabel("latency (s)")
    ax.set_title("Latency by resolution and duration")
    if not done.empty:
        ax.legend(title="resolution")
    _style(ax, colours)
    fig.tight_layout()
    return fig


def cost_over_time(df: Any, theme: str = "auto") -> Any:
    """Cumulative cost (actual where reported, else estimated) over submission time, on a readable time axis."""
    fig, ax, colours = _figure((6.5, 3.2), theme)
    spent = df[(df["status"] == "done") & df["submitted_at"].notna()].sort_values("submitted_at")
    cost = spent["cost_actual_usd"].fillna(spent["cost_estimated_usd"]).cumsum()
    when = spent["submitted_at"].dt.tz_convert("UTC").dt.tz_localize(None).to_numpy()
    ax.step(when, cost.to_numpy(), where="post", color=KIND_COLOURS["submit"], marker="o", markersize=4)
    if len(when) and (when[-1] - when[0]) < np.timedelta64(60, "s"):  # a few runs: a readable minute around them
        middle = when[0] + (when[-1] - when[0]) / 2
        ax.set_xlim(middle - np.timedelta64(30, "s"), middle + np.timedelta64(30, "s"))
    ax.set_ylim(bottom=0, top=max(float(cost.max()) * 1.15, 0.01) if len(cost) else 1.0)
    locator = mdates.AutoDateLocator(minticks=3, maxticks=7)  # type: ignore[no-untyped-call]
    ax.xaxis.set_major_locator(locator)
    ax.xaxis.set_major_formatter(mdates.ConciseDateFormatter(locator, show_offset=True))  # type: ignore[no-untyped-call]
    ax.yaxis.set_major_formatter("${x:,.3f}" if len(cost) and float(cost.max()) < 1 else "${x:,.2f}")
    ax.set_xlabel("submitted (UTC)")
    ax.set_ylabel("cumulative cost")
    ax.set_title("Cost over time")
    _style(ax, colours)
    ax.xaxis.get_offset_text().set_color(colours["fg"])
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
