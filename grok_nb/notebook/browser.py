"""The history browser: filter and sort the runs, play them side by side, rate each and keep a note on each.

The view does no I/O: ``HistoryFeed`` (the live side, which asks the studio's controller) hands it the history and
the chosen runs with their videos, and receives its intents (select, save, close). The feed watches the
history (at most once a second) so runs made anywhere, by this notebook, another one or the command
line, appear without touching a filter.
"""

from __future__ import annotations

import html
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

import ipywidgets as W
import pandas as pd

from ..history.rows import run_of
from ..jobs.results import Run
from . import fallback, metrics, present, tables
from .controller import Controller
from .live import LiveDisplay
from .looks import TONE_CSS
from .present import Media
from .tables import MUTED_CSS, TEXT_CSS, HistoryFrame

#: Finds a finished run's video (the runtime's job: it reads the file).
MediaSource = Callable[[Run], "Media | None"]

#: The sort choices: (column, ascending).
SORTS = {"newest": ("created_at", False), "oldest": ("created_at", True), "cost": ("cost", False),
         "latency": ("latency_s", False), "rating": ("rating", False), "duration": ("video_duration", False)}
#: The columns of a row in the list, with their widths (characters, monospace): the prompt and the figures people
#: compare first, so that a narrow notebook shows them before the list scrolls sideways.
ROW_COLUMNS = (("prompt", 34), ("status", 15), ("cost", 7), ("rating", 7), ("latency", 8), ("length", 7),
               ("res", 5), ("when", 14), ("kind", 8))
_SORT_COLUMN = {"newest": "when", "oldest": "when", "cost": "cost", "latency": "latency", "rating": "rating",
                "duration": "length"}
#: The measures the list sorts (largest first) and filters by: a video's qualities, not its file's facts.
MEASURES = tuple(n for n, m in metrics.METRICS.items() if n.startswith("m_") and m.quality)
#: The width of the list's column for a measure (characters).
MEASURE_WIDTH = 9
RATING_CHOICES = (("–", 0), ("★", 1), ("★★", 2), ("★★★", 3), ("★★★★", 4), ("★★★★★", 5))
RATING_TIPS = ("no rating", "1 star", "2 stars", "3 stars", "4 stars", "5 stars")
#: How often the browser looks for new runs (seconds); the look itself is a file stat for SQLite.
POLL_S = 1.0
#: Rows in the list at a time: the history is paged, sorted and filtered in SQL, and only the page is sent.
PAGE_SIZE = 100
STYLE = f"""<style>
.grok-browser {{ color: {TEXT_CSS}; }}
.grok-runs select, .grok-browser-head {{ font-family: var(--jp-code-font-family, monospace);
  font-size: 12px; white-space: pre; }}
.grok-runs select {{ color: {TEXT_CSS}; background: var(--jp-layout-color1, #fff); }}
.grok-runs {{ width: max-content; min-width: 100%; }}
.grok-runs select {{ min-width: max-content; }}
.grok-browser-head {{ width: max-content; min-width: 100%; }}
.grok-browser-head {{ color: {MUTED_CSS}; padding: 0 0 0 5px; overflow: hidden; }}
.grok-browser-head, .grok-browser-head .widget-html-content {{ line-height: 1.4; height: auto; }}
.grok-browser-tile .widget-html-content {{ line-height: 1.4; }}
.grok-rating .widget-toggle-button {{ min-width: max-content; }}
.grok-rating, .grok-rating > div {{ flex-wrap: wrap; max-width: 100%; height: auto; }}
.grok-browser-tile {{ border: 1px solid var(--jp-border-color2, #e0e0e0); padding: 6px; margin: 4px;
  box-sizing: border-box; }}
.grok-browser-filters > * {{ max-width: 100%; }}
</style>"""


