"""View logic without a kernel or a browser: tables, the colour language of outcomes, the browser's rows,
the timeline of jobs, and plots that follow the theme."""

from __future__ import annotations

import contextlib
import datetime as dt
import io
import re
from pathlib import Path

import pandas as pd
import pytest

import grok_nb
from grok_nb.api.pricing import CostEstimate
from grok_nb.history.rows import row_of, run_of
from grok_nb.history.store import RunStore
from grok_nb.jobs.results import Run
from grok_nb.notebook import browser as B
from grok_nb.notebook import gridstate, looks, present, tables, widgets
from grok_nb.notebook.compare import Grid
from grok_nb.notebook.controller import Controller, store_signature
from grok_nb.notebook.gridview import VideoGrid
from grok_nb.notebook.tables import GridTable, HistoryFrame
from grok_nb.notebook.timeline import build_timeline, classify

NOW = dt.datetime(2026, 11, 21, 8, 23, 0, tzinfo=dt.timezone.utc)
LONG = "A paper boat drifting down a rain-soaked street at night, neon signs reflected in every puddle, slow dolly"


def _run(**kw) -> Run:
    base = dict(run_id="r", kind="generate", model="grok-imagine-video", prompt="a fox",
                params={"duration": 4, "resolution": "480p", "aspect_ratio": "16:9"},
                estimate=CostEstimate(0.2), request_id="req-1", status="pending", submitted_at=NOW)
    base.update(kw)
    return Run(**base)


# -- tables ----------------------------------------------------------------------------------------

def _history(tmp_path, n=3, **extra) -> pd.DataFrame:
    store = RunStore(tmp_path / "h.sqlite")
    for i in range(n):
        store.insert(run_id=f"run{i}", request_id=f"0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f{i}", backend="simulator",
                     kind="generate", status="done" if i else "failed", prompt=LONG if i == 1 else f"prompt {i}",
                     resolution="720p", duration=4, video_duration=4.04, latency_s=12.25 + i,
                     cost_estimated_usd=0.1, cost_actual_usd=0.1 if i else None, tags=["exp"],
                     rating=5 if i == 2 else None, created_at=(NOW + dt.timedelta(seconds=i)).isoformat(),
                     error_message=None if i else "video job failed (internal_error): boom; try again later")
    return store.dataframe()


def test_history_frame_formats_known_columns_and_keeps_ids_and_prompts_whole(tmp_path):
    df = HistoryFrame(_history(tmp_path))
    shown = df._repr_html_()
    assert "$0.10" in shown and "12.2 s" in shown and "4.04 s" in shown and "★★★★★" in shown
    assert "$0.100" not in shown and "3 runs, newest first." in shown  # a caption says what is shown
    assert "2026-11-21 08:23:01" in shown and "None" not in shown and "nan" not in shown
    assert f'title="{LONG}"' in shown and "text-overflow:ellipsis" in shown  # one line, whole on hover
    assert "0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f1" in shown  # a request id is never cut
    assert ">local_path<" not in shown and ">base_url<" not in shown  # the compact view of the whole history


def test_the_history_table_places_posters_it_is_given_and_reads_no_file_itself(tmp_path):
    """The view renders; the controller (Studio.history()) hands it the function that cuts posters from MP4s."""
    import ast

    imported = {n.module for n in ast.walk(ast.parse(Path(tables.__file__).read_text())) if isinstance(n, ast.ImportFrom)}
    assert "posters" not in imported and "controller" not in imported
    df = HistoryFrame(_history(tmp_path))
    assert ">poster<" not in df._repr_html_()  # no provider: no poster column, nothing read
    asked = []
    df.attrs["poster"] = lambda path, prompt: asked.append(prompt) or f'<img alt="{prompt}">'
    shown = df.query("status == 'done'")._repr_html_()  # attrs survive a query, as the user filters
    assert ">poster<" in shown and shown.count("<img") == 2 and sorted(asked) == sorted(["prompt 2", LONG])


