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

from ..api.pricing import usd_text
from ..history.store import JUDGED_COLUMNS, RUN_COLUMNS
from . import looks, metrics
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
    """Dollars with two decimals ($2.84); below a cent, two significant digits ($0.0042); a dash when missing."""
    if _missing(value):
        return "—"
    assert value is not None
    return usd_text(float(value))


#: Joins the words of one figure ("$2.84 left"): a narrow view wraps between figures, never inside one.
NBSP = "\u00a0"


def ledger(snapshot: Any) -> str | None:
    """The budget line every view shows, from one ``BudgetSnapshot``: 'budget $5.00: $2.16 spent + $0.50 reserved
    + $2.34 left'. The figures are in cents and add up (what is left is the limit less the two shown before it);
    None without a limit. Once vision-judge calls have cost something, what was spent is split after it:
    '(spent: $2.15 video + $0.0084 judge)'."""
    if snapshot is None or snapshot.limit_usd is None:
        return None
    limit, spent, held = (round(v, 2) + 0.0 for v in (snapshot.limit_usd, snapshot.spent_usd, snapshot.reserved_usd))
    left = round(limit - spent - held, 2) + 0.0  # + 0.0: never "$-0.00"
    head = f"budget{NBSP}{usd(limit)}: {usd(spent)}{NBSP}spent {NBSP.join(('+', usd(held), 'reserved'))}"
    line = f"{head}, {usd(-left)}{NBSP}over" if left < 0 else f"{head} {NBSP.join(('+', usd(left), 'left'))}"
    return line + (f" ({spent_by_kind(snapshot)})" if snapshot.judge_usd > 0 else "")


def spent_by_kind(snapshot: Any) -> str:
    """What was spent, videos and judge calls apart: 'spent: $2.15 video + $0.0084 judge' (a judge call costs a
    fraction of a cent, so its figure keeps two significant digits rather than rounding to $0.00)."""
    judge = float(snapshot.judge_usd)
    video = max(0.0, float(snapshot.spent_usd) - judge)
    return f"spent:{NBSP}{usd(video)}{NBSP}video + {usd(judge)}{NBSP}judge"


def one_line(text: Any, width: int = 40) -> str:
    """A text on one line, at most ``width`` characters, cut after a whole word with an ellipsis."""
    flat = " ".join(str(text).split())
    if len(flat) <= width:
        return flat
    cut = flat[: width - 1]
    space = cut.rfind(" ")
    if space >= width * 0.6:  # a last word that would be cut goes whole (unless it is most of the line)
        cut = cut[:space]
    return cut.rstrip(" ,;:.·-") + "…"


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
# At most {w} characters, and at most a third of a narrow window: the figures beside it stay in view.
_ELLIPSIS = ("display:inline-block;max-width:min({w}ch, 34vw);overflow:hidden;text-overflow:ellipsis;"
             "white-space:nowrap;vertical-align:bottom;text-align:left")


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


_COUNTED = re.compile(r"(\d+) (.+)")


def status_cell(status: Any, title: str | None = None) -> str:
    """A status as its icon and word, in its tone's colour (the stored value on hover); a cell's takes that ended
    apart ("2 done · 1 failed") as each count with its own icon and colour."""
    if _missing(status):
        return "—"
    text = str(getattr(status, "value", status))
    parts = [_COUNTED.fullmatch(p) for p in text.split(" · ")]
    if len(parts) > 1 and all(parts):
        return " ".join(_status_span(m.group(2), title or text, f"{m.group(1)} ") for m in parts if m)
    return _status_span(status, title or text)


def _status_span(status: Any, tip: str, count: str = "") -> str:
    seen = looks.look(status)
    return (f'<span class="grok-status grok-tone-{seen.tone}" title="{html.escape(tip)}" '
            f'style="color:{TONE_CSS[seen.tone]};font-weight:600;{_NOWRAP}">'
            f"{seen.icon} {html.escape(count + seen.word)}</span>")


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
    if name.endswith("_sd"):  # a spread reads as the figure it is the spread of
        return formatter(column[:-3])
    if name in metrics.METRICS:  # a measure (or another registered metric): about three significant digits
        return _number_or_text(lambda v: metrics.text(name, float(v)))
    if name in ("prompt", "note", "error", "error_message", "summary", "reason", "judge_reason"):
        width = 40 if name == "prompt" else 48
        return lambda v: clipped(v, width)
    if name in ("request_id", "run_id", "parent_run_id"):
        return code
    if name == "status":
        return status_cell
    if name == "rating":
        return lambda v: html.escape(stars(v))
    if name in ("score", "judge_score", "score_a", "score_b"):
        return lambda v: "—" if _missing(v) else _number_or_text(lambda x: f"{x:.2f}")(v)
    if name in ("passed", "judge_passed", "cached"):
        return lambda v: "—" if _missing(v) else "yes" if bool(v) else "no"
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


