"""ipywidgets views over plain objects: a view does no I/O, it only draws what a Run (and its Media) say."""

from __future__ import annotations

import html
import time
from collections.abc import Callable
from typing import Any

import ipywidgets as W

from ..jobs.results import Run
from . import fallback, gridstate, looks, present, tables
from .live import LiveDisplay
from .present import Media
from .redraw import MAX_REFRESH_PER_S, Redraw
from .tables import MUTED_CSS

#: ipywidgets draws an accordion's title in --jp-ui-font-color2 on --jp-layout-color2 (4.4:1 in the light
#: theme); the card's own title colour keeps it above 4.5:1. A card is as wide as its cell allows (at most
#: 560 px): its bar shrinks, its words wrap between figures, and the exchanges table scrolls inside the card.
CARD_STYLE = ("<style>.grok-http .jupyter-widget-Collapse-header{color:var(--jp-ui-font-color1)}"
              ".grok-http .jupyter-widget-Collapse-header:hover{color:var(--jp-ui-font-color0)}"
              ".grok-card{box-sizing:border-box;min-width:0}.grok-card>*{min-width:0;max-width:100%}"
              ".grok-card .grok-progress{width:auto}"
              ".grok-card .widget-html-content{overflow-wrap:anywhere}"
              ".grok-http-scroll{overflow-x:auto;max-width:100%}</style>")
#: A part of a card's stats line this short never wraps inside itself ("est. $0.20", "17 polls").
_WHOLE_PART = 24


class _View:
    """Shows its ``widget`` when it is the value of a cell, with a static ``text/html`` for saved notebooks."""

    widget: W.Widget
    _live: LiveDisplay | None = None
    _shadow_key: str | None = None  # set by views that carry fallback.hide_css(key): they get a static shadow

    def static_html(self) -> str:
        """What a saved notebook shows in place of the live view."""
        return f"<div><i>{html.escape(type(self).__name__)}: a live grok_nb view (run the cell to use it)</i></div>"

    def _repr_mimebundle_(self, **_kwargs: Any) -> tuple[dict[str, Any], dict[str, Any]]:
        return fallback.bundle(self.widget, self.static_html(), f"<grok_nb {type(self).__name__}>")

    def _ipython_display_(self) -> None:
        if self._live is None:
            if self._shadow_key is None:
                self._live = LiveDisplay(self._repr_mimebundle_)
            else:
                # No text/plain beside the live view: nbconvert would print it above the static copy.
                self._live = LiveDisplay(lambda: fallback.bundle(self.widget, None, ""), self.static_html,
                                         self._shadow_key)
        self._live.show()