def test_history_frame_shows_exactly_the_columns_the_user_picked(tmp_path):
    df = HistoryFrame(_history(tmp_path))
    picked = df[["prompt", "rating", "base_url"]]
    assert isinstance(picked, HistoryFrame)
    shown = picked._repr_html_()
    assert [c for c in ("prompt", "rating", "base_url", "status", "kind") if f">{c}<" in shown] == \
        ["prompt", "rating", "base_url"]
    df["judge"] = ["a", "b", "c"]  # a column the user added to the whole frame is shown too
    assert ">judge<" in df._repr_html_()


def test_picked_columns_keep_the_newest_runs_first_and_the_caption_says_what_is_shown(tmp_path):
    store = RunStore(tmp_path / "h.sqlite")
    for i in range(32):  # the newest three failed: what a failure-modes cell wants to show
        store.insert(run_id=f"r{i}", backend="simulator", kind="generate", status="failed" if i >= 29 else "done",
                     prompt=f"p{i}", created_at=(NOW + dt.timedelta(seconds=i)).isoformat())
    frame = HistoryFrame(store.dataframe())
    frame.attrs["order"] = "newest first"  # as Studio.history() marks it
    picked = frame[["kind", "status"]]
    shown = picked._repr_html_()
    assert "The newest 20 of 32 runs, newest first." in shown
    rows = re.findall(r'title="(done|failed)"', shown)
    assert rows[:3] == ["failed"] * 3 and len(rows) == 20  # the newest rows, not the oldest
    assert "newest first" in frame[frame["status"] == "failed"][["status"]]._repr_html_()
    # Sorted by the user: shown in that order, and the caption says so.
    assert "20 of 32 runs, as sorted." in frame.sort_values("prompt")[["prompt", "status"]]._repr_html_()
    # An oldest-first frame (made elsewhere) is still shown newest first.
    oldest = HistoryFrame(store.dataframe().iloc[::-1].reset_index(drop=True))
    assert "newest first" in oldest._repr_html_() and re.findall(r'title="(done|failed)"', oldest._repr_html_())[0] == "failed"


def test_history_frame_shows_who_made_a_run_when_the_history_says(tmp_path):
    df = _history(tmp_path)
    assert ">made_by<" not in HistoryFrame(df)._repr_html_()
    df["made_by"] = ["ana", "ben", None]
    shown = HistoryFrame(df)._repr_html_()
    assert ">made_by<" in shown and ">ana<" in shown


def test_grid_table_is_compact_and_marks_estimates():
    df = GridTable(pd.DataFrame({
        "prompt": ["fox", "boat"], "duration": ["2", "4"], "status": ["done", "failed"],
        "estimate_usd": [0.1, 0.2], "cost_usd": [0.1, 0.2], "cost_basis": ["actual", "estimate"],
        "latency_s": [3.25, None], "duration_s": [2.0, None], "error": [None, "video job failed (x): y"],
        "request_id": ["req-a", "req-b"], "path": ["/tmp/a.mp4", None]}))
    shown = df._repr_html_()
    heads = [c for c in df.columns if f">{c}<" in shown]
    assert heads == ["prompt", "duration", "status", "cost_usd", "latency_s", "error", "request_id"]
    assert "$0.10" in shown and "$0.20 (est.)" in shown and "3.2 s" in shown and "None" not in shown
    assert df.drop(columns=["error"])._repr_html_().count(">") > 0  # still a DataFrame underneath
    assert isinstance(df[df["status"] == "done"], GridTable)


def test_formatters():
    assert tables.stars(3) == "★★★☆☆" and tables.stars(None) == "—" and tables.stars(0) == "—"
    assert tables.usd(0.05) == "$0.05" and tables.seconds(125) == "2 min 05 s" and tables.length(4.0) == "4 s"
    assert tables.one_line("A red fox trotting through fresh snow at dawn", 30) == "A red fox trotting through…"
    assert tables.one_line("short", 30) == "short" and tables.one_line("a\nb  c", 30) == "a b c"
    assert tables.one_line("Supercalifragilisticexpialidocious fox", 20) == "Supercalifragilisti…"  # a long word is cut
    assert looks.tone("download_failed") == "warn" and looks.tone("moderated") == "bad"
    assert looks.tone("done") == "ok" and looks.tone("pending") == "busy"


