"""Comparison grids: the product of parameter lists, priced before sending, run together, tabulated.

No widgets here: a Grid runs the same from a script (the demo); the notebook layer draws it.
"""

from __future__ import annotations

import itertools
import math
import threading
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import IPython.display as ipd
import numpy as np
import pandas as pd

from ..api import validation
from ..api.pricing import CostEstimate, usd_text
from ..errors import BudgetExceeded, ConfirmationRequired, ValidationError
from ..jobs.results import JobHandle, Run
from . import metrics
from .gridstate import short, spent_of
from .plots import plot_timeline
from .report import grid_report
from .tables import GridTable
from .timeline import build_timeline

__all__ = ["AXES", "Cell", "Grid", "combined_status", "plan", "short", "spread"]

#: Arguments of generate() that may be lists, so become axes of a grid.
AXES = ("prompt", "resolution", "duration", "aspect_ratio", "image", "model", "generate_audio")
#: Per-cell columns averaged over the takes (with their ``_sd``), besides every metric (``m_motion``...).
SPREAD_COLUMNS = ("cost_usd", "latency_s", "duration_s")


@dataclass
class Cell:
    """One combination of the axes: its full arguments, the values that vary, the price of one take, and the jobs
    of its takes (one handle per take once started)."""

    args: dict[str, Any]
    label: dict[str, Any]
    estimate: CostEstimate
    handles: list[JobHandle] = field(default_factory=list)

    @property
    def handle(self) -> JobHandle | None:
        """The first take's job, once started."""
        return self.handles[0] if self.handles else None

    @property
    def run(self) -> Run | None:
        """The first take's live run, once started."""
        return self.handles[0].run if self.handles else None

    @property
    def runs(self) -> list[Run]:
        """Every take's live run, in take order (none before the grid starts)."""
        return [h.run for h in self.handles]


def plan(axes: dict[str, Any]) -> tuple[list[dict[str, Any]], list[str]]:
    """Every combination of the list-valued arguments (scalars stay fixed); returns (args per cell, varying names)."""
    lists = {k: list(v) for k, v in axes.items() if k in AXES and isinstance(v, (list, tuple))}
    for name, values in lists.items():
        if not values:
            raise ValidationError(name, values, "a non-empty list (or a single value)")
    fixed = {k: v for k, v in axes.items() if k not in lists and v is not None}
    varying = [k for k, v in lists.items() if len(v) > 1]
    names = list(lists)
    combos = itertools.product(*(lists[n] for n in names))
    cells = [{**fixed, **dict(zip(names, combo, strict=True))} for combo in combos]
    return cells, varying


def spread(values: Sequence[float | None]) -> tuple[float, float]:
    """The mean and the sample standard deviation (n − 1) of the known values: NaN for the mean when there are
    none, NaN for the spread when there are fewer than two."""
    known = np.array([float(v) for v in values if v is not None and v == v], dtype=float)
    mean = float(known.mean()) if known.size else math.nan
    if known.size < 2:
        return mean, math.nan
    if np.ptp(known) <= 1e-12 * max(float(np.abs(known).max()), 1e-300):
        return mean, 0.0  # the same value each time (a price): no rounding noise passed off as a spread
    return mean, float(known.std(ddof=1))


def combined_status(statuses: Sequence[str]) -> str:
    """A cell's status over its takes: theirs when they agree, else how many of each ("2 done · 1 failed")."""
    if len(set(statuses)) == 1:
        return statuses[0]
    return " · ".join(f"{n} {status}" for status, n in Counter(statuses).items())