def who_column(df: Any) -> str | None:
    """The column naming who made each run, in team histories (``made_by``, ``owner`` or ``user``), if filled."""
    return next((c for c in HistoryFrame.WHO if c in df.columns and df[c].notna().any()), None)


def _cost(row: Any) -> str:
    actual, estimate = row.get("cost_actual_usd"), row.get("cost_estimated_usd")
    if not tables._missing(actual):
        return tables.usd(actual)
    return "~" + tables.usd(estimate) if not tables._missing(estimate) else "—"  # ~ marks an estimate


def row_fields(row: Any, who: str | None = None, measure: str | None = None) -> dict[str, str]:
    """The text of each column of a run's row in the list (pure); ``measure``: a measure's column shown too."""
    take = row.get("take")
    created = row.get("created_at")
    rating = row.get("rating")
    rated = not tables._missing(rating) and int(rating) > 0
    fields = {
        "when": created.strftime("%m-%d %H:%M:%S") if not tables._missing(created) else "",
        "kind": str(row.get("kind") or ""),
        "status": str(row.get("status") or ""),
        "res": str(row.get("resolution") or "") if not tables._missing(row.get("resolution")) else "",
        "length": tables.length(row.get("video_duration") if not tables._missing(row.get("video_duration"))
                                else row.get("duration")),
        "latency": tables.seconds(row.get("latency_s")),
        "cost": _cost(row),
        # Digits only: a star's width differs between monospace fonts and would shift the columns after it.
        "rating": f"{int(rating)}/5" if rated else "–",
        "prompt": tables.one_line(row.get("prompt") or "", dict(ROW_COLUMNS)["prompt"]),
        "take": "" if tables._missing(take) else str(int(take)),
    }
    if who:
        value = row.get(who)
        fields["who"] = "" if tables._missing(value) else str(value)
    if measure:
        value = row.get(measure)
        fields["measure"] = metrics.text(measure, None if tables._missing(value) else float(value))
    return fields


def made_as_takes(df: pd.DataFrame) -> bool:
    """True when some of these runs were made as takes (a take above 1): the list then says which is which."""
    return "take" in df.columns and bool(pd.to_numeric(df["take"], errors="coerce").gt(1).any())


def _columns(measure: str | None, takes: bool = False) -> list[tuple[str, int]]:
    """The list's columns: the take after the prompt when runs were made as takes (two takes of one request
    would read the same), then a measure's when one is sorted or filtered by."""
    cols = list(ROW_COLUMNS)
    if measure:
        cols.insert(1, ("measure", MEASURE_WIDTH))
    if takes:
        cols.insert(1, ("take", 4))
    return cols


def row_label(row: Any, who: str | None = None, measure: str | None = None, takes: bool = False) -> str:
    """A run as one aligned line: prompt, (its take, a measure,) status, cost, rating, latency, length, resolution,
    when, kind, who."""
    f = row_fields(row, who, measure)
    parts = [f[name][:width].ljust(width) for name, width in _columns(measure, takes)]
    if who:
        parts.append(f["who"][:10].ljust(10))
    return "  ".join(parts).rstrip()


def header_label(sort: str, who: str | None = None, measure: str | None = None, takes: bool = False) -> str:
    """The column names above the list, the sort column marked ▼ (descending) or ▲ (ascending)."""
    marked = "measure" if sort in MEASURES else _SORT_COLUMN.get(sort)
    arrow = "▲" if SORTS.get(sort, ("", False))[1] else "▼"
    names = {"measure": metrics.METRICS[measure].label if measure in metrics.METRICS else "measure"}
    parts = [(names.get(name, name) + arrow if name == marked else names.get(name, name))[:width].ljust(width)
             for name, width in _columns(measure, takes)]
    if who:
        parts.append("who".ljust(10))
    return "  ".join(parts).rstrip()


@dataclass
class Tile:
    """One selected run: its player (or error), and its own rating and note."""

    run_id: str
    key: tuple[Any, ...]
    box: W.VBox
    rating: W.ToggleButtons
    note: W.Textarea


