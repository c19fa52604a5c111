"""The video-first comparison grid: an anywidget view of plain tile dicts, live while the jobs run.

Python owns every value the view shows (gridstate.py computes it); the browser only adds playback,
which must stay local. Clicks come back as messages: rate, note, winner, stop. The view does no I/O:
the runtime hands it each finished cell's media (``set_media``) and receives its review intents
(``on_intent(run_id, **fields)``), which it writes to the history.
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
from .compare import Grid
from .gridstate import short
from .live import LiveDisplay
from .present import Media
from .redraw import MAX_REFRESH_PER_S, Redraw

STATIC = Path(__file__).resolve().parent / "static"
log = logging.getLogger(__name__)
#: Receives a view's review intents: ``on_intent(run_id, rating=..., note=..., winner=...)``.
Intent = Callable[..., None]


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

    def __init__(self, grid: Grid, *, on_intent: Intent | None = None, budget_usd: float | None = None,
                 max_rate: float = MAX_REFRESH_PER_S, clock: Callable[[], float] = time.monotonic):
        self.grid = grid
        self._on_intent = on_intent
        self.budget_usd = budget_usd
        self.layout = gridstate.layout([c.label for c in grid.cells], grid.varying, short)
        self.ratings: dict[int, int] = {}
        self.notes: dict[int, str] = {}
        self.winners: dict[int, int] = {}  # row -> cell index
        self.cancelled = False
        self._media: dict[int, Media] = {}  # cell -> its video, as the runtime found it
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
        # No text/plain beside the live view: nbconvert would print it above the static copy.
        self._display = LiveDisplay(lambda: fallback.bundle(self.widget, None, ""),
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
            media = self._media.get(i) if run is not None and run.ok else None
            out.append(gridstate.tile(
                i, run, position=self.layout.positions[i], label=self._label(i),
                source=media.source if media else None, poster=media.poster if media else None,
                rating=self.ratings.get(i), note=self.notes.get(i),
                winner=self.winners.get(self.layout.positions[i][0]) == i, cancelled=self.cancelled,
                prompt=cell.args.get("prompt"), href=media.href if media else None))
        return out

    def summary(self, tiles: list[dict[str, Any]] | None = None) -> dict[str, Any]:
        """The summary line's values (N of M done, failed, ETA, dollars)."""
        g = self.grid
        budget = self.budget_usd if self.budget_usd is not None else getattr(g.client, "budget_usd", None)
        return gridstate.summary(tiles if tiles is not None else self.tiles(), g.runs, estimate_usd=g.estimate_usd,
                                 budget_usd=budget, spent_usd=getattr(g.client, "spent_usd", None),
                                 started=g.started_at is not None, wall_s=g.wall_time_s if g.done else None)

    def set_media(self, index: int, media: Media | None) -> None:
        """Give cell ``index`` its video (found by the runtime); drawn with the next update."""
        if media is not None:
            self._media[index] = media

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
        """The ``on_update`` for one cell's job (Grid.start calls this per cell, after ``set_media``)."""
        def on_update(run: Run) -> None:
            if not (run.finished or run.stopped):
                self.update()
                return
            # A cell's last word: drawn now, shadow included, before its handle resolves, so a cell
            # that ends with grid.wait() (nbclient, nbconvert --execute) saves the final state.
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
        """Give cell ``index`` a rating (1–5, 0 clears) and/or a note; sent on to be written to the history."""
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
        """Make cell ``index`` the winner of its row (again: no winner); sent on to be written to the history."""
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
        if run is None or self._on_intent is None or not fields:
            return
        self._on_intent(run.run_id, **fields)

    def _on_msg(self, _widget: Any, content: dict[str, Any], _buffers: Any) -> None:
        # Exceptions in widget callbacks vanish in JupyterLab: say them in the grid instead.
        try:
            kind, at = content.get("type"), content.get("index")
            index = int(at) if at is not None else -1
            if kind == "rate":
                self.rate(index, rating=int(content.get("value") or 0))
            elif kind == "note":
                self.rate(index, note=str(content.get("value") or ""))
            elif kind == "winner":
                self.pick_winner(index)
            elif kind == "stop":
                handle = self.grid.cells[index].handle
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
