"""ipywidgets views over plain objects: a view never speaks HTTP, it only draws what a Run says."""

from __future__ import annotations

import asyncio
import contextvars
import html
import threading
import time
from typing import Any, Callable

import ipywidgets as W

from ..compare import Grid, short
from ..results import Run
from ..tables import MUTED_CSS
from . import present
from .throttle import Throttle

#: ipywidgets draws an accordion's title in --jp-ui-font-color2 on --jp-layout-color2 (4.4:1 in the light
#: theme); the card's own title colour keeps it above 4.5:1.
CARD_STYLE = ("<style>.grok-http .jupyter-widget-Collapse-header{color:var(--jp-ui-font-color1)}"
              ".grok-http .jupyter-widget-Collapse-header:hover{color:var(--jp-ui-font-color0)}</style>")
#: A view refreshes at most this often (Jupyter Server drops iopub past ~1000 msgs/s).
MAX_REFRESH_PER_S = 4.0
PlayerSource = Callable[[Run], "tuple[str, int, int, float | None] | None"]


def _in_current_cell(fn: Callable[[], Any]) -> None:
    """Run a view update in an empty context, so ipykernel files its messages under the cell running *now*.

    The job's task inherited the context of the cell that started it; that cell may have returned
    long ago, and front ends such as nbclient drop messages whose parent is not the running cell.
    """
    contextvars.Context().run(fn)


class _View:
    """Shows its ``widget`` when it is the value of a cell."""

    widget: W.Widget

    def _ipython_display_(self) -> None:
        from IPython.display import display

        display(self.widget)


class JobCard(_View):
    """A live card for one job: what was asked, progress, state, times, cost, then a player or the error."""

    def __init__(self, player_source: PlayerSource, *, compact: bool = False, max_rate: float = MAX_REFRESH_PER_S,
                 clock: Callable[[], float] = time.monotonic, budget: Any = None):
        self._player_source = player_source
        self._budget = budget  # the client's ledger: the card says what is left of it
        self._clock = clock
        self._throttle = Throttle(1.0 / max_rate)
        self._lock = threading.Lock()
        self._run: Run | None = None
        self._compact = compact
        self._player_set = False
        self.draws = 0  # how many times the widgets were refreshed (tests bound it)
        self.header = W.HTML()
        self.state = W.HTML(layout=W.Layout(min_width="150px"))
        self.bar = W.FloatProgress(value=0.0, min=0.0, max=100.0, bar_style="info",
                                   layout=W.Layout(flex="1 1 auto", min_width="120px"))
        self.stats = W.HTML()
        self.player = W.HTML()
        self.http = W.HTML()
        row = W.HBox([self.state, self.bar], layout=W.Layout(align_items="center"))
        details = W.Accordion(children=[self.http], titles=("HTTP exchanges",), selected_index=None)
        children = [self.header, row, self.stats, self.player] + ([] if compact else [details])
        self.widget = W.VBox(children, layout=W.Layout(border="1px solid var(--jp-border-color2, #e0e0e0)",
                                                       padding="6px", margin="4px",
                                                       width="100%" if compact else "560px"))
        for w, cls in ((self.widget, "grok-card"), (self.header, "grok-card-header"), (self.state, "grok-state"),
                       (self.bar, "grok-progress"), (self.stats, "grok-stats"), (self.player, "grok-player"),
                       (details, "grok-http")):
            w.add_class(cls)

    def close(self) -> None:
        """Drop the card's widgets (a job that never started leaves no model behind)."""
        for w in (self.header, self.state, self.bar, self.stats, self.player, self.http, self.widget):
            w.close()

    def update(self, run: Run) -> None:
        """Offer a new state; draws now, or later if the last draw was too recent (never loses the last state)."""
        with self._lock:
            self._run = run
            wait = self._throttle.offer(self._clock(), force=run.finished or run.stopped or run.request_id is None)
        if wait is None:
            _in_current_cell(self._draw)
        elif wait != float("inf"):
            self._later(wait)

    def _later(self, delay: float) -> None:
        try:  # on the client's loop thread: a loop timer; anywhere else: a thread timer
            asyncio.get_running_loop().call_later(delay, self._flush)
        except RuntimeError:
            timer = threading.Timer(delay, self._flush)
            timer.daemon = True
            timer.start()

    def _flush(self) -> None:
        with self._lock:
            due = self._throttle.flushed(self._clock())
        if due:
            _in_current_cell(self._draw)

    def _draw(self) -> None:
        run = self._run
        if run is None:
            return
        view = present.card_view(run)
        self.draws += 1
        with self.bar.hold_sync():
            self.bar.value, self.bar.bar_style = view.bar_value, view.bar_style
        if self.header.value == "":
            self.header.value = CARD_STYLE + present.header_html(run)
        self.state.value = present.state_html(view)
        stats = view.stats
        if getattr(run, "waiting_note", None):  # another notebook shares the key's rate limit
            stats += f" · {run.waiting_note}"
        if self._budget is not None and self._budget.limit_usd is not None:
            stats += (f" · budget ${self._budget.spent_usd:.2f} spent, ${self._budget.remaining_usd:.2f} "
                      f"of ${self._budget.limit_usd:.2f} left")
        self.stats.value = f'<span style="font-size:12px;color:{MUTED_CSS}">{html.escape(stats)}</span>'
        if not self._compact:  # grid cells leave it out: twelve logs would bloat a saved notebook
            self.http.value = present.exchanges_html(run.exchanges)
        # The player is set once: setting an HTML widget again rebuilds the <video> and restarts it.
        if not self._player_set and run.status == "done" and run.error is None:
            source = self._player_source(run)
            if source is not None:
                self.player.value = present.player_html(*source, run.request_id)
                self._player_set = True
        elif view.failed and not self._player_set:
            self.player.value = present.error_html(run)


