"""The video-first comparison grid: an anywidget view of plain tile dicts, live while the jobs run.

Python owns every value the view shows (gridstate.py computes it); the browser only adds playback,
which must stay local. Clicks come back as messages: rate, note, winner, stop.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import anywidget
import traitlets as t

from ..api.batch import BEST_EFFORT_NOTE
from ..jobs.results import Run
from . import fallback, gridstate
from .compare import Grid, short
from .posters import poster_data_uri
from .redraw import MAX_REFRESH_PER_S, Redraw

STATIC = Path(__file__).resolve().parent / "static"
log = logging.getLogger(__name__)
PlayerSource = Callable[[Run], "tuple[str, int, int, float | None] | None"]


class GridWidget(anywidget.AnyWidget):
    """The browser side of a VideoGrid: draws the synced state, plays the videos in step."""

    _esm = STATIC / "grid.js"
    _css = STATIC / "grid.css"
    tiles = t.List(t.Dict()).tag(sync=True)
    rows = t.List(t.Unicode()).tag(sync=True)
    row_titles = t.List(t.Unicode()).tag(sync=True)
    cols = t.List(t.Unicode()).tag(sync=True)
    col_titles = t.List(t.Unicode()).tag(sync=True)
    axes = t.Unicode("").tag(sync=True)
    summary = t.Dict().tag(sync=True)
    message = t.Unicode("").tag(sync=True)
    interactive = t.Bool(True).tag(sync=True)
    hide_css = t.Unicode("").tag(sync=True)  # hides this view's static shadow wherever the view renders


class VideoGrid:
    """A grid of videos with the varying parameters as headers, a progress summary, playback and review."""

    def __init__(self, grid: Grid, player_source: PlayerSource, *, store: Any = None,
                 budget_usd: float | None = None, max_rate: float = MAX_REFRESH_PER_S,
                 clock: Callable[[], float] = time.monotonic):
        self.grid = grid
        self._player_source = player_source
        self.store = store if store is not None else getattr(grid.client, "store", None)
        self.budget_usd = budget_usd
        self.layout = gridstate.layout([c.label for c in grid.cells], grid.varying, short)
        self.ratings: dict[int, int] = {}
        self.notes: dict[int, str] = {}
        self.winners: dict[int, int] = {}  # row -> cell index
        self.cancelled = False
        self._media: dict[int, tuple[Any, str | None]] = {}  # cell -> (player source, poster)
        self.draws = 0  # how many times the state was sent (tests bound it)
        lay = self.layout
        axes = (f"rows: {lay.row_axis} · columns: {' · '.join(lay.col_axes)}" if lay.row_axis
                else f"columns: {' · '.join(lay.col_axes)}" if lay.col_axes else "")
        key = fallback.new_key()
        self.widget = GridWidget(rows=lay.rows, row_titles=lay.row_titles, cols=lay.cols, col_titles=lay.col_titles,
                                 axes=axes, hide_css=fallback.hide_css(key))
        self.widget.add_class("grok-vgrid-widget")
        self.widget.on_msg(self._on_msg)
        self._redraw = Redraw(self._draw, max_rate, clock)
        self._display = fallback.LiveDisplay(lambda: fallback.bundle(self.widget, None, self._plain()),
                                             self.static_html, key)
        self._draw()
        grid.on_finished(lambda _g: self._finished())

    # -- state ----------------------------------------------------------------------------------
    def _label(self, i: int) -> str:
        return self.layout.cols[self.layout.positions[i][1]]

    def tiles(self) -> list[dict[str, Any]]:
        """The tile dicts the view draws, in cell order."""
        out = []
        for i, cell in enumerate(self.grid.cells):
            run = cell.run
            if run is not None and run.ok and i not in self._media:
                self._prepare(i, run)
            source, poster = self._media.get(i, (None, None))
            out.append(gridstate.tile(
                i, run, position=self.layout.positions[i], label=self._label(i), source=source, poster=poster,
                rating=self.ratings.get(i), note=self.notes.get(i),
                winner=self.winners.get(self.layout.positions[i][0]) == i, cancelled=self.cancelled,
                prompt=cell.args.get("prompt"), href=run.video_src() if run is not None and run.ok else None))
        return out

    def summary(self, tiles: list[dict[str, Any]] | None = None) -> dict[str, Any]:
        """The summary line's values (N of M done, failed, ETA, dollars)."""
        g = self.grid
        budget = self.budget_usd if self.budget_usd is not None else getattr(g.client, "budget_usd", None)
        return gridstate.summary(tiles if tiles is not None else self.tiles(), g.runs, estimate_usd=g.estimate_usd,
                                 budget_usd=budget, spent_usd=getattr(g.client, "spent_usd", None),
                                 started=g.started_at is not None, wall_s=g.wall_time_s if g.done else None)

    def _prepare(self, i: int, run: Run) -> None:
        # ~0.1 s once per finished cell (a probe and a poster), before the job's handle resolves.
        try:
            self._media[i] = (self._player_source(run), poster_data_uri(run.path))
        except Exception:  # a broken file shows as a tile without a player, not as a dead grid
            log.exception("could not prepare the player of cell %s", i)
            self._media[i] = (None, None)

    def _draw(self) -> None:
        tiles = self.tiles()
        with self.widget.hold_sync():
            self.widget.tiles = tiles
            self.widget.summary = self.summary(tiles)
        self.draws += 1

    def update(self, force: bool = False) -> None:
        """Offer a new state (from any thread); drawn at most ``max_rate`` times a second, the last one always."""
        self._redraw.request(force=force)

    def cell_callback(self, index: int) -> Callable[[Run], None]:
        """The ``on_update`` for one cell's job (Grid.start calls this per cell)."""
        def on_update(run: Run) -> None:
            if not (run.finished or run.stopped):
                self.update()
                return
            # A cell's last word: drawn now, shadow included, before its handle resolves, so a cell
            # that ends with grid.wait() (nbclient, nbconvert --execute) saves the final state.
            if run.ok and index not in self._media:
                self._prepare(index, run)
            self.update(force=True)
            self._display.refresh()
        return on_update

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
                if cell.handle is not None and not cell.handle.done():
                    cell.handle.stop_waiting()
        self.update(force=True)

    def rate(self, index: int, rating: int | None = None, note: str | None = None) -> None:
        """Give cell ``index`` a rating (1–5, 0 clears) and/or a note; written to the history."""
        fields: dict[str, Any] = {}
        if rating is not None:
            if int(rating) not in range(6):
                raise ValueError(f"rating={rating!r} is not allowed: a whole number from 0 (none) to 5")
            self.ratings[index] = int(rating)
            fields["rating"] = int(rating) or None
        if note is not None:
            self.notes[index] = note.strip()
            fields["note"] = note.strip() or None
        self._write(index, **fields)
        self.update(force=True)

    def pick_winner(self, index: int) -> None:
        """Make cell ``index`` the winner of its row (again: no winner); written to the history."""
        row = self.layout.positions[index][0]
        previous = self.winners.get(row)
        if previous == index:
            del self.winners[row]
            self._write(index, winner=None)
        else:
            self.winners[row] = index
            if previous is not None:
                self._write(previous, winner=None)
            self._write(index, winner=1)
        self.update(force=True)

    def _write(self, index: int, **fields: Any) -> None:
        run = self.grid.cells[index].run
        if run is None or self.store is None or not fields:
            return
        self.store.update(run.run_id, **fields)

    def _on_msg(self, _widget: Any, content: dict[str, Any], _buffers: Any) -> None:
        # Exceptions in widget callbacks vanish in JupyterLab: say them in the grid instead.
        try:
            kind, index = content.get("type"), content.get("index")
            if kind == "rate":
                self.rate(int(index), rating=int(content.get("value") or 0))
            elif kind == "note":
                self.rate(int(index), note=str(content.get("value") or ""))
            elif kind == "winner":
                self.pick_winner(int(index))
            elif kind == "stop":
                handle = self.grid.cells[int(index)].handle
                if handle is not None:
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
        return fallback.grid_html(self.layout.rows, self.layout.cols, self.widget.axes, tiles, text)

    def _plain(self) -> str:
        return f"<grok_nb grid of {len(self.grid.cells)} jobs>"

    def _repr_mimebundle_(self, **_kwargs: Any) -> tuple[dict[str, Any], dict[str, Any]]:
        return fallback.bundle(self.widget, self.static_html(), self._plain())

    def _ipython_display_(self) -> None:
        self._display.show()
