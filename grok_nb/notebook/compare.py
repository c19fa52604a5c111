"""Comparison grids: the product of parameter lists, priced before sending, run together, tabulated.

No widgets here: a Grid runs the same from a script; the notebook layer draws it.
"""

from __future__ import annotations

import itertools
import os
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..api import validation
from ..api.pricing import CostEstimate
from ..errors import BudgetExceeded, ConfirmationRequired, ValidationError
from ..jobs.results import JobHandle, Run

#: Arguments of generate() that may be lists, so become axes of a grid.
AXES = ("prompt", "resolution", "duration", "aspect_ratio", "image", "model", "generate_audio")


@dataclass
class Cell:
    """One job of a grid: its full arguments, the values that vary, its price, its job."""

    args: dict[str, Any]
    label: dict[str, Any]
    estimate: CostEstimate
    handle: JobHandle | None = None

    @property
    def run(self) -> Run | None:
        """The live run, once started."""
        return self.handle.run if self.handle is not None else None


def plan(axes: dict[str, Any], repeats: int = 1) -> tuple[list[dict[str, Any]], list[str]]:
    """Every combination of the list-valued arguments (scalars stay fixed); returns (args per cell, varying names)."""
    if not isinstance(repeats, int) or isinstance(repeats, bool) or repeats < 1:
        raise ValidationError("repeats", repeats, "a whole number of at least 1")
    lists = {k: list(v) for k, v in axes.items() if k in AXES and isinstance(v, (list, tuple))}
    for name, values in lists.items():
        if not values:
            raise ValidationError(name, values, "a non-empty list (or a single value)")
    fixed = {k: v for k, v in axes.items() if k not in lists and v is not None}
    varying = [k for k, v in lists.items() if len(v) > 1]
    names = list(lists)
    cells = []
    for combo in itertools.product(*(lists[n] for n in names)):
        for rep in range(repeats):
            args = {**fixed, **dict(zip(names, combo))}
            if repeats > 1:
                args["_repeat"] = rep + 1
            cells.append(args)
    if repeats > 1:
        varying.append("_repeat")
    return cells, varying


def short(value: Any, width: int = 40) -> str:
    """A value as a label: images as their name, long prompts cut."""
    if isinstance(value, (bytes, bytearray)):
        return f"<{len(value)} bytes>"
    if isinstance(value, Path) or (isinstance(value, str) and "\n" not in value and os.path.isfile(value)):
        return Path(str(value)).name
    if isinstance(value, str) and value.startswith("data:"):
        return "data URI"
    text = str(value)
    return text if len(text) <= width else text[: width - 1] + "…"


