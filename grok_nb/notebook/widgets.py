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
from ..store import filter_runs
from . import present
from .throttle import Throttle

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
                 clock: Callable[[], float] = time.monotonic):
        self._player_source = player_source
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
        self.widget = W.VBox(children, layout=W.Layout(border="1px solid #ddd", padding="6px", margin="4px",
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
            self.header.value = present.header_html(run)
        self.state.value = f"<b>{html.escape(view.state)}</b>"
        self.stats.value = f'<span style="font-size:12px">{html.escape(view.stats)}</span>'
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
        self.table = W.HTML()
        self.table.add_class("grok-grid-table")
        self.widget = W.VBox([self.summary, self.grid_box, self.table])
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
        """Show the totals and the summary table once every cell is done."""
        self.refresh()
        table = self.grid.table()
        shown = table.drop(columns=["path", "error"]).copy()
        self.table.value = shown.to_html(index=False, float_format=lambda v: f"{v:.3f}", na_rep="—",
                                         classes="grok-summary-table")


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


class HistoryBrowser(_View):
    """Filter and sort the history, play runs side by side, rate them and keep a note."""

    STARS = ("–", "★", "★★", "★★★", "★★★★", "★★★★★")

    def __init__(self, store: Any, player_source: PlayerSource):
        self.store = store
        self._player_source = player_source
        self.search = W.Text(placeholder="text in the prompt", description="search")
        self.status = W.Dropdown(description="status")
        self.kind = W.Dropdown(description="kind")
        self.tag = W.Dropdown(description="tag")
        self.sort = W.Dropdown(options=["newest", "oldest", "cost", "latency", "rating"], description="sort")
        self.runs = W.SelectMultiple(rows=10, layout=W.Layout(width="100%"), description="runs")
        self.players = W.HBox(layout=W.Layout(flex_flow="row wrap"))
        self.rating = W.ToggleButtons(options=[(s, i) for i, s in enumerate(self.STARS)],
                                      style={"button_width": "56px"})
        self.note = W.Textarea(placeholder="a note about the selected run(s)", layout=W.Layout(width="100%"))
        self.save = W.Button(description="Save rating & note", button_style="primary")
        self.message = W.HTML()
        self.log = W.Output()
        for w, cls in ((self.search, "grok-search"), (self.runs, "grok-runs"), (self.players, "grok-compare-players"),
                       (self.rating, "grok-rating"), (self.note, "grok-note"), (self.save, "grok-save")):
            w.add_class(cls)
        filters = W.HBox([self.search, self.status, self.kind, self.tag, self.sort], layout=W.Layout(flex_flow="row wrap"))
        self.widget = W.VBox([filters, self.runs, self.players, self.rating, self.note, self.save, self.message, self.log])
        self.widget.add_class("grok-browser")
        self.refresh()
        for w in (self.search, self.status, self.kind, self.tag, self.sort):
            w.observe(self._on_filter, names="value")
        self.runs.observe(self._on_select, names="value")
        self.save.on_click(self._on_save)

    def frame(self) -> Any:
        """The history rows that pass the filters, sorted."""
        def chosen(dropdown: W.Dropdown) -> str | None:
            return None if dropdown.value in (None, "all") else dropdown.value

        df = filter_runs(self.store.dataframe(), status=chosen(self.status), kind=chosen(self.kind),
                         text=self.search.value, tags=chosen(self.tag))
        key, ascending = {"newest": ("created_at", False), "oldest": ("created_at", True),
                          "cost": ("cost_actual_usd", False), "latency": ("latency_s", False),
                          "rating": ("rating", False)}[self.sort.value or "newest"]
        return df.sort_values(key, ascending=ascending, na_position="last")

    def refresh(self) -> None:
        """Reload the history and the filter choices."""
        df = self.store.dataframe()
        self.status.options = ["all"] + sorted(df["status"].dropna().unique().tolist())
        self.kind.options = ["all"] + sorted(df["kind"].dropna().unique().tolist())
        self.tag.options = ["all"] + sorted({t for tags in df["tags"] for t in tags})
        self._fill()

    def _fill(self) -> None:
        import pandas as pd

        df = self.frame()
        options = []
        for row in df.itertuples():
            when = row.created_at.strftime("%m-%d %H:%M:%S") if row.created_at is not None else ""
            stars = f" {self.STARS[int(row.rating)]}" if pd.notna(row.rating) and int(row.rating) else ""
            prompt = (row.prompt or "")[:60]
            options.append((f"{when} · {row.kind} · {row.status}{stars} · {prompt}", row.run_id))
        self.runs.options = options

    def _on_filter(self, _change: Any) -> None:
        with self.log:
            self._fill()

    def _on_select(self, change: Any) -> None:
        with self.log:
            players = []
            for run_id in change["new"]:
                row = self.store.get(run_id)
                if row is None:
                    continue
                run = Run.from_row(row)
                source = self._player_source(run) if run.ok else None
                body = (present.player_html(*source, run.request_id) if source
                        else present.error_html(run) if run.error else f"<i>{html.escape(run.status)}</i>")
                box = W.HTML(f'<div style="margin:4px;max-width:360px">{present.header_html(run, 50)}{body}</div>')
                box.add_class("grok-browser-player")
                players.append(box)
            self.players.children = players
            if len(change["new"]) == 1:
                row = self.store.get(change["new"][0])
                self.rating.value = int(row.get("rating") or 0)
                self.note.value = row.get("note") or ""

    def _on_save(self, _button: Any) -> None:
        with self.log:
            chosen = list(self.runs.value)
            for run_id in chosen:
                self.store.update(run_id, rating=int(self.rating.value) or None, note=self.note.value or None)
            self.message.value = f"saved for {len(chosen)} run(s)"
            self._fill()