# -- the card's colour language -----------------------------------------------------------------------

OUTCOMES = {
    "done": (_run(status="done", progress=100, path="/tmp/x.mp4"), "success", "done"),
    "failed": (_run(status="failed", progress=0, error=grok_nb.JobFailedError(
        "service_unavailable", "The service is busy; try again later.", request_id="req-1")), "danger", "failed"),
    "moderated": (_run(status="moderated", progress=100, error=grok_nb.ModeratedError(request_id="req-1")),
                  "danger", "moderated"),
    "expired": (_run(status="expired", error=grok_nb.JobExpiredError(request_id="req-1")), "danger", "expired"),
    "download_failed": (_run(status="download_failed", progress=100, error=grok_nb.DownloadError(
        "the video's URL answered 404", request_id="req-1")), "warning", "not downloaded"),
    "done but not downloaded": (_run(status="done", progress=100, error=grok_nb.DownloadError(
        "the video's URL answered 404", request_id="req-1")), "warning", "not downloaded"),
}


@pytest.mark.parametrize("name", list(OUTCOMES))
def test_a_finished_card_has_a_full_bar_in_the_colour_of_its_state(name):
    run, style, state = OUTCOMES[name]
    view = present.card_view(run)
    assert (view.bar_value, view.bar_style, view.state) == (100.0, style, state)
    assert {"success": "ok", "danger": "bad", "warning": "warn"}[style] == view.tone
    assert looks.TONE_CSS[view.tone] in present.state_html(view)
    if run.error is not None:
        assert looks.TONE_CSS[view.tone] in present.error_html(run)


def test_each_error_is_said_once():
    run, _, _ = OUTCOMES["failed"]
    shown = present.error_html(run)
    assert shown.count("try again later") == 1 and shown.count("req-1") == 1 and "[request_id" not in shown
    assert "service_unavailable" in shown and "JobFailedError" not in shown
    # Rebuilt from its history row (the whole sentence, request id appended twice), still said once.
    again = run_of({**row_of(run), "rating": None})
    code, message = present.error_parts(again)
    assert (code, message) == ("service_unavailable", "The service is busy; try again later.")
    assert present.dedupe_clauses("busy; try again later.; try again later") == "busy; try again later."


def test_stopped_and_running_bars():
    assert present.card_view(_run(stopped=True, progress=30)).bar_style == "warning"
    assert present.card_view(_run(stopped=True, progress=30)).bar_value == 30  # not over: the job goes on
    assert present.card_view(_run(progress=None)).bar_style == "info"


# -- the browser's rows -------------------------------------------------------------------------------

def test_browser_rows_are_aligned_and_show_resolution_length_latency_cost_rating(tmp_path):
    df = _history(tmp_path)
    rows = df.to_dict("records")
    labels = [B.row_label(r) for r in rows]  # newest first: run2, run1, run0
    assert "720p" in labels[0] and "4.04 s" in labels[0] and "14.2 s" in labels[0] and "$0.10" in labels[0]
    assert "5/5" in labels[0] and "~$0.10" in labels[2]  # ~ marks an estimate
    assert "☆" not in "".join(labels) and labels[2].split()[4] == "–"  # unrated reads as a dash
    # The prompt first (cut after a whole word, with an ellipsis), then the figures people compare.
    assert labels[1].startswith("A paper boat drifting down a…")
    head = B.header_label("latency")
    assert head.index("cost") == labels[0].index("$0.10") == labels[2].index("~$0.10")  # aligned columns
    assert head.startswith("prompt") and "latency▼" in head and head.index("latency") == labels[2].index("12.2 s")
    assert "who" in B.header_label("newest", "made_by")
    for sort in B.SORTS:  # the sort arrow is never cut off a column's name
        assert any(ch in B.header_label(sort) for ch in "▼▲"), sort