class Grid:
    """A priced, runnable grid of generate() jobs; ``table()`` summarises it, ``to_html()`` reports it."""

    def __init__(self, client: Any, axes: dict[str, Any], repeats: int = 1, tags: Sequence[str] = (),
                 batch: bool = False):
        self.client = client
        #: Sent as one batch (outside the key's rate limit, best effort) rather than as single jobs.
        self.batch = bool(batch)
        arg_sets, self.varying = plan(axes, repeats)
        self.tags = validation.check_tags(tags)
        self.cells: list[Cell] = []
        for args in arg_sets:
            call = {k: v for k, v in args.items() if k != "_repeat"}
            label = {("repeat" if k == "_repeat" else k): args[k] for k in self.varying}
            # Validation happens here, for every cell, before anything is sent.
            self.cells.append(Cell(call, label, client.estimate_cost(**call)))
        self.started_at: float | None = None
        self.finished_at: float | None = None
        self._done = threading.Event()
        self._listeners: list[Callable[[Grid], Any]] = []

    @property
    def columns(self) -> list[str]:
        """The names of the varying parameters ("repeat" for repeats)."""
        return ["repeat" if v == "_repeat" else v for v in self.varying]

    @property
    def estimate_usd(self) -> float:
        """The sum of the cells' estimates, before anything is sent."""
        return round(sum(c.estimate.usd for c in self.cells), 6)

    def check_budget(self, budget_usd: float | None, confirm_above_usd: float | None, confirm: bool | None) -> None:
        """Raise BudgetExceeded or ConfirmationRequired when the grid may not start (nothing is sent).

        ``budget_usd`` caps this grid alone; the client's own budget (what is left of it) is checked
        too, and held atomically when the grid starts.
        """
        total = self.estimate_usd
        if budget_usd is not None and total > budget_usd + 1e-9:
            raise BudgetExceeded(total, budget_usd, len(self.cells))
        limit, remaining = getattr(self.client, "budget_usd", None), getattr(self.client, "remaining_usd", None)
        if limit is not None and remaining is not None and total > remaining + 1e-9:
            raise BudgetExceeded(total, limit, len(self.cells), committed_usd=limit - remaining)
        if confirm_above_usd is not None and total > confirm_above_usd + 1e-9 and not confirm:
            raise ConfirmationRequired(total, confirm_above_usd, len(self.cells))

    def start(self, on_update: Callable[[int], Callable[[Run], Any] | None] | None = None) -> Grid:
        """Submit every cell at once, all within the client's budget or none; they share its scheduler."""
        if self.started_at is not None:
            return self
        remaining = [len(self.cells)]
        lock = threading.Lock()

        def finished(_handle: JobHandle) -> None:
            with lock:
                remaining[0] -= 1
                last = remaining[0] == 0
            if last:
                self.finished_at = time.monotonic()
                self._done.set()
                for listener in self._listeners:
                    listener(self)

        start = self.client.start_batch if self.batch else self.client.start_many
        handles = start([cell.args for cell in self.cells], tags=self.tags, on_update=on_update)
        self.started_at = time.monotonic()
        for cell, handle in zip(self.cells, handles):
            cell.handle = handle
            handle.add_done_callback(finished)
        return self

    def stop(self) -> None:
        """Stop waiting for every cell; the jobs go on at the server and ``client.resume()`` picks them up."""
        for cell in self.cells:
            if cell.handle is not None and not cell.handle.done():
                cell.handle.stop_waiting()

    def on_finished(self, fn: Callable[[Grid], Any]) -> None:
        """Call ``fn(grid)`` once every cell is finished."""
        self._listeners.append(fn)
        if self._done.is_set():
            fn(self)

    @property
    def done(self) -> bool:
        """True once every cell has finished."""
        return self._done.is_set()

    def wait(self, timeout: float | None = None) -> Any:
        """Block until every cell is finished; returns ``table()``."""
        if self.started_at is None:
            raise RuntimeError("the grid has not started: call grid.start() (or confirm it)")
        for cell in self.cells:
            assert cell.handle is not None
            try:
                cell.handle.result(timeout)
            except Exception:  # the cell's run records the error; the table shows it
                pass
        self._done.wait(5)
        return self.table()

    @property
    def runs(self) -> list[Run | None]:
        """The cells' runs, in grid order."""
        return [c.run for c in self.cells]

    @property
    def total_cost_usd(self) -> float:
        """What the finished cells cost (actual where reported, else estimated)."""
        return round(sum(r.cost_usd or 0.0 for r in self.runs if r is not None and r.status == "done"), 6)

    @property
    def wall_time_s(self) -> float | None:
        """Seconds from start to the last cell finishing (so far, while running)."""
        if self.started_at is None:
            return None
        return round((self.finished_at or time.monotonic()) - self.started_at, 3)

    def table(self) -> Any:
        """One row per cell: the varying parameters, status, cost, latency, request id, file."""
        import pandas as pd

        rows = []
        for cell in self.cells:
            run = cell.run
            row = {k: short(v) for k, v in cell.label.items()}
            row.update(
                status=run.status if run else "not started",
                estimate_usd=cell.estimate.usd,
                cost_usd=run.cost_usd if run else None,
                cost_basis=run.cost_basis if run else None,
                latency_s=run.latency_s if run else None,
                duration_s=run.duration if run else None,
                error=str(run.error) if run and run.error else None,
                request_id=run.request_id if run else None,
                path=str(run.path) if run and run.path else None,
            )
            rows.append(row)
        df = pd.DataFrame(rows)
        for col in ("estimate_usd", "cost_usd", "latency_s", "duration_s"):
            df[col] = pd.to_numeric(df[col], errors="coerce").astype("float64")
        from .tables import GridTable  # a DataFrame that shows dollars and seconds in a notebook

        return GridTable(df)

    def timeline(self, **options: Any) -> Any:
        """Every cell's submit, polls, done and download on one time axis, with the shared rate limit (a Figure)."""
        from .plots import plot_timeline
        from .timeline import build_timeline

        limiter = getattr(self.client, "limiter", None)
        interval = getattr(limiter, "interval", None)
        jobs = [(" · ".join(f"{k}={short(v, 24)}" for k, v in c.label.items()) or f"job {i + 1}",
                 c.run.exchanges if c.run is not None else [], c.run.status if c.run is not None else "not started")
                for i, c in enumerate(self.cells)]
        return plot_timeline(build_timeline(jobs, interval=interval), **options)

    def _ipython_display_(self) -> None:
        # The notebook layer attaches its view as ``grid.view``; this module never imports widgets.
        view = getattr(self, "view", None)
        if view is not None:
            view._ipython_display_()
        else:
            from IPython.display import display

            display(self.table())

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None) -> Any:
        view = getattr(self, "view", None)
        if view is not None:
            return view._repr_mimebundle_()
        return {"text/plain": repr(self.table()), "text/html": self.table().to_html(index=False)}

    def to_html(self, path: str | Path, *, embed: bool = True, title: str = "grok_nb comparison") -> Path:
        """Write a self-contained report (players, parameters, cost, latency) that opens without Jupyter."""
        from .report import grid_report

        return grid_report(self, Path(path), embed=embed, title=title)