def _sticky(columns: Sequence[str]) -> list[dict[str, Any]]:
    """A table that scrolls sideways keeps its prompt column in view (when it leads, after the poster at most)."""
    at = next((i for i, c in enumerate(list(columns)[:2]) if c == "prompt"), None)
    if at is None:
        return []
    # A sticky cell needs the row's own (opaque) background, or the columns scrolling under it would show through.
    props = [("position", "sticky"), ("left", "0"), ("z-index", "1"), ("background", "inherit")]
    return [{"selector": f"td:nth-child({at + 1})", "props": props},
            {"selector": f"th:nth-child({at + 1})", "props": [*props, ("background", "var(--jp-layout-color0, #fff)")]}]


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
    styler = styler.set_table_styles(_TABLE_STYLES + _sticky(view.columns))
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


def _scroll(table: str, caption: str | None = None) -> str:
    """A wide table scrolls sideways inside its output instead of being cut at the notebook's edge; its caption
    stays above it, as wide as the output (inside the scroller, a caption centred on a wide table is off screen)."""
    head = (f'<div class="grok-table-caption" style="font-size:12px;margin:2px 0 4px;text-align:left">'
            f"{html.escape(caption)}</div>" if caption else "")
    return f'{head}<div class="grok-table-wrap" style="overflow-x:auto;max-width:100%">{table}</div>'