class HistoryBrowser:
    """Filter and sort the history, play runs side by side, rate each and keep a note on each; new runs appear live."""

    def __init__(self, *, on_select: Callable[[tuple[str, ...]], Any] | None = None,
                 on_save: Callable[[list[tuple[str, int | None, str | None]]], Any] | None = None,
                 on_close: Callable[[], Any] | None = None,
                 on_query: Callable[[dict[str, Any]], Any] | None = None, budget: Any = None):
        self._on_select_intent = on_select
        self._on_query_intent = on_query
        self._on_save_intent = on_save
        self._on_close_intent = on_close
        self.feed: Any = None  # the HistoryFeed that fills this view, when there is one
        self._lock = threading.RLock()
        self._page: Any = None  # the page of runs the list shows
        self.tiles: dict[str, Tile] = {}
        narrow = {"description_width": "initial"}
        self.search = W.Text(placeholder="text in the prompt", description="search", style=narrow,
                             layout=W.Layout(width="240px"))
        self.status = W.Dropdown(options=["all"], value="all", description="status", style=narrow,
                                 layout=W.Layout(width="190px"))
        self.kind = W.Dropdown(options=["all"], value="all", description="kind", style=narrow,
                               layout=W.Layout(width="160px"))
        self.tag = W.Dropdown(options=["all"], value="all", description="tag", style=narrow,
                              layout=W.Layout(width="190px"))
        self.sort = W.Dropdown(options=[(k, k) for k in SORTS] + [(metrics.METRICS[n].label, n) for n in MEASURES],
                               value="newest", description="sort", style=narrow, layout=W.Layout(width="170px"),
                               tooltip="measures sort largest first")
        # A measure's range: runs whose value lies between min and max (either may be left empty).
        self.measure = W.Dropdown(options=[("any", "")] + [(metrics.METRICS[n].label, n) for n in MEASURES],
                                  value="", description="measure", style=narrow, layout=W.Layout(width="190px"))
        self.low = W.Text(placeholder="min", continuous_update=False, layout=W.Layout(width="64px"))
        self.high = W.Text(placeholder="max", continuous_update=False, layout=W.Layout(width="64px"))
        self.count = W.HTML()
        self.prev = W.Button(description="◀", tooltip="newer page", layout=W.Layout(width="36px"))
        self.next = W.Button(description="▶", tooltip="next page", layout=W.Layout(width="36px"))
        self.offset = 0
        self.total = 0  # runs that pass the filters
        self.all_runs = 0
        self._who: str | None = None
        self.head = W.HTML()
        self.runs = W.SelectMultiple(rows=10)
        self.players = W.HBox(layout=W.Layout(flex_flow="row wrap", align_items="flex-start"))
        self.save = W.Button(description="Save ratings & notes", button_style="primary", icon="save",
                             tooltip="Write each shown run's own rating and note to the history",
                             layout=W.Layout(width="auto"))
        self.message = W.HTML()
        self.money = W.HTML()  # the client's budget line, from the same ledger as every card and grid
        self._budget = budget
        self.log = W.Output()
        for w, cls in ((self.search, "grok-search"), (self.status, "grok-filter-status"),
                       (self.kind, "grok-filter-kind"), (self.tag, "grok-filter-tag"), (self.sort, "grok-sort"),
                       (self.measure, "grok-filter-measure"), (self.low, "grok-filter-min"),
                       (self.high, "grok-filter-max"),
                       (self.runs, "grok-runs"), (self.head, "grok-browser-head"), (self.count, "grok-browser-count"),
                       (self.players, "grok-compare-players"), (self.save, "grok-save"),
                       (self.message, "grok-browser-message"), (self.money, "grok-browser-money")):
            w.add_class(cls)
        self.prev.add_class("grok-page-prev")
        self.next.add_class("grok-page-next")
        filters = W.HBox([self.search, self.status, self.kind, self.tag, self.sort, self.measure, self.low, self.high,
                          self.prev, self.next, self.count, self.money],
                         layout=W.Layout(flex_flow="row wrap", align_items="center"))
        filters.add_class("grok-browser-filters")
        # A narrow notebook scrolls the list sideways, its header with it, rather than cutting the rows.
        listing = W.VBox([self.head, self.runs], layout=W.Layout(overflow="auto hidden", width="100%"))
        listing.add_class("grok-browser-list")
        self._key = fallback.new_key()  # ties the live view to its static copy (for the saved notebook)
        self._live = LiveDisplay(lambda: fallback.bundle(self.widget, None, ""), self.static_html, self._key)
        style = STYLE.replace("</style>", fallback.hide_css(self._key) + "</style>")
        self.widget = W.VBox([W.HTML(style), filters, listing, self.players,
                              W.HBox([self.save, self.message], layout=W.Layout(align_items="center")), self.log])
        self.widget.add_class("grok-browser")
        for w in (self.search, self.status, self.kind, self.tag, self.sort, self.measure, self.low, self.high):
            w.observe(self._on_filter, names="value")
        self.runs.observe(self._on_select, names="value")
        self.save.on_click(self._on_save)
        self.prev.on_click(lambda _b: self._turn_page(-1))
        self.next.on_click(lambda _b: self._turn_page(+1))
        self._on_budget(None)
        if hasattr(budget, "watch"):
            budget.watch(self._on_budget)

    def _on_budget(self, _snapshot: Any) -> None:
        line = tables.ledger(self._budget.snapshot()) if hasattr(self._budget, "snapshot") else None
        style = f"color:{MUTED_CSS};font-size:12px;margin-left:8px"
        value = f'<span style="{style}">{html.escape(line)}</span>' if line else ""
        if self.money.value != value:
            self.money.value = value

    # -- display --------------------------------------------------------------------------------
    def _ipython_display_(self) -> None:
        # The live browser, then its static copy: a table of its runs (a snapshot of display time), which is what a
        # saved notebook, nbconvert and GitHub show. The live view's CSS hides the copy; reopened without a kernel,
        # the copy's CSS hides the widget's "model not found" instead.
        self._live.show()

    def static_html(self, limit: int = 50) -> str:
        """The runs the browser shows, as a plain table: what a saved notebook, nbconvert or GitHub display."""
        with self._lock:
            df = self.frame()
            total = self.total
        who = self._who
        cols = ["prompt", "status", "cost_actual_usd", "latency_s", "resolution", "video_duration", "rating",
                "created_at", "kind", "note", "request_id"]
        if who:
            cols.insert(2, who)
        measure = self.shown_measure()
        if measure:
            cols.insert(1, measure)
        if made_as_takes(df):
            cols.insert(1, "take")
        cols = [c for c in cols if c in df.columns and (c != "note" or df["note"].notna().any())]
        more = f", the first {min(limit, len(df))} shown" if total > min(limit, len(df)) else ""
        sort = dict((v, k) for k, v in self.sort.options).get(self.sort.value, self.sort.value)
        caption = (f"grok_nb history as of {datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC: {total} runs "
                   f"(sorted by {sort}{more}); run the cell for the live browser")
        return (f'<div class="grok-browser-static">'
                f"{tables._scroll(tables.table_html(df.head(limit), cols), caption)}</div>")

    # -- data -----------------------------------------------------------------------------------
    def filters(self) -> dict[str, Any]:
        """The chosen filters, as the store's queries take them."""
        def chosen(dropdown: W.Dropdown) -> str | None:
            return None if dropdown.value in (None, "all") else dropdown.value

        found = {"status": chosen(self.status), "kind": chosen(self.kind), "text": self.search.value or None,
                 "tags": chosen(self.tag)}
        bounds = self.measure_range()
        if bounds is not None:
            found["where"] = {self.measure.value: bounds}
        return found

    def measure_range(self) -> tuple[float | None, float | None] | None:
        """The chosen measure's (min, max), None for an empty end; None without a measure or any bound."""
        if not self.measure.value:
            return None
        ends: list[float | None] = []
        for box in (self.low, self.high):
            text = box.value.strip().replace("\u2212", "-")
            try:
                number = float(text) if text else None
            except ValueError:
                number = None
                self.say(f"{box.placeholder} {box.value!r} is not a number: that end is left open", "warn")
            ends.append(number if number is None or number == number else None)
        low, high = ends
        if low is None and high is None:
            return None
        if low is not None and high is not None and low > high:
            low, high = high, low  # a range typed the other way round
        return low, high

    def shown_measure(self) -> str | None:
        """The measure the list shows a column of: the one filtered by, else the one sorted by."""
        if self.measure.value:
            return str(self.measure.value)
        return str(self.sort.value) if self.sort.value in MEASURES else None

    def query(self) -> dict[str, Any]:
        """What the list asks of the history: the filters, the sort and the page."""
        return {"sort": self.sort.value, "offset": self.offset, "limit": PAGE_SIZE, **self.filters()}

    def frame(self) -> Any:
        """The page of runs the list shows (filtered, sorted and paged in SQL by the feed)."""
        return self._page

    def show_history(self, df: Any, *, total: int | None = None, all_runs: int | None = None,
                     facets: dict[str, Any] | None = None) -> bool:
        """Draw a page of the history (a DataFrame from the store) with how many runs pass the filters, how many
        there are and the filters' choices; without ``facets``, ``df`` is the whole history and is filtered, sorted
        and paged here. Filters, page, selection and players stay. True when the list of runs changed."""
        with self._lock:
            before = self.runs.options
            if facets is None:  # a page handed in without a feed: its own values are the filters' choices
                facets = {"status": df["status"].dropna().unique().tolist(),
                          "kind": df["kind"].dropna().unique().tolist(),
                          "tags": {t for tags in df["tags"] for t in tags},
                          "makers": 2 if who_column(df) else 1}
            self._page = df
            self.total = len(df) if total is None else int(total)
            self.all_runs = self.total if all_runs is None else int(all_runs)
            self._quiet_filters = True  # new choices keep the current ones: no query of their own
            try:
                _set_choices(self.status, facets["status"])
                _set_choices(self.kind, facets["kind"])
                _set_choices(self.tag, facets["tags"])
            finally:
                self._quiet_filters = False
            self._who = "made_by" if facets["makers"] > 1 else None  # only when more than one person did
            self._fill()
            return bool(self.runs.options != before)

    def say(self, text: str, tone: str = "busy") -> None:
        """A one-line message under the players (saved, unreadable history...)."""
        colour = TONE_CSS.get(tone, MUTED_CSS) if tone != "busy" else MUTED_CSS
        self.message.value = f'<span style="color:{colour}">{html.escape(text)}</span>'

    def close(self) -> None:
        """Drop the widgets (and tell the feed to stop watching the history)."""
        if self._on_close_intent is not None:
            self._on_close_intent()
        self.widget.close()

    # -- list -----------------------------------------------------------------------------------
    def _fill(self) -> None:
        df = self._page
        if df is None:
            return
        who = self._who
        measure = self.shown_measure()
        takes = made_as_takes(df)
        options = [(row_label(row, who, measure, takes), row["run_id"]) for row in df.to_dict("records")]
        head = header_label(self.sort.value, who, measure, takes)
        self.head.value = f"<div>{html.escape(head)}</div>"
        shown = f"{self.offset + 1:,}–{self.offset + len(df):,} of " if self.total > len(df) else ""
        of_all = f" (of {self.all_runs:,})" if self.all_runs != self.total else ""
        self.count.value = (f'<span style="color:{MUTED_CSS};font-size:12px;margin-left:8px">'
                            f"{shown}{self.total:,} runs{of_all} · live</span>")
        self.prev.disabled = self.offset == 0
        self.next.disabled = self.offset + len(df) >= self.total
        if options == list(self.runs.options):
            return
        self.runs.rows = max(4, min(10, len(options)))  # no tall empty list for a short history
        keep = tuple(v for v in self.runs.value if v in {value for _, value in options})
        self._quiet = True
        try:
            with self.runs.hold_sync():  # the page gets the new list and the kept choice in one message
                self.runs.options = options
                self.runs.value = keep  # a new option list must not drop what the user chose
        finally:
            self._quiet = False
        self._show(keep)

    def _turn_page(self, step: int) -> None:
        with self.log, self._lock:
            self.offset = max(0, self.offset + step * PAGE_SIZE)
            self._ask()

    def _ask(self) -> None:
        """Redraw for the current filters, sort and page: the feed answers with ``show_history``."""
        if self._on_query_intent is not None:
            self._on_query_intent(self.query())
        else:
            self._fill()

    _quiet = False
    _quiet_filters = False

    def _on_filter(self, _change: Any) -> None:
        with self.log, self._lock:
            if self._quiet_filters:  # the choices were redrawn, not chosen
                return
            self.offset = 0  # a new filter or sort starts at its first page
            self._ask()

    def _on_select(self, change: Any) -> None:
        with self.log, self._lock:
            if not self._quiet:  # not when the list itself was redrawn
                self._show(tuple(change["new"]))

    # -- tiles ----------------------------------------------------------------------------------
    def _show(self, run_ids: tuple[str, ...]) -> None:
        """Ask for the chosen runs (the feed answers with ``show_runs``); none chosen: no players."""
        if not run_ids:
            self.show_runs([])
        elif self._on_select_intent is not None:
            self._on_select_intent(tuple(run_ids))

    def show_runs(self, chosen: Sequence[tuple[dict[str, Any], Media | None]]) -> None:
        """One tile per chosen run (its history row and video); a tile whose run has not changed is kept
        (its player keeps playing)."""
        with self._lock:
            tiles = {}
            for row, media in chosen:
                key = (row.get("status"), row.get("local_path"), row.get("error_message"))
                tile = self.tiles.get(row["run_id"])
                if tile is None or tile.key != key:
                    tile = self._tile(row, media, key, tile)
                tiles[row["run_id"]] = tile
            self.tiles = tiles
            boxes = tuple(t.box for t in tiles.values())
            if boxes != self.players.children:
                self.players.children = boxes

    def _tile(self, row: dict[str, Any], media: Media | None, key: tuple[Any, ...], old: Tile | None) -> Tile:
        run = run_of(row)
        source = media.source if media is not None and run.ok else None
        body = (present.player_html(*source, run.request_id) if source
                else present.error_html(run) if run.error
                else f'<i style="color:{MUTED_CSS}">{html.escape(present.outcome(run))}</i>')
        view = present.card_view(run)
        top = W.HTML(f'<div style="max-width:360px">{present.header_html(run, 50)}'
                     f'<div style="margin:2px 0">{present.state_html(view)}</div>{body}</div>')
        top.add_class("grok-browser-player")
        rating = old.rating if old else W.ToggleButtons(
            options=list(RATING_CHOICES), value=int(row.get("rating") or 0), tooltips=list(RATING_TIPS),
            style={"button_width": "auto"}, layout=W.Layout(width="auto"))
        note = old.note if old else W.Textarea(value=row.get("note") or "", placeholder="a note about this run",
                                               rows=2, layout=W.Layout(width="100%"))
        rating.add_class("grok-rating")
        note.add_class("grok-note")
        box = W.VBox([top, rating, note], layout=W.Layout(width="380px", max_width="calc(100% - 8px)"))
        box.add_class("grok-browser-tile")
        return Tile(row["run_id"], key, box, rating, note)

    def _on_save(self, _button: Any) -> None:
        with self.log, self._lock:
            if not self.tiles:
                self.say("select runs to rate them")
                return
            # Each run gets its own rating and note.
            items = [(t.run_id, int(t.rating.value) or None, t.note.value.strip() or None) for t in self.tiles.values()]
            if self._on_save_intent is not None:
                self._on_save_intent(items)


