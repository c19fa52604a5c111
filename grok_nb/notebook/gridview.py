"""The video-first comparison grid: an anywidget view of plain tile dicts, live while the jobs run.

Python owns every value the view shows (gridstate.py computes it); the browser only adds playback and
the choice of a cell's take and of the measures shown, which must not wait for the kernel (and also work in
a report). Clicks come back as messages: take, rate, note, winner, stop; the measures picked come back as
``metrics_shown``. The view does no I/O: the runtime hands it each finished take's media (``set_media``) and
receives its review intents (``on_intent(run_id, **fields)``), which it writes to the history.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

import anywidget
import traitlets as t

from ..api.batch import BEST_EFFORT_NOTE
from ..jobs.results import Run
from . import assets, fallback, gridstate, metrics
from .compare import Grid
from .gridstate import short
from .live import LiveDisplay
from .present import Media
from .redraw import MAX_REFRESH_PER_S, Redraw

log = logging.getLogger(__name__)
#: Receives a view's review intents: ``on_intent(run_id, rating=..., note=..., winner=...)``.
Intent = Callable[..., None]


class GridWidget(anywidget.AnyWidget):
    """The browser side of a VideoGrid: draws the synced state, plays the videos in step."""

    _esm = assets.esm("grid.js")
    _css = assets.css("grid.css")
    tiles = t.List(t.Dict()).tag(sync=True)
    rows = t.List(t.Unicode()).tag(sync=True)
    row_titles = t.List(t.Unicode()).tag(sync=True)
    cols = t.List(t.Unicode()).tag(sync=True)
    col_titles = t.List(t.Unicode()).tag(sync=True)
    axes = t.Unicode("").tag(sync=True)
    summary = t.Dict().tag(sync=True)
    message = t.Unicode("").tag(sync=True)
    interactive = t.Bool(True).tag(sync=True)
    #: The metrics any take has, ``[[name, label], ...]``, and the names the tile footers show (the picker's).
    metric_names = t.List(t.List()).tag(sync=True)
    metrics_shown = t.List(t.Unicode(), default_value=list(metrics.DEFAULT_SHOWN)).tag(sync=True)
    metric_scale = t.List(t.Unicode(), default_value=list(metrics.SCALE)).tag(sync=True)
    hide_css = t.Unicode("").tag(sync=True)  # hides this view's static shadow wherever the view renders


class VideoGrid:
    """A grid of videos with the varying parameters as headers, a progress summary, playback and review."""

    def __init__(self, grid: Grid, *, on_intent: Intent | None = None, budget: Any = None,
                 max_rate: float = MAX_REFRESH_PER_S, clock: Callable[[], float] = time.monotonic):
        self.grid = grid
        self._on_intent = on_intent
        #: The client's ledger (``jobs.budget.Budget``): the summary's budget line reads it, as every card does.
        self.budget: Any = budget if budget is not None else getattr(grid.client, "budget", None)
        self.layout = gridstate.layout([c.label for c in grid.cells], grid.varying, short)
        self.takes = grid.takes
        # Reviews belong to a take's run: keyed (cell, take), takes counted from 0.
        self.ratings: dict[tuple[int, int], int] = {}
        self.notes: dict[tuple[int, int], str] = {}
        self.winners: dict[int, tuple[int, int]] = {}  # row -> (cell, take)
        self.chosen: dict[int, int] = {}  # cell -> the take its tile shows (0 when not chosen)
        self.cancelled = False
        self._media: dict[tuple[int, int], Media] = {}  # (cell, take) -> its video, as the runtime found it
        self.draws = 0  # how many times the state was sent (tests bound it)
        key = fallback.new_key()
        self.widget = GridWidget(rows=self.layout.rows, row_titles=self.layout.row_titles, cols=self.layout.cols,
                                 col_titles=self.layout.col_titles, axes=gridstate.axes_line(grid, self.layout),
                                 hide_css=fallback.hide_css(key))
        self.widget.add_class("grok-vgrid-widget")
        self.widget.on_msg(self._on_msg)
        self.widget.observe(self._on_metrics_shown, names="metrics_shown")
        self._redraw = Redraw(self._draw, max_rate, clock)
        # No text/plain beside the live view: nbconvert would print it above the static copy.
        self._display = LiveDisplay(lambda: fallback.bundle(self.widget, None, ""),
                                             self.static_html, key)
        self._metric_names: list[list[str]] = []
        self._draw()
        grid.on_finished(lambda _g: self._finished())
        grid.on_result(lambda _g: self.settle())
        watch = getattr(self.budget, "watch", None)
        if callable(watch):
            watch(self._on_budget)  # spending elsewhere (another grid, a card) moves this line too

    def _on_budget(self, _snapshot: Any) -> None:
        self.update()

    # -- state ----------------------------------------------------------------------------------
    def _label(self, i: int) -> str:
        return self.layout.cols[self.layout.positions[i][1]]

    def _run(self, index: int, take: int) -> Run | None:
        runs = self.grid.cells[index].runs  # none before the grid starts
        return runs[take] if take < len(runs) else None

    def runs(self) -> list[Run | None]:
        """Every job's run, cell by cell and take by take."""
        return [self._run(i, k) for i in range(len(self.grid.cells)) for k in range(self.takes)]

    def tiles(self) -> list[dict[str, Any]]:
        """The tile dicts the view draws, in cell order: each the chosen take's state, with every take's."""
        tiles, names = gridstate.grid_tiles(
            self.runs(), self.takes, self.layout, [c.args.get("prompt") for c in self.grid.cells],
            media=lambda i, k: self._media.get((i, k)), ratings=self.ratings, notes=self.notes,
            winners=self.winners, chosen=self.chosen, cancelled=self.cancelled)
        self._metric_names = [[n, metrics.label(n)] for n in names]
        return tiles

    def summary(self, tiles: list[dict[str, Any]] | None = None) -> dict[str, Any]:
        """The summary line's values (N of M jobs done, failed, ETA, dollars): every take counts."""
        g = self.grid
        ledger = self.budget.snapshot() if hasattr(self.budget, "snapshot") else None
        jobs = [take for t in (tiles if tiles is not None else self.tiles()) for take in (t["takes"] or [t])]
        return gridstate.summary(jobs, g.runs, estimate_usd=g.estimate_usd,
                                 budget=ledger, started=g.started_at is not None,
                                 wall_s=g.wall_time_s if g.done else None)

    def set_media(self, index: int, media: Media | None, take: int = 0) -> None:
        """Give take ``take`` (from 0) of cell ``index`` its video (found by the runtime); drawn at the next update."""
        if media is not None:
            self._media[(index, take)] = media

    def _draw(self) -> None:
        tiles = self.tiles()
        with self.widget.hold_sync():
            self.widget.tiles = [gridstate.synced(t) for t in tiles]
            self.widget.summary = self.summary(tiles)
            if self.widget.metric_names != self._metric_names:
                self.widget.metric_names = self._metric_names
        self.draws += 1

    def update(self, force: bool = False) -> None:
        """Offer a new state (from any thread); drawn at most ``max_rate`` times a second, the last one always."""
        self._redraw.request(force=force)

    def cell_callback(self, index: int, take: int = 0) -> Callable[[Run], None]:
        """The ``on_update`` for one take's job (Grid.start asks for one per take, after ``set_media``)."""
        def on_update(run: Run) -> None:
            if not (run.finished or run.stopped):
                self.update()
                return
            # A cell's last word: drawn now, shadow included, before its handle resolves, so a cell
            # that ends with grid.wait() (nbclient, nbconvert --execute) saves the final state.
            self.update(force=True)
            self._display.refresh()
        return on_update

    def settle(self) -> None:
        """Send the grid's state and its static shadow again, under the cell running now (one that waits for the
        grid): nbclient saves them even when the jobs ended between two cells."""
        self.widget.send_state()
        self._display.refresh()

    def _finished(self) -> None:
        self.update(force=True)
        self._display.refresh()

    # -- actions ----------------------------------------------------------------------------------
    def cancel(self) -> None:
        """Mark the grid as cancelled before it started (its tiles say so; nothing was sent)."""
        self.cancelled = True
        self.update(force=True)
        self._display.refresh()

    def stop(self) -> None:
        """Stop waiting on every cell; the jobs go on at the server and stay resumable."""
        stop = getattr(self.grid, "stop", None)
        if callable(stop):
            stop()
        else:
            for cell in self.grid.cells:
                for handle in cell.handles:
                    if not handle.done():
                        handle.stop_waiting()
        self.update(force=True)

    def _take(self, index: int, take: int | None) -> int:
        """The take meant: the one given (from 0), else the one the cell's tile shows."""
        chosen = self.chosen.get(index, 0) if take is None else int(take)
        if chosen not in range(self.takes):
            raise ValueError(f"take={chosen + 1} is not allowed: this grid has {self.takes} take(s) a cell")
        return chosen

    def choose_take(self, index: int, take: int) -> None:
        """Show take ``take`` (from 0) of cell ``index``: its player, footer and review (static copies follow)."""
        self.chosen[index] = self._take(index, take)
        self.update(force=True)
        self._display.refresh()

    def rate(self, index: int, rating: int | None = None, note: str | None = None, take: int | None = None) -> None:
        """Give the shown take of cell ``index`` (or ``take``) a rating (1–5, 0 clears) and/or a note; sent on to be
        written to the history."""
        k = self._take(index, take)
        fields: dict[str, Any] = {}
        if rating is not None:
            if int(rating) not in range(6):
                raise ValueError(f"rating={rating!r} is not allowed: a whole number from 0 (none) to 5")
            self.ratings[(index, k)] = int(rating)
            fields["rating"] = int(rating) or None
        if note is not None:
            self.notes[(index, k)] = note.strip()
            fields["note"] = note.strip() or None
        self._write((index, k), **fields)
        self.update(force=True)

    def pick_winner(self, index: int, take: int | None = None) -> None:
        """Make the shown take of cell ``index`` (or ``take``) the winner of its row (again: no winner); sent on to
        be written to the history."""
        chosen = (index, self._take(index, take))
        row = self.layout.positions[index][0]
        previous = self.winners.get(row)
        if previous == chosen:
            del self.winners[row]
            self._write(chosen, winner=None)
        else:
            self.winners[row] = chosen
            if previous is not None:
                self._write(previous, winner=None)
            self._write(chosen, winner=1)
        self.update(force=True)

    def _write(self, at: tuple[int, int], **fields: Any) -> None:
        run = self._run(*at)
        if run is None or self._on_intent is None or not fields:
            return
        self._on_intent(run.run_id, **fields)

    def _on_metrics_shown(self, change: Any) -> None:
        known = set(metrics.METRICS)
        picked = [n for n in change["new"] if n in known]
        if picked != list(change["new"]):
            self.widget.metrics_shown = picked
            return
        self._display.refresh()  # the saved copy shows what was picked

    def _on_msg(self, _widget: Any, content: dict[str, Any], _buffers: Any) -> None:
        # Exceptions in widget callbacks vanish in JupyterLab: say them in the grid instead.
        try:
            kind, at, which = content.get("type"), content.get("index"), content.get("take")
            index = int(at) if at is not None else -1
            take = int(which) if which is not None else None
            if kind == "take":
                self.choose_take(index, int(which or 0))
            elif kind == "rate":
                self.rate(index, rating=int(content.get("value") or 0), take=take)
            elif kind == "note":
                self.rate(index, note=str(content.get("value") or ""), take=take)
            elif kind == "winner":
                self.pick_winner(index, take)
            elif kind == "stop":
                for handle in self.grid.cells[index].handles:
                    if not handle.done():
                        handle.stop_waiting()
                self.update(force=True)
            elif kind == "stop_all":
                self.stop()
            self.widget.message = ""
        except Exception as exc:  # noqa: BLE001
            log.exception("grid action %r failed", content)
            self.widget.message = f"{type(exc).__name__}: {exc}"

    # -- display ----------------------------------------------------------------------------------
    def static_html(self) -> str:
        """The grid as static HTML (posters, state, cost, links): what a saved notebook shows without a kernel."""
        tiles = self.tiles()
        text = self.summary(tiles)["text"]
        if getattr(self.grid, "batch", False):  # a saved batch grid says so too
            text = f"{text} · {BEST_EFFORT_NOTE}"
        present = {name for name, _ in self.widget.metric_names}
        shown = [(n, metrics.label(n)) for n in self.widget.metrics_shown if n in present]
        return fallback.grid_html(self.layout.rows, self.layout.cols, self.widget.axes, tiles, text, metrics=shown)

    def _plain(self) -> str:
        return f"<grok_nb grid of {self.grid.plan_text}>"

    def _repr_mimebundle_(self, **_kwargs: Any) -> tuple[dict[str, Any], dict[str, Any]]:
        return fallback.bundle(self.widget, self.static_html(), self._plain())

    def _ipython_display_(self) -> None:
        self._display.show()