class ConfirmBar:
    """'Spend up to $X on N jobs?' with Run and Cancel buttons; nothing is sent until Run is pressed."""

    def __init__(self, text: str, on_confirm: Callable[[], Any]):
        self.go = W.Button(description="Run", button_style="warning", icon="play")
        self.cancel = W.Button(description="Cancel")
        self.text = W.HTML(text)
        self.widget = W.HBox([self.text, self.go, self.cancel])
        self.widget.add_class("grok-confirm")
        self.out = W.Output()

        def confirm(_button: Any) -> None:
            with self.out:
                self.go.disabled = self.cancel.disabled = True
                self.text.value += " — <b>started</b>"
                on_confirm()

        def cancel(_button: Any) -> None:
            self.go.disabled = self.cancel.disabled = True
            self.text.value += " — <b>cancelled, nothing sent</b>"

        self.go.on_click(confirm)
        self.cancel.on_click(cancel)


class GridView(_View):
    """A grid of job cards, the varying parameters as rows and columns, and a summary when done."""

    def __init__(self, grid: Grid, player_source: PlayerSource):
        self.grid = grid
        self.cards = [JobCard(player_source, compact=True) for _ in grid.cells]
        names = grid.varying
        row_axis = names[0] if len(names) >= 2 else None
        col_axes = names[1:] if row_axis else names
        row_values = _unique([c.label.get(_label(row_axis)) for c in grid.cells]) if row_axis else [None]
        col_keys = _unique([tuple(c.label.get(_label(a)) for a in col_axes) for c in grid.cells])
        per_slot: dict[tuple, list[int]] = {}
        for i, cell in enumerate(grid.cells):
            key = (cell.label.get(_label(row_axis)) if row_axis else None,
                   tuple(cell.label.get(_label(a)) for a in col_axes))
            per_slot.setdefault(key, []).append(i)
        items: list[W.Widget] = [W.HTML("")]
        for key in col_keys:
            text = " · ".join(f"{_label(a)}={short(v)}" for a, v in zip(col_axes, key)) or "job"
            items.append(_label_widget(text, "grok-grid-col"))
        for rv in row_values:
            items.append(_label_widget(f"{_label(row_axis)}={short(rv, 60)}" if row_axis else "", "grok-grid-row"))
            for key in col_keys:
                slot = per_slot.get((rv, key), [])
                items.append(W.VBox([self.cards[i].widget for i in slot]) if slot else W.HTML(""))
        self.grid_box = W.GridBox(items, layout=W.Layout(
            grid_template_columns=f"minmax(90px, 160px) repeat({len(col_keys)}, minmax(240px, 1fr))",
            grid_gap="4px", width="100%"))
        self.grid_box.add_class("grok-grid")
        self.summary = W.HTML(self._summary_text())
        self.summary.add_class("grok-grid-summary")
        self.widget = W.VBox([self.summary, self.grid_box])
        grid.on_finished(lambda _g: _in_current_cell(self.finish))

    def _summary_text(self) -> str:
        g = self.grid
        text = f"<b>{len(g.cells)} jobs</b> · estimated {present.usd(g.estimate_usd)}"
        if g.done:
            ok = sum(1 for r in g.runs if r is not None and r.ok)
            text += (f" · <b>finished</b>: {ok}/{len(g.cells)} done · total cost {present.usd(g.total_cost_usd)}"
                     f" · wall time {present.seconds(g.wall_time_s)}")
        elif g.started_at is not None:
            text += " · running"
        else:
            text += " · not started"
        return text

    def refresh(self) -> None:
        """Redraw the summary line."""
        self.summary.value = self._summary_text()

    def finish(self) -> None:
        """Show the totals once every cell is done (the table is ``grid.wait()``'s: shown once, not twice)."""
        self.refresh()


def _label(axis: str | None) -> str:
    return "repeat" if axis == "_repeat" else (axis or "")


def _label_widget(text: str, cls: str) -> W.HTML:
    w = W.HTML(f"<b>{html.escape(text)}</b>")
    w.add_class(cls)
    return w


def _unique(values: list) -> list:
    seen: list = []
    for v in values:
        if v not in seen:
            seen.append(v)
    return seen