class Grid:
    """A priced, runnable grid of generate() jobs, each cell made ``takes`` times; ``table()`` summarises it per
    cell, ``takes_table()`` per take, ``to_html()`` reports it."""

    def __init__(self, client: Any, axes: dict[str, Any], takes: int = 1, tags: Sequence[str] = (),
                 batch: bool = False):
        self.client = client
        #: Sent as one batch (outside the key's rate limit, best effort) rather than as single jobs.
        self.batch = bool(batch)
        #: How many times each cell is made (the service has no seed: takes show how much a cell varies).
        self.takes = validation.check_takes(takes)
        arg_sets, self.varying = plan(axes)
        self.tags = validation.check_tags(tags)
        self.cells: list[Cell] = []
        for args in arg_sets:
            label = {k: args[k] for k in self.varying}
            # Validation happens here, for every cell, before anything is sent.
            self.cells.append(Cell(args, label, client.estimate_cost(**args)))
        self.started_at: float | None = None
        self.finished_at: float | None = None
        self._done = threading.Event()
        self._listeners: list[Callable[[Grid], Any]] = []
        self._waited: list[Callable[[Grid], Any]] = []

    @property
    def columns(self) -> list[str]:
        """The names of the varying parameters."""
        return list(self.varying)

    @property
    def jobs(self) -> int:
        """How many jobs the grid sends: every take of every cell."""
        return len(self.cells) * self.takes

    @property
    def plan_text(self) -> str:
        """What the grid sends, said plainly: '12 cells × 3 takes = 36 jobs' (or '12 jobs')."""
        if self.takes == 1:
            return f"{self.jobs} job{'s' if self.jobs != 1 else ''}"
        cells = len(self.cells)
        return f"{cells} cell{'s' if cells != 1 else ''} × {self.takes} takes = {self.jobs} jobs"

    @property
    def estimate_usd(self) -> float:
        """The sum of every take's estimate, before anything is sent."""
        return round(sum(c.estimate.usd for c in self.cells) * self.takes, 6)

    def __repr__(self) -> str:
        return f"<grok_nb Grid: {self.plan_text}, estimated {usd_text(self.estimate_usd)}>"

    def check_budget(self, budget_usd: float | None, confirm_above_usd: float | None, confirm: bool | None) -> None:
        """Raise BudgetExceeded or ConfirmationRequired when the grid may not start (nothing is sent).

        ``budget_usd`` caps this grid alone; the client's own budget (what is left of it) is checked
        too, and held atomically when the grid starts. Every take counts.
        """
        total = self.estimate_usd
        if budget_usd is not None and total > budget_usd + 1e-9:
            raise BudgetExceeded(total, budget_usd, self.jobs)
        limit, remaining = getattr(self.client, "budget_usd", None), getattr(self.client, "remaining_usd", None)
        if limit is not None and remaining is not None and total > remaining + 1e-9:
            raise BudgetExceeded(total, limit, self.jobs, committed_usd=limit - remaining)
        if confirm_above_usd is not None and total > confirm_above_usd + 1e-9 and not confirm:
            raise ConfirmationRequired(total, confirm_above_usd, self.jobs)

    def start(self, on_update: Callable[[int, int], Callable[[Run], Any] | None] | None = None) -> Grid:
        """Submit every take of every cell at once, all within the client's budget or none; they share its scheduler.

        ``on_update(cell, take)`` (take counted from 0) gives each job's update callback.
        """
        if self.started_at is not None:
            return self
        remaining = [self.jobs]
        lock = threading.Lock()
        takes = self.takes

        def finished(_handle: JobHandle) -> None:
            with lock:
                remaining[0] -= 1
                last = remaining[0] == 0
            if last:
                self.finished_at = time.monotonic()
                self._done.set()
                for listener in self._listeners:
                    listener(self)

        def per_job(i: int) -> Callable[[Run], Any] | None:  # the client counts jobs cell by cell, take by take
            return on_update(i // takes, i % takes) if on_update is not None else None

        start = self.client.start_batch if self.batch else self.client.start_many
        handles = start([cell.args for cell in self.cells], takes=takes, tags=self.tags,
                        on_update=per_job if on_update is not None else None)
        self.started_at = time.monotonic()
        for i, cell in enumerate(self.cells):
            cell.handles = list(handles[i * takes:(i + 1) * takes])
        for handle in handles:
            handle.add_done_callback(finished)
        return self

    def stop(self) -> None:
        """Stop waiting for every job; they go on at the server and ``client.resume()`` picks them up."""
        for cell in self.cells:
            for handle in cell.handles:
                if not handle.done():
                    handle.stop_waiting()

    def on_result(self, fn: Callable[[Grid], Any]) -> None:
        """Call ``fn(grid)`` in the waiting thread each time ``wait()`` returns (a view draws its final state again
        there, under the cell that waits: see ``JobHandle.on_result``)."""
        self._waited.append(fn)

    def on_finished(self, fn: Callable[[Grid], Any]) -> None:
        """Call ``fn(grid)`` once every job is finished."""
        self._listeners.append(fn)
        if self._done.is_set():
            fn(self)

    @property
    def done(self) -> bool:
        """True once every job has finished."""
        return self._done.is_set()

    def wait(self, timeout: float | None = None) -> Any:
        """Block until every job is finished, or ``timeout`` seconds in all (each job still running then is polled
        once more: one done at the server is returned done); returns ``table()``, which says where each stands."""
        if self.started_at is None:
            raise RuntimeError("the grid has not started: call grid.start() (or confirm it)")
        deadline = None if timeout is None else time.monotonic() + timeout
        handles = [handle for cell in self.cells for handle in cell.handles]
        for handle in handles:
            try:
                handle.result(None if deadline is None else max(0.0, deadline - time.monotonic()))
            except Exception:  # the take's run records the error; the tables show it
                pass
        if all(handle.done() for handle in handles):
            self._done.wait(5)  # the last job's listeners (the view's final draw) run on the loop thread
        for fn in self._waited:
            fn(self)
        return self.table()

    @property
    def runs(self) -> list[Run | None]:
        """Every job's run, cell by cell and take by take (None before the grid starts)."""
        return [cell.runs[k] if cell.handles else None for cell in self.cells for k in range(self.takes)]

    @property
    def total_cost_usd(self) -> float:
        """What the finished jobs cost, as the budget counted each (actual where sane, else estimated)."""
        return spent_of(self.runs)

    @property
    def wall_time_s(self) -> float | None:
        """Seconds from start to the last job finishing (so far, while running)."""
        if self.started_at is None:
            return None
        return round((self.finished_at or time.monotonic()) - self.started_at, 3)

    def _labels(self, cell: Cell) -> dict[str, Any]:
        # Numbers stay numbers (a duration reads "4 s"); anything else as its label.
        return {k: v if isinstance(v, (int, float)) and not isinstance(v, bool) else short(v)
                for k, v in cell.label.items()}

    def _take_rows(self) -> list[dict[str, Any]]:
        rows = []
        for i, cell in enumerate(self.cells):
            for k in range(self.takes):
                run = cell.runs[k] if cell.handles else None
                row: dict[str, Any] = {"cell": i, **self._labels(cell), "take": k + 1}
                row.update(
                    status=str(getattr(run.status, "value", run.status)) if run else "not started",
                    estimate_usd=cell.estimate.usd,
                    cost_usd=run.cost_usd if run else None,
                    cost_basis=run.cost_basis if run else None,
                    latency_s=run.latency_s if run else None,
                    duration_s=run.duration if run else None,
                    **{name: metrics.value(run, name) for name in metrics.METRICS},
                    error=str(run.error) if run and run.error else None,
                    request_id=run.request_id if run else None,
                    path=str(run.path) if run and run.path else None,
                )
                rows.append(row)
        return rows

    def takes_table(self) -> Any:
        """One row per take: the varying parameters, the take (1, 2, ...), status, cost, latency, every measure
        (``m_motion``...), request id and file."""
        df = pd.DataFrame(self._take_rows()).drop(columns="cell")
        for col in ("estimate_usd", "cost_usd", "latency_s", "duration_s", *metrics.METRICS):
            df[col] = pd.to_numeric(df[col], errors="coerce").astype("float64")
        return GridTable(df)

    def table(self) -> Any:
        """One row per cell: the varying parameters, ``takes`` and how many are ``done``, the status, then for the
        cost, the latency, the video's length and every measure the mean over the cell's takes and its spread
        (``cost_usd`` and ``cost_usd_sd``, ``m_motion`` and ``m_motion_sd``: the sample standard deviation, NaN
        with fewer than two takes measured). ``estimate_usd`` and ``cost_usd`` are per take. With one take a cell,
        its request id and file are columns too (with more, ``takes_table()`` has them)."""
        takes = self._take_rows()
        rows = []
        for i, cell in enumerate(self.cells):
            mine = [t for t in takes if t["cell"] == i]
            row: dict[str, Any] = {**self._labels(cell), "takes": self.takes,
                                   "done": sum(t["status"] == "done" for t in mine),
                                   "status": combined_status([t["status"] for t in mine]),
                                   "estimate_usd": cell.estimate.usd}
            for col in SPREAD_COLUMNS:
                row[col], row[f"{col}_sd"] = spread([t[col] for t in mine])
                if col == "cost_usd":
                    bases = {t["cost_basis"] for t in mine if t["cost_basis"]}
                    row["cost_basis"] = "estimate" if "estimate" in bases else (bases.pop() if bases else None)
            errors = [f"take {t['take']}: {t['error']}" if self.takes > 1 else t["error"] for t in mine if t["error"]]
            row["error"] = "; ".join(errors) or None
            if self.takes == 1:
                row.update(request_id=mine[0]["request_id"], path=mine[0]["path"])
            for name in metrics.METRICS:
                row[name], row[f"{name}_sd"] = spread([t[name] for t in mine])
            rows.append(row)
        df = pd.DataFrame(rows)
        for col in df.columns:
            if col in ("estimate_usd", *SPREAD_COLUMNS) or col.endswith("_sd") or col in metrics.METRICS:
                df[col] = pd.to_numeric(df[col], errors="coerce").astype("float64")
        return GridTable(df)  # a DataFrame that shows dollars, seconds and "mean ± sd" in a notebook

    def timeline(self, **options: Any) -> Any:
        """Every cell's submit, polls, done and download on one time axis, with the shared rate limit (a Figure)."""
        limiter = getattr(self.client, "limiter", None)
        interval = getattr(limiter, "interval", None)
        jobs = []
        for i, c in enumerate(self.cells):
            name = " · ".join(f"{k}={short(v, 24)}" for k, v in c.label.items()) or f"job {i + 1}"
            for k in range(self.takes):
                run = c.runs[k] if c.handles else None
                jobs.append((f"{name} · take {k + 1}" if self.takes > 1 else name, run.exchanges if run else [],
                             run.status if run else "not started"))
        return plot_timeline(build_timeline(jobs, interval=interval), **options)

    def _ipython_display_(self) -> None:
        # The notebook layer attaches its view as ``grid.view``; this module never imports widgets.
        view = getattr(self, "view", None)
        if view is not None:
            view._ipython_display_()
        else:
            ipd.display(self.table())  # type: ignore[no-untyped-call]

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None) -> Any:
        view = getattr(self, "view", None)
        if view is not None:
            return view._repr_mimebundle_()
        return {"text/plain": repr(self.table()), "text/html": self.table().to_html(index=False)}

    def to_html(self, path: str | Path, *, embed: bool = True, title: str = "grok_nb comparison") -> Path:
        """Write a self-contained report (players, parameters, cost, latency) that opens without Jupyter."""
        return grid_report(self, Path(path), embed=embed, title=title)