def test_the_browser_watches_the_history_and_keeps_the_selection(tmp_path):
    store = RunStore(tmp_path / "h.sqlite")
    store.insert(run_id="a", backend="simulator", kind="generate", status="done", prompt="first")
    feed = B.HistoryFeed(Controller(store), live=True, poll_s=0.05)
    view = feed.view
    try:
        view.runs.value = ("a",)
        tile = view.tiles["a"]
        store.insert(run_id="b", backend="simulator", kind="edit", status="pending", prompt="second")
        deadline = dt.datetime.now() + dt.timedelta(seconds=10)
        while (len(view.runs.options) < 2 or len(view.kind.options) < 3) and dt.datetime.now() < deadline:
            import time
            time.sleep(0.05)
        with view._lock:  # the watcher may be half-way through a redraw (new options, then the kept choice)
            pass
        assert [v for _, v in view.runs.options] == ["b", "a"] and view.runs.value == ("a",)
        assert view.tiles["a"] is tile and view.kind.options == ("all", "edit", "generate")
        assert view.kind.value == "all"
    finally:
        view.close()
    feed._thread.join(2)
    assert not feed._thread.is_alive()  # closing the browser stops its watcher


def test_a_store_may_say_when_it_changed():
    class Store:
        version = 1

        def change_token(self):
            return self.version

    store = Store()
    assert store_signature(store) == store_signature(store)
    before = store_signature(store)
    store.version = 2
    assert store_signature(store) != before


# -- the timeline ---------------------------------------------------------------------------------------

def _ex(t: float, method: str, path: str, summary: str = "", status: int | None = 200, ms: float = 20.0,
        job_status: str | None = None) -> dict:
    return {"at": (NOW + dt.timedelta(seconds=t)).isoformat(), "method": method, "path": path, "status": status,
            "elapsed_ms": ms, "summary": summary, "job_status": job_status}


def test_timeline_from_exchanges():
    a = [_ex(0.02, "POST", "/v1/videos/generations", "request_id=a"),
         _ex(1.02, "GET", "/v1/videos/a", "status=pending progress=50", job_status="pending"),
         _ex(2.02, "GET", "/v1/videos/a", "status=done progress=100", job_status="done"),
         _ex(2.52, "GET", "/media/xai-video-a.mp4", "123 bytes", ms=400)]
    b = [_ex(0.52, "POST", "/v1/videos/generations", "request_id=b"),
         _ex(1.52, "GET", "/v1/videos/b", "Too many requests", status=429)]
    t = build_timeline([("fox", a, "done"), ("boat", b, "failed")], interval=0.5)
    assert [classify(e) for e in a] == ["submit", "poll", "done", "download"]
    assert t.lanes[0].requests[0].start == pytest.approx(0.0) and t.end == pytest.approx(2.52)
    assert [r.lane for r in t.api_requests] == [0, 1, 0, 1, 0]  # the download is not rate limited
    assert t.min_gap() == pytest.approx(0.5) and t.peak_rate(1.0) == 2.0
    assert t.lanes[1].requests[1].refused and "1 refused" in t.summary() and "limit 2.0/s" in t.summary()
    assert t.pace() == pytest.approx(2.0)


@pytest.mark.slow
def test_plots_are_transparent_and_read_times_as_times(tmp_path):
    from grok_nb.notebook import plots

    df = _history(tmp_path)
    df["submitted_at"] = df["created_at"]
    fig = plots.cost_over_time(df)
    ax = fig.axes[0]
    fig.canvas.draw()
    ticks = [t.get_text() for t in ax.get_xticklabels()]
    assert ticks and not any("." in t and len(t.split(".")[-1]) > 3 for t in ticks), ticks  # no 08:23.200000
    assert fig.patch.get_alpha() == 0.0 and ax.get_facecolor()[3] == 0.0
    png = fig._repr_png_()
    from PIL import Image

    image = Image.open(io.BytesIO(png))
    assert image.mode == "RGBA" and image.getpixel((2, 2))[3] == 0  # no white box in a dark notebook
    with pytest.raises(grok_nb.ValidationError, match="theme"):
        plots.latency_by_resolution_and_duration(df, theme="blue")
    t = build_timeline([("fox", [_ex(0.1, "POST", "/v1/videos/generations")], "done")], interval=1.0)
    assert plots.plot_timeline(t, theme="dark").axes[0].get_xlabel() == "seconds since the first request"


# -- one table of looks, read by every view ----------------------------------------------------------------