class HistoryFrame(_RunTable):
    """The history as a DataFrame, shown with dollars, seconds, stars and one-line prompts."""

    #: The prompt, then the figures people compare, then the rest: what a narrow notebook shows before it scrolls.
    _COMPACT = ("prompt", "status", "cost_actual_usd", "latency_s", "resolution", "video_duration", "rating",
                "created_at", "kind", "tags", "note", "request_id")
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
        if "take" in self.columns and pd.to_numeric(self["take"], errors="coerce").gt(1).any():
            cols.insert(cols.index("status"), "take")  # runs made as takes of a grid's cells
        # The measures the rows are sorted or filtered by, then the ones a grid shows (the judge's score too), once
        # any run has them.
        wanted = list(self.attrs.get("measures") or []) + list(metrics.DEFAULT_SHOWN)
        measured = [c for c in dict.fromkeys(wanted) if c in self.columns and self[c].notna().any()]
        at = cols.index("latency_s") + 1 if "latency_s" in cols else len(cols)
        cols[at:at] = measured
        return cols

    def _shown_columns(self) -> list[str]:
        if set(self._SCHEMA) <= set(self.columns):  # the judge's columns are the history's own, not the user's
            compact = self._compact_columns()
            return compact + [c for c in self.columns if c not in self._SCHEMA and c not in compact
                              and c not in JUDGED_COLUMNS]
        return list(self.columns)

    def _order(self) -> str:
        """How the rows run: 'newest first' (as the history comes), 'oldest first', or 'as sorted' (by the user)."""
        if "created_at" in self.columns:
            made = self["created_at"]
            if made.is_monotonic_decreasing:
                return "newest first"
            return "oldest first" if made.is_monotonic_increasing else "as sorted"
        # Columns picked from a history keep its rows and their index: 0 is the newest run.
        if self.attrs.get("order") == "newest first" and self.index.is_monotonic_increasing:
            return "newest first"
        return "as sorted"

    def _page(self) -> tuple[pd.DataFrame, str]:
        """The rows shown (the newest PAGE_ROWS, else the first ones) and a caption saying which they are."""
        order = self._order()
        flipped = order == "oldest first"
        page = pd.DataFrame(self.iloc[-PAGE_ROWS:].iloc[::-1] if flipped else self.iloc[:PAGE_ROWS])
        runs = f"{len(self):,} run{'s' if len(self) != 1 else ''}"
        shown = "newest first" if flipped or order == "newest first" else "as sorted"
        if len(self) <= PAGE_ROWS:
            return page, f"{runs}, {shown}."
        which = "newest" if shown == "newest first" else "first"
        return page, (f"The {which} {len(page)} of {runs}, {shown}. The DataFrame holds every row: "
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
        return _scroll(table_html(view, cols), note)


class GridTable(_RunTable):
    """A comparison grid's table (one row per cell, or per take): shown without repeats or empty columns, each
    mean with its spread beside it ("0.041 ± 0.003", the ``_sd`` column) when the cell's takes differ."""

    _SCHEMA = ("status", "estimate_usd", "cost_usd", "latency_s")
    #: Columns of a grid's tables that are not parameters.
    _OWN = ("cell", "take", "takes", "done", "status", "estimate_usd", "cost_usd", "cost_basis", "latency_s",
            "duration_s", "error", "request_id", "path")

    @property
    def _constructor(self) -> type:
        return GridTable

    def _known(self, column: str) -> bool:
        base = column.removesuffix("_sd")
        return column in self._OWN or base in self._OWN or base in metrics.METRICS or base.startswith("m_")

    def _compact_columns(self) -> list[str]:
        labels = [c for c in self.columns if not self._known(c)]
        cols = labels + [c for c in ("take",) if c in self.columns]
        if "takes" in self.columns and pd.to_numeric(self["takes"], errors="coerce").gt(1).any():
            cols += ["takes", "done"] if "done" in self.columns else ["takes"]
        cols += ["status", "cost_usd", "latency_s"]
        asked = pd.to_numeric(self["duration"], errors="coerce") if "duration" in self.columns else None
        if "duration_s" in self.columns and (asked is None or not _same(asked, self["duration_s"])):
            cols.append("duration_s")  # the video's length is news only when it differs from what was asked
        cols += [n for n, m in metrics.METRICS.items() if m.quality and n in self.columns and self[n].notna().any()]
        for optional in ("error", "request_id"):
            if optional in self.columns and self[optional].notna().any():
                cols.append(optional)
        return cols

    def _shown_columns(self) -> list[str]:
        if set(self._SCHEMA) <= set(self.columns):
            compact = self._compact_columns()
            spreads = {f"{c}_sd" for c in compact}
            extra = [c for c in self.columns if c not in compact and not self._known(c) and c not in spreads]
            return compact + extra  # columns the user added are never hidden
        return list(self.columns)  # the user picked columns: show exactly those

    def _repr_html_(self) -> str:
        cols = self._shown_columns()
        view = pd.DataFrame(self).copy()
        if "cost_usd" in cols and "cost_basis" in view.columns and "cost_basis" not in cols:
            estimated = view["cost_basis"].eq("estimate") & view["cost_usd"].notna()
            if estimated.any():  # an estimate is marked as one, not passed off as a price
                view["cost_usd"] = [f"{usd(c)} (est.)" if e else c
                                    for c, e in zip(view["cost_usd"], estimated, strict=True)]
        for col in cols:
            spread = f"{col}_sd"
            if spread in view.columns and spread not in cols:
                view[col] = [with_spread(col, m, sd) for m, sd in zip(view[col], view[spread], strict=True)]
        return _scroll(table_html(view, cols))


def with_spread(column: str, mean: Any, sd: Any) -> Any:
    """A mean with its spread as one cell ("0.041 ± 0.003"); the mean alone when the takes agree or there is one."""
    if isinstance(mean, str) or _missing(mean) or _missing(sd) or float(sd) == 0:
        return mean
    if column in metrics.METRICS:
        return metrics.with_spread(column, float(mean), float(sd))
    if column in ("latency_s", "duration_s", "elapsed_s"):  # seconds: the spread to two significant digits
        return metrics.with_spread("", float(mean), float(sd)).replace(" ± ", " s ± ") + " s"
    fmt = formatter(column)
    return f"{html.unescape(fmt(mean))} ± {html.unescape(fmt(sd))}"


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


# -- the judge and the arena ---------------------------------------------------------------------------

#: How many failed judgements a progress line names (the rest are counted).
SHOWN_FAILURES = 4


def judge_progress_html(done: int, total: int, failures: Sequence[tuple[str, str]], judge_usd: float, *,
                        money: str | None = None, finished: bool = False, note: str = "") -> str:
    """A judge run's progress in its cell: a bar, 'n of N judged', the failed ones with their reason, and what the
    judge calls cost so far (apart from videos; ``money``: the client's budget line, which splits the two too)."""
    share = 100.0 * done / total if total else 100.0
    failed = len(failures)
    tone = "bad" if finished and failed == total and total else "ok" if finished else "busy"
    fill = looks.TONE_HEX[tone]
    head = f"{done} of {total} judged" + (f" · {failed} failed" if failed else "")
    parts = [head, f"judge calls {usd(judge_usd)}{NBSP}so far" if not finished else
             f"judge calls {usd(judge_usd)}{NBSP}(videos counted apart)"]
    if money:
        parts.append(money)
    if note:
        parts.append(note)
    items = "".join(f'<li><span style="{_NOWRAP}">{html.escape(one_line(prompt, 40))}</span>: '
                    f"{html.escape(reason)}</li>" for prompt, reason in failures[:SHOWN_FAILURES])
    more = failed - SHOWN_FAILURES
    if more > 0:
        items += f"<li>and {more} more (the table below lists every one)</li>"
    fails = (f'<ul class="grok-judge-failures" style="margin:2px 0 0 18px;padding:0">{items}</ul>'
             if items else "")
    line = " · ".join(f'<span style="white-space:nowrap">{html.escape(p)}</span>' if len(p) <= 32 else html.escape(p)
                      for p in parts)
    return (f'<div class="grok-judge-progress tex2jax_ignore mathjax_ignore" style="font-size:12px;'
            f'color:{TEXT_CSS};max-width:100%">'
            f'<div role="progressbar" aria-valuemin="0" aria-valuemax="{total}" aria-valuenow="{done}" '
            f'style="width:min(320px,100%);height:8px;border-radius:4px;border:1px solid {looks.TONE_HEX["idle"]};'
            f'overflow:hidden;margin:2px 0 4px"><div style="width:{share:.1f}%;height:100%;background:{fill}">'
            f"</div></div><div>{line}</div>{fails}</div>")


class JudgeFrame(pd.DataFrame):  # type: ignore[misc]  # pandas has no type stubs here
    """What ``studio.judge`` found, one row per run: ``run_id``, ``prompt``, ``score``, ``passed``, ``reason`` (why it
    failed, for a failed judgement), ``cost_usd`` (this call; 0 when the verdict came from the history) and
    ``cached``; shown with one-line prompts and reasons."""

    #: Shown prompt first (what people read), the run id last.
    _SHOWN = ("prompt", "score", "passed", "reason", "cost_usd", "cached", "run_id")

    @property
    def _constructor(self) -> type:
        return JudgeFrame

    def _repr_html_(self) -> str:
        full = set(self._SHOWN) <= set(self.columns)
        cols = [*self._SHOWN, *(c for c in self.columns if c not in self._SHOWN)] if full else list(self.columns)
        return _scroll(table_html(self, cols), self.attrs.get("caption"))


#: A ranking's interval end that no vote bounds.
OPEN = "open"


def _strength(value: Any) -> str:
    if _missing(value):
        return "—"
    return OPEN if math.isinf(float(value)) else f"{round(float(value), 2) + 0.0:+.2f}"  # + 0.0: never "-0.00"


def interval(lo: Any, hi: Any) -> str:
    """A strength's interval as '[-0.41, +1.20]'; an end no vote bounds (±inf) reads 'open'; a dash without one."""
    if _missing(lo) and _missing(hi):
        return "—"
    return f"[{_strength(lo)}, {_strength(hi)}]"


class RankingFrame(pd.DataFrame):  # type: ignore[misc]  # pandas has no type stubs here
    """A ranking (``option``, ``strength``, ``lo``, ``hi``, ``wins``, ``losses``, ``ties``, ``votes``; ``voter`` when
    each voter is ranked apart), strongest first, shown with each strength's interval: an end that no vote bounds
    (``hi = inf``: no other option ever beat or tied it; ``lo = -inf``: it never beat or tied another) reads
    'open'. The numbers stay numbers."""

    @property
    def _constructor(self) -> type:
        return RankingFrame

    def _repr_html_(self) -> str:
        if self.empty:
            return ('<div class="grok-ranking-empty" style="font-size:12px">No votes to rank yet: vote in '
                    "<code>studio.arena(...)</code> (← → ↓), or with <code>client.vote(a, b, winner)</code>; "
                    "<code>arena.auto(judge=...)</code> lets the judge vote.</div>")
        view = pd.DataFrame(self).reset_index(drop=True)
        level = self.attrs.get("level", 0.95)
        shown = pd.DataFrame({"#": range(1, len(view) + 1)})
        if "voter" in view.columns:
            shown["#"] = view.groupby("voter", sort=False).cumcount() + 1
            shown.insert(0, "voter", [html.escape(str(v)) for v in view["voter"]])
        shown["option"] = [clipped(v, 48) for v in view["option"]]
        shown["strength"] = [_strength(v) for v in view["strength"]]
        shown[f"{level:.0%} interval"] = [interval(lo, hi) for lo, hi in zip(view["lo"], view["hi"], strict=True)]
        for column in ("wins", "losses", "ties", "votes"):
            shown[column] = [_plain(int(v)) if not _missing(v) else "—" for v in view[column]]
        return _scroll(_styled(shown).replace('class="grok-table"', 'class="grok-table grok-ranking"', 1),
                       self.attrs.get("caption") or ranking_caption(self))


def ranking_caption(frame: Any) -> str:
    """What a ranking is: by what, from how many votes, how sure, and what 'open' means."""
    by = frame.attrs.get("by")
    votes = frame.attrs.get("votes")
    level = frame.attrs.get("level", 0.95)
    refits = frame.attrs.get("bootstrap")
    bits = [f"by {by}" if by else "", f"{votes} vote{'s' if votes != 1 else ''}" if votes is not None else "",
            "strongest first"]
    sure = (f"Strengths on a log-odds scale (a difference of 1: about 73 % to win), {level:.0%} intervals from "
            f"{refits} bootstrap refits" if refits else "Strengths on a log-odds scale")
    open_note = ("; open: no vote bounds that end (nothing ever beat it, or it never beat anything)"
                 if any(math.isinf(float(v)) for v in [*frame["lo"], *frame["hi"]] if not _missing(v)) else "")
    return f"{' · '.join(b for b in bits if b)}. {sure}{open_note}."


#: How a vote's winner reads in a table: ``a`` was shown on the left.
WINNER_WORDS = {"a": "left", "b": "right", "tie": "tie"}


class VoteFrame(_RunTable):
    """Votes (``a``, ``b``, ``winner``, ``voter``, ...; ``option_a``/``option_b`` when known), shown by what was
    compared: the left and right options, who won, the judge's scores when it voted, who voted and when (the run
    ids stay in the frame; pick them with ``[[...]]`` to see them)."""

    _SCHEMA = ("a", "b", "winner")
    _NAMES = {"option_a": "left (a)", "option_b": "right (b)", "created_at": "when"}

    @property
    def _constructor(self) -> type:
        return VoteFrame

    def _shown_columns(self) -> list[str]:
        if not set(self._SCHEMA) <= set(self.columns):
            return list(self.columns)  # the user picked columns: show exactly those
        sides = ["option_a", "option_b"] if "option_a" in self.columns else ["a", "b"]
        picked = [c for c in ("winner", *sides, "score_a", "score_b", "error", "voter", "created_at")
                  if c in self.columns]
        return [c for c in picked if c not in ("error", "score_a", "score_b") or _any_value(self[c])]

    def _repr_html_(self) -> str:
        cols = self._shown_columns()
        view = pd.DataFrame(self).reset_index(drop=True)[cols].copy()
        if "winner" in view.columns:
            view["winner"] = [WINNER_WORDS.get(w, "no vote") if not _missing(w) else "no vote" for w in view["winner"]]
        for column in view.columns:  # each cell formatted by its own column's rule, then the headers renamed
            fmt: Callable[[Any], str] = (lambda v: clipped(v, 36)) if column in ("option_a", "option_b") \
                else formatter(column)
            view[column] = [fmt(v) for v in view[column]]
        return _scroll(_styled(view.rename(columns=self._NAMES)), self.attrs.get("caption"))


def _styled(view: pd.DataFrame) -> str:
    """A frame of cells already formatted as HTML, as a run table."""
    styler = view.style.format(escape=None).hide(axis="index").set_table_attributes('class="grok-table"')
    return str(styler.set_table_styles(_TABLE_STYLES).to_html())