class JobCard(_View):
    """A live card for one job: what was asked, progress, state, times, cost, then a player or the error."""

    def __init__(self, *, compact: bool = False, max_rate: float = MAX_REFRESH_PER_S,
                 clock: Callable[[], float] = time.monotonic, budget: Any = None):
        self._media: Media | None = None  # the finished video, as the runtime found it
        self._budget = budget  # the client's ledger: the card says what is left of it
        self._redraw = Redraw(self._draw, max_rate, clock)
        self._run: Run | None = None
        self._compact = compact
        self._player_set = False
        self._http_shown = -1  # how many exchanges the table shows
        self._static_shown: tuple[str, bool] | None = None  # the outcome the static shadow last showed, with media?
        self._key = fallback.new_key()
        self._shadow_key = self._key
        self.draws = 0  # how many times the widgets were refreshed (tests bound it)
        self.header = W.HTML()
        self.state = W.HTML(layout=W.Layout(flex="0 0 auto", margin="0 8px 0 0"))
        self.bar = W.FloatProgress(value=0.0, min=0.0, max=100.0, bar_style="info",
                                   layout=W.Layout(flex="1 1 auto", width="auto", min_width="48px"))
        self.stats = W.HTML()
        self.player = W.HTML()
        self.http = W.HTML()
        #: The widgets a draw changes (the boxes around them never change).
        self._parts: tuple[W.Widget, ...] = (self.header, self.state, self.bar, self.stats, self.player, self.http)
        row = W.HBox([self.state, self.bar], layout=W.Layout(align_items="center"))
        details = W.Accordion(children=[self.http], titles=("HTTP exchanges",), selected_index=None)
        children = [self.header, row, self.stats, self.player] + ([] if compact else [details])
        self.widget = W.VBox(children, layout=W.Layout(border="1px solid var(--jp-border-color2, #e0e0e0)",
                                                       padding="6px", margin="4px", width="auto",
                                                       max_width="none" if compact else "560px"))
        if hasattr(budget, "watch"):
            budget.watch(self._on_budget)  # the ledger line follows every job on the client, not only this one
        for w, cls in ((self.widget, "grok-card"), (self.header, "grok-card-header"), (self.state, "grok-state"),
                       (self.bar, "grok-progress"), (self.stats, "grok-stats"), (self.player, "grok-player"),
                       (details, "grok-http")):
            w.add_class(cls)

    def _on_budget(self, _snapshot: Any) -> None:
        if self._run is not None:
            self._redraw.request()

    def close(self) -> None:
        """Drop the card's widgets (a job that never started leaves no model behind)."""
        for w in (*self._parts, self.widget):
            w.close()

    def update(self, run: Run, media: Media | None = None) -> None:
        """Offer a new state (and, once done, its video); draws now, or later if the last draw was too recent."""
        self._run = run
        if media is not None:
            self._media = media
        self._redraw.request(force=run.finished or run.stopped or run.request_id is None)

    def settle(self) -> None:
        """Send the card's state and its static shadow again, under the cell running now (one that waits for the
        job): nbclient saves them even when the job ended between two cells."""
        for w in self._parts:
            w.send_state()
        if self._live is not None:
            self._live.refresh()

    def static_html(self) -> str:
        """The card as static HTML: what was asked, a poster thumbnail, state, cost, latency, a link."""
        run = self._run
        if run is None:
            return "<div><i>grok_nb job: not started</i></div>"
        media = self._media if run.ok else None
        t = gridstate.tile(0, run, poster=media.poster if media else None, href=media.href if media else None,
                           where=media.where if media else None)
        return fallback.card_html(t, f"{run.kind} · {run.prompt or '(no prompt)'}")

    def _draw(self) -> None:
        run = self._run
        if run is None:
            return
        view = present.card_view(run)
        self.draws += 1
        with self.bar.hold_sync():
            self.bar.value, self.bar.bar_style = view.bar_value, view.bar_style
        if self.header.value == "":  # the style hides the card's static shadow wherever the card renders
            self.header.value = (CARD_STYLE + present.header_html(run)
                                 + f"<style>{fallback.hide_css(self._key)}</style>")
        self.state.value = present.state_html(view)
        stats = view.stats
        if run.waiting_note:  # another notebook shares the key's rate limit
            stats += f" · {run.waiting_note}"
        money = tables.ledger(self._budget.snapshot()) if hasattr(self._budget, "snapshot") else None
        if money:
            stats += f" · {money}"
        # A narrow card wraps between the parts, never inside a short one ("est. $0.20" stays whole); a long one
        # wraps between its figures (the budget line) or words (the rate-limit note).
        parts = " · ".join(f'<span style="white-space:nowrap">{html.escape(p)}</span>' if len(p) <= _WHOLE_PART
                           else html.escape(p) for p in stats.split(" · "))
        self.stats.value = f'<span style="font-size:12px;color:{MUTED_CSS}">{parts}</span>'
        if not self._compact and len(run.exchanges) != self._http_shown:  # grid cells leave it out: twelve logs
            self._http_shown = len(run.exchanges)  # would bloat a saved notebook; a redraw for money alone skips it
            self.http.value = f'<div class="grok-http-scroll">{present.exchanges_html(run.exchanges)}</div>'
        # The player is set once: setting an HTML widget again rebuilds the <video> and restarts it.
        if not self._player_set and run.ok and self._media is not None:
            self.player.value = present.player_html(*self._media.source, run.request_id)
            self._player_set = True
        elif view.failed and not self._player_set:
            self.player.value = present.error_html(run)
        kind = gridstate.tile_kind(run)
        # The engine changes the Run in place: a draw may see it done before its video arrives, so the shadow is
        # drawn again once the video is there.
        shown = (kind, self._media is not None)
        if self._live is not None and shown != self._static_shown and looks.tone(kind) in ("ok", "bad", "warn"):
            self._static_shown = shown
            self._live.refresh()  # the saved notebook shows the outcome, not "rendering"


class ConfirmBar:
    """'Spend up to $X on N jobs?' with Run and Cancel; nothing is sent until Run. Either answer removes the bar."""

    def __init__(self, text: str, on_confirm: Callable[[], Any], on_cancel: Callable[[], Any] | None = None):
        self.go = W.Button(description="Run", button_style="warning", icon="play")
        self.cancel = W.Button(description="Cancel")
        self.text = W.HTML(text)
        # A narrow cell puts the buttons under the question rather than past its edge.
        self.widget = W.HBox([self.text, self.go, self.cancel], layout=W.Layout(flex_flow="row wrap",
                                                                               align_items="center"))
        self.widget.add_class("grok-confirm")
        self.out = W.Output()
        self.answer: str | None = None

        def answered(answer: str, then: Callable[[], Any] | None) -> None:
            if self.answer is not None:  # one answer only, however fast the clicks
                return
            self.answer = answer
            self.go.disabled = self.cancel.disabled = True
            self.widget.layout.display = "none"  # the grid below says what happened
            if then is not None:
                with self.out:
                    then()

        self.go.on_click(lambda _b: answered("run", on_confirm))
        self.cancel.on_click(lambda _b: answered("cancel", on_cancel))

    def _repr_mimebundle_(self, **_kwargs: Any) -> tuple[dict[str, Any], dict[str, Any]]:
        # A saved notebook shows nothing here: the question was answered (or never will be) in a live kernel.
        return fallback.bundle(self.widget, "<div></div>", "")
