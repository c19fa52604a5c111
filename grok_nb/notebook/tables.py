"""Run tables that read well in a notebook: dollars, seconds, stars, one-line prompts (pure formatting, no widgets).

``HistoryFrame`` and ``GridTable`` are plain pandas DataFrames; only their HTML display differs.
A status reads here as on a job card, a grid tile and in the history browser: word, colour and icon from looks.py.
"""

from __future__ import annotations

import html
import math
import re
from collections.abc import Callable, Iterable, Sequence
from datetime import datetime
from typing import Any

import pandas as pd  # tables are DataFrames: this module is loaded only by the notebook side

from ..history.store import RUN_COLUMNS
from . import looks
from .looks import TONE_CSS

#: Secondary text (parameters, stats): the theme's text colour, slightly lighter, still ≥ 4.5:1.
MUTED_CSS = "color-mix(in srgb, var(--jp-ui-font-color1, #212121) 82%, transparent)"
TEXT_CSS = "var(--jp-ui-font-color1, #212121)"
STARS = 5
#: Rows a history shows in a notebook, the newest first (the DataFrame keeps every row; paging is display).
PAGE_ROWS = 20
#: Width of the poster thumbnail at the head of each shown row (cut once per video, cached).
THUMB_WIDTH = 64


def usd(value: float | None) -> str:
    """Dollars with three decimals, or a dash."""
    return "—" if _missing(value) else f"${value:,.3f}"


def seconds(value: float | None) -> str:
    """A duration as 12.3 s or 4 min 05 s."""
    if _missing(value):
        return "—"
    assert value is not None
    if value < 60:
        return f"{value:.1f} s"
    return f"{int(value // 60)} min {int(value % 60):02d} s"


def length(value: float | None) -> str:
    """A video length: 4 s, 6.5 s."""
    return "—" if _missing(value) else f"{value:g} s"


def stars(rating: Any) -> str:
    """★★★☆☆ for 3; a dash when unrated."""
    if _missing(rating) or not int(rating):
        return "—"
    n = max(0, min(STARS, int(rating)))
    return "★" * n + "☆" * (STARS - n)


def when(value: Any) -> str:
    """A timestamp to the second, UTC as stored."""
    if _missing(value):
        return "—"
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    return str(value.strftime("%Y-%m-%d %H:%M:%S"))


def _missing(value: Any) -> bool:
    if value is None:
        return True
    if isinstance(value, float) and math.isnan(value):
        return True
    try:
        return False if isinstance(value, (list, tuple, dict)) else bool(pd.isna(value))
    except (TypeError, ValueError):
        return False


# -- cells ---------------------------------------------------------------------------------------

_NOWRAP = "white-space:nowrap"
_ELLIPSIS = ("display:inline-block;max-width:{w}ch;overflow:hidden;text-overflow:ellipsis;white-space:nowrap;"
             "vertical-align:bottom;text-align:left")


def clipped(text: Any, width: int = 40) -> str:
    """One line of text cut with an ellipsis by CSS; the full text is the tooltip."""
    if _missing(text) or text == "":
        return ""
    full = html.escape(str(text))
    return f'<span class="grok-clip" title="{full}" style="{_ELLIPSIS.format(w=width)}">{full}</span>'


def code(text: Any) -> str:
    """An id in full, on one line, monospace."""
    if _missing(text):
        return "—"
    return f'<code style="{_NOWRAP};font-size:inherit;background:none">{html.escape(str(text))}</code>'


_LONG_ID = re.compile(r"([0-9A-Za-z]{8})[0-9A-Za-z_-]{20,}")


def path_cell(path: Any) -> str:
    """A request path, monospace on one line, long ids in it cut to 8 characters (the whole path on hover)."""
    if _missing(path):
        return "—"
    full = str(path)
    short = _LONG_ID.sub(r"\1…", full)
    return (f'<code title="{html.escape(full)}" style="{_NOWRAP};font-size:inherit;background:none">'
            f"{html.escape(short)}</code>")