#: A run in each state a view can show (None: a grid cell not sent yet).
STATE_RUNS = {
    "queued": None,
    "submitting": _run(status="submitting", request_id=None),
    "pending": _run(status="pending", progress=40),
    "downloading": _run(status="done", progress=100),
    "done": _run(status="done", progress=100, path="/tmp/x.mp4"),
    "failed": OUTCOMES["failed"][0],
    "moderated": OUTCOMES["moderated"][0],
    "expired": OUTCOMES["expired"][0],
    "rejected": _run(status="rejected", request_id=None,
                     error=grok_nb.BadRequestError("Prompt cannot be empty.", status_code=400)),
    "download_failed": OUTCOMES["download_failed"][0],
    "uncertain": _run(status="uncertain", request_id=None),
    "cancelled": _run(status="cancelled", request_id=None,
                      error=grok_nb.JobCancelledError("cancelled with its batch", request_id=None)),
    "stopped": _run(stopped=True, progress=30),
}


def test_every_status_has_one_look_in_the_colour_language():
    from grok_nb.jobs.status import Status

    assert {s.value for s in Status} <= set(looks.LOOKS)
    assert set(looks.LOOKS) == set(STATE_RUNS) | {"not_sent"}
    for name, seen in looks.LOOKS.items():
        assert seen.word and seen.icon and seen.tone in looks.TONES, name
    for tone in looks.TONES:
        assert tone in looks.TONE_CSS and tone in looks.TONE_HEX and tone in looks.BAR_STYLE
    # Green: the video is here. Red: ended without one. Amber: it may still be had.
    assert [s for s, v in looks.LOOKS.items() if v.tone == "ok"] == ["done"]
    assert {s for s, v in looks.LOOKS.items() if v.tone == "bad"} == {"failed", "moderated", "expired", "rejected"}
    assert {s for s, v in looks.LOOKS.items() if v.tone == "warn"} == {"download_failed", "uncertain", "stopped"}
    assert looks.look("not started") == looks.LOOKS["queued"] and looks.look("processing") == looks.LOOKS["pending"]


@pytest.mark.parametrize("state", list(STATE_RUNS))
@pytest.mark.slow
def test_every_view_shows_a_state_as_the_table_says(state):
    from grok_nb.notebook import fallback, gridstate, plots

    run, seen = STATE_RUNS[state], looks.LOOKS[state]
    assert looks.state_of(run) == state
    tile = gridstate.tile(0, run, now=NOW)  # the grid, its static copy and the HTML report draw tiles
    assert (tile["kind"], tile["tone"], tile["icon"]) == (state, seen.tone, seen.icon)
    assert tile["state"].startswith(seen.word)
    static = fallback.tile_html(tile)
    assert looks.TONE_HEX[seen.tone] in static and seen.icon in static and seen.word in static
    if run is None:
        return
    view = present.card_view(run)  # the job card (and the browser's tiles)
    assert view.state.startswith(seen.word) and view.tone == seen.tone
    assert looks.TONE_CSS[seen.tone] in present.state_html(view)
    if seen.tone in ("ok", "bad", "warn") and state != "stopped":
        assert view.bar_style == looks.BAR_STYLE[seen.tone] and view.bar_value == 100.0
    cell = tables.status_cell(state if state not in ("downloading", "stopped") else run.status)
    table_look = looks.look(state if state not in ("downloading", "stopped") else run.status)
    assert table_look.word in cell and looks.TONE_CSS[table_look.tone] in cell  # the history table
    if seen.tone in ("ok", "bad", "warn"):
        assert plots._outcome_colour(state, "fg") == looks.TONE_HEX[seen.tone]  # the timeline plot


def test_no_view_keeps_its_own_words_or_colours_for_states():
    from pathlib import Path

    import grok_nb.notebook as nb

    folder = Path(nb.__file__).parent
    # timeline.py reads the server's own words ("status=expired"); every other module asks looks.py.
    named = ('"moderated"', '"expired"', '"download_failed"', '"uncertain"', '"rejected"', "'moderated'")
    colours = tuple(looks.TONE_HEX.values()) + ("#388e3c", "#d32f2f", "#f57c00")
    for path in [*folder.glob("*.py"), *(folder / "static").glob("*")]:
        if path.name in ("looks.py", "timeline.py"):
            continue
        text = path.read_text(encoding="utf-8")
        assert not [w for w in named if w in text], path.name
        if path.suffix == ".py":
            assert not [c for c in colours if c in text], path.name


