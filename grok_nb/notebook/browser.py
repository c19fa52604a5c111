"""The history browser: filter and sort the runs, play them side by side, rate each and keep a note on each.

The view does no I/O: ``HistoryFeed`` (the runtime side, which owns the store) hands it the history and
the chosen runs with their videos, and receives its intents (select, save, close). The feed watches the
history (at most once a second) so runs made anywhere, by this notebook, another one or the command
line, appear without touching a filter.
"""

from __future__ import annotations

import html
import os
import threading
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import IPython.display as ipd
import ipywidgets as W

from ..history.store import filter_runs
from ..jobs.results import Run
from . import present, tables
from .looks import TONE_CSS
from .present import Media
from .tables import MUTED_CSS, TEXT_CSS, HistoryFrame

#: Finds a finished run's video (the runtime's job: it reads the file).
MediaSource = Callable[[Run], "Media | None"]

#: The sort choices: (column, ascending).
SORTS = {"newest": ("created_at", False), "oldest": ("created_at", True), "cost": ("cost", False),
         "latency": ("latency_s", False), "rating": ("rating", False), "duration": ("video_duration", False)}
#: The columns of a row in the list, with their widths (characters, monospace); the prompt takes the rest.
ROW_COLUMNS = (("when", 14), ("kind", 8), ("status", 15), ("res", 5), ("length", 7), ("latency", 10),
               ("cost", 8), ("rating", 7))