def status_cell(status: Any, title: str | None = None) -> str:
    """A status as its icon and word, in its tone's colour (the stored value on hover)."""
    if _missing(status):
        return "—"
    seen = looks.look(status)
    tip = html.escape(title or str(getattr(status, "value", status)))
    return (f'<span class="grok-status grok-tone-{seen.tone}" title="{tip}" '
            f'style="color:{TONE_CSS[seen.tone]};font-weight:600;{_NOWRAP}">'
            f"{seen.icon} {html.escape(seen.word)}</span>")


def _plain(value: Any) -> str:
    if _missing(value):
        return "—"
    if isinstance(value, (list, tuple)):
        return html.escape(", ".join(map(str, value)))
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return html.escape(f"{value:g}")
    return html.escape(str(value))


def _number_or_text(fn: Callable[[float], str]) -> Callable[[Any], str]:
    def fmt(value: Any) -> str:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return html.escape(fn(value))
        return _plain(value)
    return fmt


def formatter(column: str) -> Callable[[Any], str]:
    """How a known history/grid column is shown (HTML); unknown columns are shown as they are, escaped."""
    name = column.lower()
    if name in ("prompt", "note", "error", "error_message", "summary"):
        width = 40 if name == "prompt" else 48
        return lambda v: clipped(v, width)
    if name in ("request_id", "run_id", "parent_run_id"):
        return code
    if name == "status":
        return status_cell
    if name == "rating":
        return lambda v: html.escape(stars(v))
    if name in ("created_at", "submitted_at", "finished_at", "at"):
        return lambda v: html.escape(when(v))
    if name.endswith("_usd"):
        return _number_or_text(usd)
    if name in ("latency_s", "elapsed_s", "wall_time_s"):
        return _number_or_text(seconds)
    if name in ("duration", "duration_s", "video_duration"):
        return _number_or_text(length)
    if name in ("path", "local_path"):
        return lambda v: clipped(v, 24) if _missing(v) else (
            f'<span title="{html.escape(str(v))}" style="{_NOWRAP}">'
            f'{html.escape(str(v).replace(chr(92), "/").rsplit("/", 1)[-1])}</span>')
    if name == "tags":
        return _plain
    if name == "poster":
        return lambda v: "" if _missing(v) else str(v)  # already HTML (an <img> of a data URI)
    return _plain


#: Every run table: one line per row (no wrapping), left-aligned, the theme's text colour.
_TABLE_STYLES = [
    {"selector": "", "props": [("border-collapse", "collapse"), ("font-size", "12px"), ("color", TEXT_CSS)]},
    {"selector": "th", "props": [("text-align", "left"), ("white-space", "nowrap"), ("padding", "2px 8px"),
                                 ("border-bottom", "1px solid var(--jp-border-color1, #bdbdbd)")]},
    {"selector": "td", "props": [("white-space", "nowrap"), ("padding", "2px 8px"), ("text-align", "left"),
                                 ("border-bottom", "1px solid var(--jp-border-color2, #e0e0e0)")]},
]


def _any_value(series: pd.Series) -> bool:
    """Whether a column holds anything worth a column: a non-empty text or list, a non-zero number (vectorized)."""
    values = series.dropna()
    if values.empty:
        return False
    if pd.api.types.is_numeric_dtype(values) or pd.api.types.is_bool_dtype(values):
        return bool(values.astype("float64").ne(0).any())
    return bool(values.str.len().fillna(0).gt(0).any())


def table_html(df: Any, columns: Sequence[str] | None = None, *, caption: str | None = None,
               css_class: str = "grok-table") -> str:
    """``df`` (those ``columns``, in that order) as a styled HTML table: known columns formatted, none dropped."""
    cols = list(df.columns if columns is None else columns)
    view = pd.DataFrame(df[cols]).reset_index(drop=True)
    view.columns = [str(c) for c in view.columns]
    styler = view.style.format({c: formatter(c) for c in view.columns}, escape=None)
    styler = styler.hide(axis="index").set_table_attributes(f'class="{css_class}"')
    styler = styler.set_table_styles(_TABLE_STYLES)
    if caption:
        styler = styler.set_caption(html.escape(caption))
    return str(styler.to_html())


