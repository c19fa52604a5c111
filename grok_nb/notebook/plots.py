"""Plots from the history DataFrame (matplotlib, no global pyplot state)."""

from __future__ import annotations

import io
from typing import Any

from matplotlib.figure import Figure


class PlotFigure(Figure):
    """A Figure that shows itself as a PNG in any notebook, without pyplot's inline backend."""

    def _repr_png_(self) -> bytes:
        buf = io.BytesIO()
        self.savefig(buf, format="png", dpi=90)
        return buf.getvalue()


def latency_by_resolution_and_duration(df: Any) -> Any:
    """Latency (s) against video length, one series per resolution, for finished generations."""
    fig = PlotFigure(figsize=(6.5, 3.6))
    ax = fig.add_subplot()
    done = df[(df["status"] == "done") & df["latency_s"].notna()]
    for resolution, group in done.groupby("resolution"):
        ax.scatter(group["video_duration"], group["latency_s"], label=str(resolution), alpha=0.75)
        means = group.groupby("video_duration")["latency_s"].mean()
        ax.plot(means.index, means.values, alpha=0.5)
    ax.set_xlabel("video length (s)")
    ax.set_ylabel("latency (s)")
    ax.set_title("Latency by resolution and duration")
    if not done.empty:
        ax.legend(title="resolution")
    fig.tight_layout()
    return fig


def cost_over_time(df: Any) -> Any:
    """Cumulative cost (actual where reported, else estimated) over submission time."""
    fig = PlotFigure(figsize=(6.5, 3.2))
    ax = fig.add_subplot()
    spent = df[df["status"] == "done"].sort_values("submitted_at")
    cost = spent["cost_actual_usd"].fillna(spent["cost_estimated_usd"]).cumsum()
    ax.step(spent["submitted_at"], cost, where="post")
    ax.set_ylabel("cumulative cost (USD)")
    ax.set_title("Cost over time")
    fig.autofmt_xdate()
    fig.tight_layout()
    return fig