# -- how the notebook layer is put together ------------------------------------------------------------------

HEAVY = ("av", "PIL", "matplotlib", "pandas")


def _notebook_modules():
    import ast
    from pathlib import Path

    import grok_nb.notebook as nb

    for path in sorted(Path(nb.__file__).parent.glob("*.py")):
        yield path, ast.parse(path.read_text(encoding="utf-8"))


@pytest.mark.slow
def test_the_notebook_layer_imports_at_the_top_except_heavy_optional_readers():
    import ast

    for path, tree in _notebook_modules():
        lines = path.read_text(encoding="utf-8").splitlines()
        for fn in [n for n in ast.walk(tree) if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))]:
            for node in [n for n in ast.walk(fn) if isinstance(n, (ast.Import, ast.ImportFrom))]:
                names = [a.name for a in node.names] if isinstance(node, ast.Import) else [node.module or ""]
                assert all(n.split(".")[0] in HEAVY for n in names) and not getattr(node, "level", 0), \
                    f"{path.name}:{node.lineno} imports {names} inside a function"
                comment = lines[node.lineno - 1] + " " + lines[node.lineno - 2]
                assert any(h in comment for h in ("PyAV", "Pillow", "matplotlib", "pandas")), \
                    f"{path.name}:{node.lineno}: say which heavy dependency is put off"


def test_the_notebook_layer_has_no_import_cycle():
    import ast

    graph = {}
    for path, tree in _notebook_modules():
        deps = set()
        for node in tree.body:  # module level only: that is when an import runs at import time
            if isinstance(node, ast.ImportFrom) and node.level == 1:
                deps |= {node.module} if node.module else {a.name for a in node.names}
        graph[path.stem] = {d for d in deps if d != "__init__"}
    done = set()

    def visit(name, trail):
        assert name not in trail, " -> ".join([*trail, name])
        if name in done:
            return
        for dep in graph.get(name, ()):
            visit(dep, [*trail, name])
        done.add(name)

    for name in graph:
        visit(name, [])
    assert "report" in graph["compare"] and "compare" not in graph["report"]


class _NoIO(AssertionError):
    pass


@contextlib.contextmanager
def no_io():
    """Inside: any file, socket or database access fails loudly (an AssertionError is not taken for an OSError)."""
    import builtins
    import os
    import socket
    import sqlite3

    def refuse(*_a, **_k):
        raise _NoIO("a view did I/O while drawing")

    with pytest.MonkeyPatch.context() as mp:
        for target, name in ((builtins, "open"), (os, "stat"), (os, "open"), (os, "scandir"), (sqlite3, "connect")):
            mp.setattr(target, name, refuse)
        mp.setattr(socket.socket, "connect", refuse)
        yield


@pytest.mark.slow
def test_views_draw_and_send_intents_without_any_io():
    tables.table_html(pd.DataFrame({"a": [1]}))  # pandas loads its Styler's templates once, on first use
    with no_io():
        _draw_every_view()