_SORT_COLUMN = {"newest": "when", "oldest": "when", "cost": "cost", "latency": "latency", "rating": "rating",
                "duration": "length"}
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
.grok-browser-tile {{ border: 1px solid var(--jp-border-color2, #e0e0e0); padding: 6px; margin: 4px; }}
</style>"""


def who_column(df: Any) -> str | None:
    """The column naming who made each run, in team histories (``made_by``, ``owner`` or ``user``), if filled."""
    return next((c for c in HistoryFrame.WHO if c in df.columns and df[c].notna().any()), None)


def _cost(row: Any) -> str:
    actual, estimate = row.get("cost_actual_usd"), row.get("cost_estimated_usd")
    if not tables._missing(actual):
        return tables.usd(actual)
    return "~" + tables.usd(estimate) if not tables._missing(estimate) else "—"  # ~ marks an estimate


def row_fields(row: Any, who: str | None = None) -> dict[str, str]:
    """The text of each column of a run's row in the list (pure)."""
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
        # One star glyph on every row keeps the columns aligned whatever width the font gives it.
        "rating": f"★{int(rating)}" if rated else "☆-",
    }
    if who:
        value = row.get(who)
        fields["who"] = "" if tables._missing(value) else str(value)
    prompt = str(row.get("prompt") or "")
    fields["prompt"] = prompt if len(prompt) <= 80 else prompt[:79] + "…"
    return fields


def row_label(row: Any, who: str | None = None) -> str:
    """A run as one aligned line: when, kind, status, resolution, length, latency, cost, rating, who, prompt."""
    f = row_fields(row, who)
    parts = [f[name][:width].ljust(width) for name, width in ROW_COLUMNS]
    if who:
        parts.append(f["who"][:10].ljust(10))
    return "  ".join(parts + [f["prompt"]])


def header_label(sort: str, who: str | None = None) -> str:
    """The column names above the list, the sort column marked ▼ (descending) or ▲ (ascending)."""
    marked = _SORT_COLUMN.get(sort)
    arrow = "▲" if SORTS.get(sort, ("", False))[1] else "▼"
    parts = [(name + arrow if name == marked else name)[:width].ljust(width) for name, width in ROW_COLUMNS]
    if who:
        parts.append("who".ljust(10))
    return "  ".join(parts + ["prompt"])


def sorted_runs(df: Any, sort: str) -> Any:
    """Rows sorted by a SORTS key (cost: actual, else estimated), unknown values last."""
    key, ascending = SORTS.get(sort or "newest", SORTS["newest"])
    if key == "cost":
        df = df.assign(cost=df["cost_actual_usd"].fillna(df["cost_estimated_usd"]))
    return df.sort_values(key, ascending=ascending, na_position="last", kind="stable")


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
                 on_query: Callable[[dict[str, Any]], Any] | None = None):
        self._on_select_intent = on_select
        self._on_query_intent = on_query
        self._on_save_intent = on_save
        self._on_close_intent = on_close
        self.feed: Any = None  # the HistoryFeed that fills this view, when there is one
        self._lock = threading.RLock()
        self._whole: Any = None  # a whole history handed in without a feed: filtered, sorted and paged here
        self._page: Any = None  # the page of runs the list shows
        self.tiles: dict[str, Tile] = {}
        self._uid = uuid.uuid4().hex[:10]
        narrow = {"description_width": "initial"}
        self.search = W.Text(placeholder="text in the prompt", description="search", style=narrow,
                             layout=W.Layout(width="240px"))
        self.status = W.Dropdown(options=["all"], value="all", description="status", style=narrow,
                                 layout=W.Layout(width="190px"))
        self.kind = W.Dropdown(options=["all"], value="all", description="kind", style=narrow,
                               layout=W.Layout(width="160px"))
        self.tag = W.Dropdown(options=["all"], value="all", description="tag", style=narrow,
                              layout=W.Layout(width="190px"))
        self.sort = W.Dropdown(options=list(SORTS), value="newest", description="sort", style=narrow,
                               layout=W.Layout(width="150px"))
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
        self.log = W.Output()
        for w, cls in ((self.search, "grok-search"), (self.status, "grok-filter-status"),
                       (self.kind, "grok-filter-kind"), (self.tag, "grok-filter-tag"), (self.sort, "grok-sort"),
                       (self.runs, "grok-runs"), (self.head, "grok-browser-head"), (self.count, "grok-browser-count"),
                       (self.players, "grok-compare-players"), (self.save, "grok-save"),
                       (self.message, "grok-browser-message")):
            w.add_class(cls)
        self.prev.add_class("grok-page-prev")
        self.next.add_class("grok-page-next")
        filters = W.HBox([self.search, self.status, self.kind, self.tag, self.sort, self.prev, self.next, self.count],
                         layout=W.Layout(flex_flow="row wrap", align_items="center"))
        # A narrow notebook scrolls the list sideways, its header with it, rather than cutting the rows.
        listing = W.VBox([self.head, self.runs], layout=W.Layout(overflow="auto hidden", width="100%"))
        listing.add_class("grok-browser-list")
        self.widget = W.VBox([W.HTML(STYLE), filters, listing, self.players,
                              W.HBox([self.save, self.message], layout=W.Layout(align_items="center")), self.log])
        self.widget.add_class("grok-browser")
        self.widget.add_class(f"grok-live-{self._uid}")
        for w in (self.search, self.status, self.kind, self.tag, self.sort):
            w.observe(self._on_filter, names="value")
        self.runs.observe(self._on_select, names="value")
        self.save.on_click(self._on_save)
        self.prev.on_click(lambda _b: self._turn_page(-1))
        self.next.on_click(lambda _b: self._turn_page(+1))

    # -- display --------------------------------------------------------------------------------
    def outputs(self) -> list[dict[str, Any]]:
        """The browser's two outputs: a table of its runs, then the live widget."""
        # The table is what a saved notebook, nbconvert and GitHub show (a snapshot of display time). While the
        # widget is live, the table's CSS hides the table; reopened without a kernel, it hides the widget's
        # "model not found" instead.
        view = self.widget._repr_mimebundle_()["application/vnd.jupyter.widget-view+json"]
        return [{"text/html": self.static_html()},
                {"application/vnd.jupyter.widget-view+json": view, "text/plain": ""}]

    def _ipython_display_(self) -> None:
        for bundle in self.outputs():
            ipd.display(bundle, raw=True)  # type: ignore[no-untyped-call]

    def static_html(self, limit: int = 50) -> str:
        """The runs the browser shows, as a plain table: what a saved notebook, nbconvert or GitHub display."""
        with self._lock:
            df = self.frame()
            total = self.total
        who = self._who
        cols = ["created_at", "kind", "status", "resolution", "video_duration", "latency_s", "cost_actual_usd",
                "rating", "note", "prompt", "request_id"]
        if who:
            cols.insert(1, who)
        cols = [c for c in cols if c in df.columns and (c != "note" or df["note"].notna().any())]
        more = f", the first {min(limit, len(df))} shown" if total > min(limit, len(df)) else ""
        caption = (f"grok_nb history as of {datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC: {total} runs "
                   f"(sorted by {self.sort.value}{more}); run the cell for the live browser")
        uid = self._uid
        # :has() rules scoped to this cell's outputs and this browser (Chromium ≥ 105, Firefox ≥ 121, Safari ≥ 15.4).
        style = ("<style>"
                 f".jp-OutputArea:has(.grok-live-{uid}) .jp-OutputArea-child:has(.grok-static-{uid}){{display:none}}"
                 f".jp-OutputArea:has(.grok-static-{uid}) .jp-OutputArea-child:has([data-mime-type="
                 f"'application/vnd.jupyter.widget-view+json']):not(:has(.grok-browser)){{display:none}}</style>")
        return (f'{style}<div class="grok-browser-static grok-static-{uid}">'
                f"{tables.table_html(df.head(limit), cols, caption=caption)}</div>")

    # -- data -----------------------------------------------------------------------------------
    def filters(self) -> dict[str, Any]:
        """The chosen filters, as the store's queries take them."""
        def chosen(dropdown: W.Dropdown) -> str | None:
            return None if dropdown.value in (None, "all") else dropdown.value

        return {"status": chosen(self.status), "kind": chosen(self.kind), "text": self.search.value or None,
                "tags": chosen(self.tag)}

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
            if facets is None:
                self._whole = df
                facets = {"status": df["status"].dropna().unique().tolist(),
                          "kind": df["kind"].dropna().unique().tolist(),
                          "tags": {t for tags in df["tags"] for t in tags},
                          "makers": 2 if who_column(df) else 1}
            else:
                self._whole = None
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
            self._who = (who_column(self._whole) if self._whole is not None
                         else "made_by" if facets["makers"] > 1 else None)  # only when more than one person did
            self._fill()
            return bool(self.runs.options != before)
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
        if self._whole is not None:  # no feed: this view filters, sorts and pages the history it holds
            f = self.filters()
            df = sorted_runs(filter_runs(self._whole, status=f["status"], kind=f["kind"], text=f["text"],
                                         tags=f["tags"]), self.sort.value)
            self.total, self.all_runs = len(df), len(self._whole)
            self.offset = _clamped(self.offset, self.total)
            self._page = df.iloc[self.offset:self.offset + PAGE_SIZE]
        df = self._page
        if df is None:
            return
        who = self._who
        options = [(row_label(row, who), row["run_id"]) for row in df.to_dict("records")]
        head = header_label(self.sort.value, who)
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
        if self._whole is None and self._on_query_intent is not None:
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
        run = Run.from_row(row)
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
        box = W.VBox([top, rating, note], layout=W.Layout(width="380px"))
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
    """The runtime side of a HistoryBrowser: owns the store, fills the view, writes what it asks, watches."""

    def __init__(self, store: Any, media: MediaSource, *, live: bool = True, poll_s: float = POLL_S):
        self.store = store
        self._media = media
        self._stop = threading.Event()
        self.view = HistoryBrowser(on_select=self.select, on_save=self.save, on_close=self.close,
                                   on_query=self.query)
        self.view.feed = self
        self._signature = _store_signature(store)  # taken before reading: a write in between shows next time
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
        """The view asked for a page (filters, sort, offset, limit): read it in SQL and hand it over."""
        asked = dict(asked)
        sort, offset, limit = asked.pop("sort"), int(asked.pop("offset")), int(asked.pop("limit"))
        facets = self.store.facets()
        all_runs = self.store.count()
        total = self.store.count(**asked)
        offset = _clamped(offset, total, limit)
        self.view.offset = offset
        page = self.store.page(sort=sort, offset=offset, limit=limit, **asked)
        return self.view.show_history(page, total=total, all_runs=all_runs, facets=facets)

    def select(self, run_ids: tuple[str, ...]) -> None:
        """The view chose runs: hand it their rows and videos."""
        rows = [row for row in (self.store.get(i) for i in run_ids) if row is not None]
        self.view.show_runs([(row, self._media(Run.from_row(row))) for row in rows])

    def save(self, items: list[tuple[str, int | None, str | None]]) -> None:
        """Write each (run id, rating, note) the view sent, then show the history again."""
        for run_id, rating, note in items:
            self.store.update(run_id, rating=rating, note=note)
        n = len(items)
        self.view.say(f"saved {n} run{'s' if n != 1 else ''}", "ok")
        self._signature = _store_signature(self.store)
        self.refresh()

    def poll_once(self) -> bool:
        """Show the history again if it changed since the last look; True if the list of runs changed."""
        signature = _store_signature(self.store)
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


def _store_signature(store: Any) -> Any:
    """A cheap fingerprint of the history: the store's ``change_token()``, else its SQLite files' size and time."""
    # None when neither is known: then every look reloads the history.
    token = getattr(store, "change_token", None)
    if callable(token):
        return ("token", token())
    path = getattr(store, "path", None)
    if path is None or not Path(path).is_file():
        return None
    out: list[tuple[int, int] | None] = []
    for p in (Path(path), Path(f"{path}-wal")):
        try:
            st = os.stat(p)
            out.append((st.st_size, st.st_mtime_ns))
        except OSError:
            out.append(None)
    return tuple(out)