class _RunTable(pd.DataFrame):  # type: ignore[misc]  # pandas has no type stubs here
    """A DataFrame whose notebook display is compact while it has all its usual columns, else exactly its own."""

    #: The columns a full table of this kind has.
    _SCHEMA: tuple[str, ...] = ()

    def _compact_columns(self) -> list[str]:
        return list(self.columns)

    def _shown_columns(self) -> list[str]:
        if set(self._SCHEMA) <= set(self.columns):
            compact = self._compact_columns()
            extra = [c for c in self.columns if c not in self._SCHEMA and c not in compact]
            return compact + extra  # columns the user added are never hidden
        return list(self.columns)  # the user picked columns: show exactly those

    def _repr_html_(self) -> str:
        return _scroll(table_html(self, self._shown_columns()))


def _scroll(table: str) -> str:
    """A wide table scrolls sideways inside its output instead of being cut at the notebook's edge."""
    return f'<div class="grok-table-wrap" style="overflow-x:auto;max-width:100%">{table}</div>'


class HistoryFrame(_RunTable):
    """The history as a DataFrame, shown with dollars, seconds, stars and one-line prompts."""

    _COMPACT = ("created_at", "kind", "status", "prompt", "resolution", "video_duration", "cost_actual_usd",
                "latency_s", "tags", "rating", "note", "request_id")
    #: Columns naming who made a run, in team histories (shown once more than one person made the runs).
    WHO = ("made_by", "user")

    @property
    def _constructor(self) -> type:
        return HistoryFrame

    @property
    def _SCHEMA(self) -> tuple[str, ...]:  # type: ignore[override]
        return RUN_COLUMNS

    def _compact_columns(self) -> list[str]:
        cols = [c for c in self._COMPACT if c in self.columns]
        who = next((c for c in self.WHO if c in self.columns and self[c].dropna().nunique() > 1), None)
        if who:
            cols.insert(cols.index("status"), who)
        for optional in ("note", "tags", "rating"):  # an empty column is only noise
            if optional in cols and not _any_value(self[optional]):
                cols.remove(optional)
        return cols

    def _page(self) -> tuple[pd.DataFrame, str | None]:
        """The rows shown: the newest PAGE_ROWS (when the frame runs oldest first, as the history does), else
        the first ones; and a line saying how many there are when not all are shown."""
        newest_first = "created_at" in self.columns and self["created_at"].is_monotonic_increasing
        page = pd.DataFrame(self.iloc[-PAGE_ROWS:].iloc[::-1] if newest_first else self.iloc[:PAGE_ROWS])
        if len(self) <= PAGE_ROWS:
            return page, None
        which = "newest" if newest_first else "first"
        return page, (f"The {which} {len(page)} of {len(self):,} runs, newest first. The DataFrame holds every row: "
                      "df.iloc[a:b] or df.query(...) shows others, studio.browse() pages through them.")

    def _repr_html_(self) -> str:
        cols = self._shown_columns()
        view, note = self._page()  # everything below works on the shown rows only
        if "cost_actual_usd" in cols and "cost_estimated_usd" not in cols and "cost_estimated_usd" in view.columns:
            # No actual cost (yet): the estimate, marked as one.
            view["cost_actual_usd"] = [usd(e) + " (est.)" if _missing(a) and not _missing(e) else a
                                       for a, e in zip(view["cost_actual_usd"], view["cost_estimated_usd"],
                                                       strict=True)]
        # Posters come from whoever made the frame (Studio.history(): the controller cuts them from the cached
        # MP4s); this view only places them. pandas carries attrs through query(), slicing and sorting.
        poster = self.attrs.get("poster")
        if callable(poster) and set(self._SCHEMA) <= set(self.columns) and "poster" not in self.columns:
            done = view["status"].eq("done").to_numpy()
            view.insert(0, "poster", [poster(path, prompt) if ok else None for path, prompt, ok
                                      in zip(view["local_path"], view["prompt"], done, strict=True)])
            cols = ["poster", *cols]
        return _scroll(table_html(view, cols, caption=note))