def _draw_every_view():
    done = _run(status="done", progress=100, path="/tmp/never-read.mp4", latency_s=3.0, cost_actual_usd=0.2)
    media = present.Media("http://127.0.0.1:1/videos/x.mp4", 848, 480, 4.0, "data:image/jpeg;base64,AA", "x.mp4")
    card = widgets.JobCard(max_rate=1e9)
    card.update(done, media)
    assert "grok-video" in card.player.value and "data:image/jpeg" in card.static_html()

    class Client:  # prices only; a grid's view never asks it for more
        store = None

        def estimate_cost(self, **_kw):
            return CostEstimate(0.1)

    class Handle:
        def __init__(self, run):
            self.run = run

    grid = Grid(Client(), {"prompt": ["fox", "boat"], "duration": 2})
    grid.cells[0].handles, grid.cells[1].handles = [Handle(done)], [Handle(_run(run_id="r2", progress=20))]
    grid.started_at = 1.0
    intents = []
    view = VideoGrid(grid, on_intent=lambda run_id, **fields: intents.append((run_id, fields)))
    view.set_media(0, media)
    view._on_msg(view.widget, {"type": "rate", "index": 0, "value": 4}, [])
    view._on_msg(view.widget, {"type": "winner", "index": 0}, [])
    assert intents == [("r", {"rating": 4}), ("r", {"winner": 1})] and view.widget.message == ""
    assert view.widget.tiles[0]["src"] == media.src and view.widget.tiles[0]["rating"] == 4
    assert "data:image/jpeg" in view.static_html()

    # Takes: the tile shows the chosen one; reviews reach the shown take's run.
    second = _run(run_id="r-b", status="done", progress=100, path="/tmp/never-read-b.mp4", latency_s=4.0)
    grid = Grid(Client(), {"prompt": ["fox", "boat"], "duration": 2}, takes=2)
    grid.cells[0].handles = [Handle(done), Handle(second)]
    grid.cells[1].handles = [Handle(_run(run_id="r2", progress=20)), Handle(_run(run_id="r3", progress=10))]
    grid.started_at = 1.0
    intents.clear()
    view = VideoGrid(grid, on_intent=lambda run_id, **fields: intents.append((run_id, fields)))
    other = present.Media("http://127.0.0.1:1/videos/y.mp4", 848, 480, 4.0, "data:image/jpeg;base64,BB", "y.mp4")
    view.set_media(0, media, 0)
    view.set_media(0, other, 1)
    view._on_msg(view.widget, {"type": "take", "index": 0, "take": 1}, [])
    view._on_msg(view.widget, {"type": "rate", "index": 0, "value": 3}, [])  # the shown take
    view._on_msg(view.widget, {"type": "rate", "index": 0, "take": 0, "value": 2}, [])  # a take named by the view
    assert intents == [("r-b", {"rating": 3}), ("r", {"rating": 2})] and view.widget.message == ""
    tile = view.tiles()[0]
    assert tile["take"] == 1 and tile["src"] == other.src and [t["src"] for t in tile["takes"]] == [media.src, other.src]
    assert view.widget.tiles[0] == gridstate.synced(tile) and "src" not in view.widget.tiles[0]
    assert [t["rating"] for t in tile["takes"]] == [2, 3] and tile["rating"] == 3
    assert "take 2 of 2" in view.static_html() and view.summary()["text"].startswith("2 of 4 done")
    with pytest.raises(ValueError, match="take=6 is not allowed"):
        view.choose_take(0, 5)

    df = pd.DataFrame([{**row_of(done), "created_at": NOW, "tags": [], "rating": None, "note": None}])
    asked, saved = [], []
    browser = B.HistoryBrowser(on_select=asked.append, on_save=saved.append)
    browser.show_history(df)
    browser.runs.value = ("r",)
    assert asked == [("r",)]
    browser.show_runs([(df.to_dict("records")[0], media)])
    browser.tiles["r"].rating.value = 5
    browser.save.click()
    assert saved == [[("r", 5, None)]] and "grok-video" in browser.tiles["r"].box.children[0].value
    assert "grok-browser-static" in browser.static_html()


# -- words ----------------------------------------------------------------------------------------------------

def test_a_card_counts_polls_in_good_english():
    assert "· 1 poll ·" in present.card_view(_run(polls=1)).stats + " ·"
    assert "3 polls" in present.card_view(_run(polls=3)).stats and "0 polls" in present.card_view(_run()).stats


def test_key_status_says_why_a_budget_is_not_shared():
    from grok_nb.notebook.keystatus import KeyStatus

    alone = {"backend": "process", "where": "this process", "rate": 28.5, "me": {"pid": 1, "host": "h"}}
    embedded = repr(KeyStatus(alone, embedded=True)).splitlines()[0]
    assert "own embedded simulator" in embedded and "nothing to share" in embedded and "0 other" not in embedded
    assert "28.5 requests/s" in embedded
    local = repr(KeyStatus(alone)).splitlines()[0]
    assert "GROK_NB_SHARED_URL=local" in local and "kept in process" in local
    shared = {"backend": "sqlite", "where": "/home/x/limits.sqlite", "rate": 1.0, "me": {"pid": 1},
              "peers": [{"pid": 2, "host": "h", "jobs": 3, "last_seen": 0}],
              "message": "waiting for the key's rate limit"}
    line = repr(KeyStatus(shared)).splitlines()[0]
    assert "shared through sqlite" in line and "1 other process on this key" in line and "Now: waiting" in line