class HistoryFeed:
    """The live side of a HistoryBrowser: fills the view from the history through the controller (which does the
    reading and writing), writes what it asks, watches for changes."""

    def __init__(self, controller: Controller, *, live: bool = True, poll_s: float = POLL_S, budget: Any = None):
        self.controller = controller
        self._stop = threading.Event()
        self.view = HistoryBrowser(on_select=self.select, on_save=self.save, on_close=self.close,
                                   on_query=self.query, budget=budget)
        self.view.feed = self
        self._signature = controller.signature()  # taken before reading: a write in between shows next time
        self.refresh()
        self._thread: threading.Thread | None = None
        if live:
            self._thread = threading.Thread(target=self._watch, args=(poll_s,), name="grok-nb-browser", daemon=True)
            self._thread.start()

    def refresh(self) -> bool:
        """Show the view's page of the history, filtered, sorted and paged in SQL, with the filters' choices;
        True if the list of runs changed."""
        return self.query(self.view.query())

    def query(self, asked: dict[str, Any]) -> bool:
        """The view asked for a page (filters, sort, offset, limit): have it read and hand it over."""
        asked = dict(asked)
        sort, offset, limit = asked.pop("sort"), int(asked.pop("offset")), int(asked.pop("limit"))
        page = self.controller.history_page(sort=sort, offset=offset, limit=limit, **asked)
        self.view.offset = page.offset
        return self.view.show_history(page.frame, total=page.total, all_runs=page.all_runs, facets=page.facets)

    def select(self, run_ids: tuple[str, ...]) -> None:
        """The view chose runs: hand it their rows and videos."""
        rows = self.controller.rows(run_ids)
        self.view.show_runs([(row, self.controller.media(run_of(row))) for row in rows])

    def save(self, items: list[tuple[str, int | None, str | None]]) -> None:
        """Write each (run id, rating, note) the view sent, then show the history again."""
        for run_id, rating, note in items:
            self.controller.review(run_id, rating=rating, note=note)
        n = len(items)
        self.view.say(f"saved {n} run{'s' if n != 1 else ''}", "ok")
        self._signature = self.controller.signature()
        self.refresh()

    def poll_once(self) -> bool:
        """Show the history again if it changed since the last look; True if the list of runs changed."""
        signature = self.controller.signature()
        if signature is not None and signature == self._signature:
            return False
        changed = self.refresh()  # a changed row redraws the chosen runs too
        self._signature = signature  # only once shown: a look that failed is tried again
        return changed

    def _watch(self, poll_s: float) -> None:
        while not self._stop.wait(poll_s):
            if self.view.widget.comm is None:  # closed
                break
            try:
                self.poll_once()
            except Exception as exc:  # a damaged or vanished history must not kill the kernel's thread
                self.view.say(f"history unreadable: {exc}", "bad")

    def close(self) -> None:
        """Stop watching the history."""
        self._stop.set()


def _clamped(offset: int, total: int, size: int = PAGE_SIZE) -> int:
    """The offset of a page that exists: at most the last page's start."""
    return max(0, min(offset, (max(0, total - 1) // size) * size))


def _set_choices(dropdown: W.Dropdown, values: Any) -> None:
    """'all' first, then the values; the current choice is kept (it starts as 'all', never blank)."""
    options = ["all"] + sorted(str(v) for v in values)
    current = dropdown.value if dropdown.value in options else "all"
    if list(dropdown.options) != options:
        dropdown.options = options
    dropdown.value = current