class GridTable(_RunTable):
    """A comparison grid's summary: one row per cell, shown without repeats or empty columns."""

    _SCHEMA = ("status", "estimate_usd", "cost_usd", "cost_basis", "latency_s", "duration_s", "error",
               "request_id", "path")

    @property
    def _constructor(self) -> type:
        return GridTable

    def _compact_columns(self) -> list[str]:
        labels = [c for c in self.columns if c not in self._SCHEMA]
        cols = labels + ["status", "cost_usd", "latency_s"]
        asked = pd.to_numeric(self["duration"], errors="coerce") if "duration" in self.columns else None
        if asked is None or not _same(asked, self["duration_s"]):
            cols.append("duration_s")  # the video's length is news only when it differs from what was asked
        if self["error"].notna().any():
            cols.append("error")
        return cols + ["request_id"]

    def _repr_html_(self) -> str:
        cols = self._shown_columns()
        if "cost_usd" in cols and "cost_basis" in self.columns and "cost_basis" not in cols:
            view = pd.DataFrame(self).copy()
            estimated = view["cost_basis"].eq("estimate") & view["cost_usd"].notna()
            if estimated.any():  # an estimate is marked as one, not passed off as a price
                view["cost_usd"] = [f"{usd(c)} (est.)" if e else c
                                    for c, e in zip(view["cost_usd"], estimated, strict=True)]
            return _scroll(table_html(view, cols))
        return _scroll(table_html(self, cols))


def _same(a: Iterable[Any], b: Iterable[Any]) -> bool:
    for x, y in zip(a, b, strict=False):
        if _missing(x) or _missing(y):
            continue
        if abs(float(x) - float(y)) > 0.05:
            return False
    return True


class ExchangeFrame(pd.DataFrame):  # type: ignore[misc]  # pandas has no type stubs here
    """A run's HTTP exchanges as a DataFrame, shown one line each: time (UTC, to the ms), method, path,
    HTTP status, how long it took, the answer in short."""

    @property
    def _constructor(self) -> type:
        return ExchangeFrame

    def _repr_html_(self) -> str:
        view = pd.DataFrame(self).copy()
        names = {"at": "time (UTC)", "status": "HTTP", "elapsed_ms": "took", "summary": "answer"}
        if "at" in view.columns:
            view["at"] = [clock_ms(v) for v in view["at"]]
        if "elapsed_ms" in view.columns:
            view["elapsed_ms"] = ["—" if _missing(v) else f"{float(v):,.0f} ms" for v in view["elapsed_ms"]]
        if "status" in view.columns:  # an HTTP code, not a job's state: no state colours here
            view["status"] = ["—" if _missing(v) else str(int(v)) for v in view["status"]]
        if "path" in view.columns:
            view["path"] = [path_cell(v) for v in view["path"]]
        if "summary" in view.columns:
            view["summary"] = [clipped(v, 60) for v in view["summary"]]
        for column in view.columns:
            if column not in names and column != "path":
                view[column] = [_plain(v) for v in view[column]]
        view = view.rename(columns=names)
        styler = view.style.format(escape=None).hide(axis="index").set_table_attributes('class="grok-table"')
        styler = styler.set_table_styles(_TABLE_STYLES)
        return _scroll(str(styler.to_html()))


def clock_ms(value: Any) -> str:
    """A timestamp's time of day to the millisecond (12:04:05.123), as recorded (UTC)."""
    if _missing(value):
        return "—"
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    return str(value.strftime("%H:%M:%S.%f"))[:12]