def test_exchanges_show_one_line_each_with_times_to_the_millisecond():
    from grok_nb.notebook.tables import ExchangeFrame

    rows = [_ex(0.0123, "POST", "/v1/videos/generations", "request_id=a " + "x" * 200),
            _ex(1.5, "GET", "/v1/videos/a", "status=pending progress=50", ms=12.6),
            _ex(2.0, "GET", "/v1/videos/a", "Too many requests", status=429)]
    shown = ExchangeFrame(pd.DataFrame(rows))._repr_html_()
    assert "08:23:00.012" in shown and "13 ms" in shown and ">429<" in shown and ">HTTP<" in shown
    assert "white-space: nowrap" in shown or "white-space:nowrap" in shown
    assert "text-overflow:ellipsis" in shown and "rendering" not in shown  # an HTTP code is not a job's state
    assert shown.count("<tr") == 4
    long_id = "/v1/videos/e43e1689-4733-4578-8c0f-d7288208fb48"
    shown = ExchangeFrame(pd.DataFrame([_ex(1.5, "GET", long_id, "status=pending progress=50")]))._repr_html_()
    assert ">/v1/videos/e43e1689…</code>" in shown and f'title="{long_id}"' in shown  # narrow; whole on hover


# -- the cost plot ------------------------------------------------------------------------------------------------

def _spent(times, tags=("fox-grid",), cost=0.05):
    return pd.DataFrame({"status": "done", "submitted_at": pd.to_datetime(times, utc=True),
                         "cost_actual_usd": cost, "cost_estimated_usd": cost, "tags": [list(tags)] * len(times)})


def _ticks(ax):
    ax.figure.canvas.draw()
    return [t.get_text() for t in ax.get_xticklabels() if t.get_text()]


def test_a_grid_costs_by_job_not_as_a_vertical_line():
    from grok_nb.notebook import plots

    start = pd.Timestamp("2026-11-30 10:42:00", tz="UTC")
    fig = plots.cost_over_time(_spent([start + pd.Timedelta(seconds=2 * i) for i in range(12)]))
    ax = fig.axes[0]
    assert ax.get_xlabel() == "jobs in submit order" and "12 jobs, $0.60" in ax.get_title()
    assert all(t.lstrip("−-").isdigit() for t in _ticks(ax)) and len(ax.patches) == 12  # a bar per job
    assert fig.axes[1].get_ylabel() == "running total"


def test_repeated_runs_of_an_experiment_read_apart():
    from grok_nb.notebook import plots

    first = pd.Timestamp("2026-11-30 10:00:00", tz="UTC")
    times = [first + pd.Timedelta(seconds=3 * i) for i in range(6)]
    times += [first + pd.Timedelta(minutes=35, seconds=3 * i) for i in range(6)]
    ax = plots.cost_over_time(_spent(times)).axes[0]
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    assert labels == ["fox-grid · 10:00", "fox-grid · 10:35"]
    assert ax.get_xlabel() == "jobs in submit order"


@pytest.mark.slow
def test_cost_over_hours_has_a_readable_clock_axis():
    from grok_nb.notebook import plots

    first = pd.Timestamp("2026-11-30 08:00:00", tz="UTC")
    df = pd.concat([_spent([first + pd.Timedelta(minutes=40 * i)], tags=(f"exp{i}",)) for i in range(8)])
    ax = plots.cost_over_time(df).axes[0]
    ticks = _ticks(ax)
    assert ticks and all(len(t) == 5 and t[2] == ":" for t in ticks), ticks  # 09:00, not "10 20 30"
    assert ax.get_xlabel() == "submitted (UTC, 2026-11-30)"
