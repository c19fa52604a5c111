"""The video grid without a browser: tile state (pure), layout, summary, static fallbacks, review and control."""

from __future__ import annotations

import datetime as dt
import html as htmllib
import re
import time

import pytest

import grok_nb
from grok_nb.api.pricing import CostEstimate
from grok_nb.jobs.budget import BudgetSnapshot
from grok_nb.jobs.results import Run
from grok_nb.notebook import fallback, gridstate

NOW = dt.datetime(2026, 6, 1, 12, 0, 0, tzinfo=dt.timezone.utc)


def _run(**kw) -> Run:
    base = dict(run_id="r", kind="generate", model="grok-imagine-video", prompt="a fox",
                params={"duration": 4, "resolution": "480p"}, estimate=CostEstimate(0.2), request_id="req-1",
                status="pending", submitted_at=NOW - dt.timedelta(seconds=10))
    base.update(kw)
    return Run(**base)


@pytest.mark.parametrize("run, cancelled, kind, tone", [
    (None, False, "queued", "idle"),
    (None, True, "not_sent", "idle"),
    ("pending", False, "pending", "busy"),
    ("processing", False, "pending", "busy"),  # an unknown server status is still running
    ("done", False, "downloading", "busy"),  # done at the server, the MP4 not yet in the cache
    ("failed", False, "failed", "bad"),
    ("moderated", False, "moderated", "bad"),
    ("expired", False, "expired", "bad"),
    ("download_failed", False, "download_failed", "warn"),  # done at the server: the video may still be had
])
def test_tile_kinds_and_tones(run, cancelled, kind, tone):
    r = _run(status=run) if run else None
    t = gridstate.tile(0, r, cancelled=cancelled, now=NOW)
    assert (t["kind"], t["tone"]) == (kind, tone)


def test_done_with_a_file_is_done():
    t = gridstate.tile(0, _run(status="done", path="/tmp/x.mp4"), now=NOW)
    assert (t["kind"], t["tone"], t["state"]) == ("done", "ok", "done")


def test_done_with_a_download_error_is_download_failed_and_stopped_is_resumable():
    err = grok_nb.DownloadError("could not download the video", request_id="req-1")
    t = gridstate.tile(0, _run(status="done", error=err), now=NOW)
    assert t["kind"] == "download_failed" and t["tone"] == "warn" and t["src"] == "" and "download" in t["detail"]
    t = gridstate.tile(0, _run(stopped=True), now=NOW)
    assert t["kind"] == "stopped" and t["tone"] == "warn" and not t["can_stop"]


def test_a_failure_says_its_reason_once_without_the_request_id():
    err = grok_nb.JobFailedError("internal_error", "The video could not be generated.", request_id="req-9")
    t = gridstate.tile(3, _run(status="failed", request_id="req-9", error=err), now=NOW)
    assert t["state"] == "failed" and t["detail"] == "internal_error: The video could not be generated."
    assert "req-9" not in t["detail"] and "req-9" in t["title"]  # the id is on hover
    assert t["cost"] == ""  # an estimate says nothing about a failed job
    assert gridstate.failure_reason(_run(status="moderated")) == "withheld by moderation"


def test_tile_footer_values_and_player_only_when_done():
    t = gridstate.tile(1, _run(progress=25), position=(2, 3), label="480p · 4 s", now=NOW,
                       source=("http://x/v.mp4", 848, 480, 4.0), rating=4, note="nice", winner=True)
    assert (t["row"], t["col"], t["state"], t["progress"]) == (2, 3, "rendering 25%", 25)
    assert t["src"] == "" and t["can_stop"] and t["cost"] == "≈$0.20" and t["latency"] == "10.0 s"
    assert (t["rating"], t["note"], t["winner"]) == (4, "nice", True)
    assert t["title"] == "a fox\n480p · 4 s\nrequest id: req-1"
    t = gridstate.tile(1, _run(status="done", cost_actual_usd=0.2, latency_s=12.5, path="/tmp/x.mp4"), now=NOW,
                       source=("http://x/v.mp4", 848, 480, 4.0), poster="data:image/jpeg;base64,AA")
    assert (t["src"], t["width"], t["height"], t["cost"], t["latency"]) == \
        ("http://x/v.mp4", 848, 480, "$0.20", "12.5 s")


def test_layout_puts_axis_values_in_headers_only():
    labels = [{"prompt": p, "resolution": r, "duration": d} for p in ("fox", "boat", "clouds")
              for r in ("480p", "720p") for d in (2, 4)]
    lay = gridstate.layout(labels, ["prompt", "resolution", "duration"])
    assert lay.rows == ["fox", "boat", "clouds"]
    assert lay.cols == ["480p · 2 s", "480p · 4 s", "720p · 2 s", "720p · 4 s"]
    assert lay.positions[0] == (0, 0) and lay.positions[5] == (1, 1) and lay.positions[11] == (2, 3)
    assert lay.col_titles[1] == "resolution=480p, duration=4" and lay.row_titles[2] == "prompt=clouds"
    one = gridstate.layout([{"prompt": "a"}, {"prompt": "b"}], ["prompt"])
    assert one.rows == [""] and one.cols == ["a", "b"] and one.positions == [(0, 0), (0, 1)]
    assert gridstate.layout([{}], []).cols == ["result"]
    twice = gridstate.layout([{"prompt": "a"}, {"prompt": "a"}], ["prompt"])  # a value listed twice keeps both
    assert twice.positions == [(0, 0), (0, 1)]


def test_summary_counts_eta_and_money():
    runs = [_run(status="done", cost_actual_usd=0.2, cost_budget_usd=0.2, latency_s=20.0, path="/tmp/x.mp4"),
            _run(progress=50),
            _run(status="failed", error=grok_nb.JobFailedError("x", "y", request_id="r"), cost_budget_usd=0.0), None]
    tiles = [gridstate.tile(i, r, now=NOW) for i, r in enumerate(runs)]
    s = gridstate.summary(tiles, runs, estimate_usd=0.8, budget=BudgetSnapshot(5.0, 0.2, 0.4), now=NOW)
    assert s["text"].replace("\u00a0", " ") == ("1 of 4 done · 1 failed · ETA 10.0 s · $0.20 of est. $0.80 · "
                                                "budget $5.00: $0.20 spent + $0.40 reserved + $4.40 left")
    # The budget line keeps each figure whole ("$4.40 left"): a narrow view wraps between figures, never inside one.
    assert "$4.40\u00a0left" in s["parts"][-1] and s["parts"][-1].count(" ") == 3
    assert (s["done"], s["failed"], s["running"], s["finished"], s["can_stop"]) == (1, 1, 1, False, True)
    # Without progress, a running cell is expected to take as long as the finished ones did.
    assert gridstate.overall_eta_s([runs[0], _run(progress=None)], NOW) == pytest.approx(10.0)
    assert gridstate.overall_eta_s([_run(progress=None)], NOW) is None  # nothing to go on: say so
    s = gridstate.summary([gridstate.tile(0, None, cancelled=True)], [None], estimate_usd=0.8, started=False)
    assert "cancelled: nothing sent" in s["text"] and not s["can_stop"]
    s = gridstate.summary([gridstate.tile(0, None)], [None], estimate_usd=0.8, started=False)
    assert "waiting for confirmation" in s["text"]


def test_static_grid_html_keeps_rows_columns_posters_and_no_theme_variables():
    lay = gridstate.layout([{"prompt": p, "resolution": r} for p in ("fox", "boat") for r in ("480p", "720p")],
                           ["prompt", "resolution"])
    tiles = [gridstate.tile(i, _run(status="done", request_id=f"req-{i}", path="/tmp/x.mp4"),
                            position=lay.positions[i], label=lay.cols[lay.positions[i][1]],
                            poster="data:image/jpeg;base64,AA", source=("http://x/v.mp4", 848, 480, 4.0), now=NOW,
                            href="../cache/videos/x.mp4" if i < 3 else None)
             for i in range(4)]
    html = fallback.grid_html(lay.rows, lay.cols, "rows: prompt", tiles, "4 of 4 done")
    assert html.count("grok-static-tile") == 4 and html.count("<video") == 3 and html.count("<img") == 1
    assert html.count('<source src="../cache/videos/x.mp4" type="video/mp4"') == 3  # plays, else a poster
    assert html.count('poster="data:image/jpeg;base64,AA"') == 3
    assert "http://x/v.mp4" not in html  # a live-only address (the kernel's server, a result URL) dies with it
    assert "fox</th>" in html and "720p</th>" in html and "req-3" in html  # the request id rides in the title
    assert "var(" not in html and "tex2jax_ignore" in html  # JupyterLab drops var(); "$" must not become maths


def test_a_static_player_tries_the_copy_beside_the_notebook_then_the_file_then_shows_where_it_is():
    t = gridstate.tile(0, _run(status="done", path="/tmp/x.mp4"), poster="data:image/jpeg;base64,AA",
                       source=("http://x/v.mp4", 848, 480, 4.0), href="grok_nb_videos/x.mp4",
                       where="/home/ana/nb/grok_nb_videos/x.mp4", now=NOW)
    html = fallback.tile_html(t)
    sources = re.findall(r'<source src="([^"]+)"', html)
    assert sources == ["grok_nb_videos/x.mp4", "file:///home/ana/nb/grok_nb_videos/x.mp4"]
    # Only the last source, failing, replaces the player by its poster and a line saying where the file is.
    assert html.count("onerror=") == 1 and html.index("onerror=") > html.index("file:///")
    gone = htmllib.unescape(re.search(r'data-gone="([^"]*)"', html).group(1))
    assert "/home/ana/nb/grok_nb_videos/x.mp4" in gone and html.count("data:image/jpeg") == 1  # the poster once
    # No copy beside the notebook (its folder could not be written): the poster, and where the file is; no player.
    t = gridstate.tile(0, _run(status="done", path="/tmp/x.mp4"), poster="data:image/jpeg;base64,AA",
                       source=("http://x/v.mp4", 848, 480, 4.0), where="/cache/x.mp4", now=NOW)
    html = fallback.tile_html(t)
    assert "<video" not in html and "<img" in html and "the video file: /cache/x.mp4" in html


# -- the widget with real jobs on the simulator --------------------------------------------------------
@pytest.mark.slow
def test_rating_note_and_winner_reach_the_history(studio):
    grid = studio.compare(prompt=["cat", "dog"], resolution=["480p", "720p"], duration=1, display=False)
    grid.wait(timeout=120)
    view = grid.view
    send = lambda **msg: view._on_msg(view.widget, msg, [])  # what the browser sends  # noqa: E731
    send(type="rate", index=1, value=5)
    send(type="note", index=1, value="  sharpest  ")
    send(type="winner", index=0)
    send(type="winner", index=1)  # a row has one winner: picking another moves it
    send(type="winner", index=3)
    rows = {r["run_id"]: r for r in studio.client.store.rows()}
    got = [(rows[r.run_id]["rating"], rows[r.run_id]["note"], rows[r.run_id]["winner"]) for r in grid.runs]
    assert got == [(None, None, None), (5, "sharpest", 1), (None, None, None), (None, None, 1)]
    tiles = view.widget.tiles
    assert [t["winner"] for t in tiles] == [False, True, False, True] and tiles[1]["rating"] == 5
    send(type="winner", index=3)  # again: no winner in that row
    assert studio.client.store.get(grid.runs[3].run_id)["winner"] is None
    history = studio.history()
    assert history["winner"].sum() == 1 and history["rating"].max() == 5
    send(type="rate", index=0, value=9)  # refused, and said in the grid rather than lost
    assert "rating=9" in view.widget.message and studio.client.store.get(grid.runs[0].run_id)["rating"] is None


def test_stop_all_stops_waiting_and_the_jobs_stay_resumable(studio, sim):
    # Slow enough to stop mid-way; the server's own rate limit off (at this speed it allows 3 requests a second,
    # the client was told 300: its polls would take every turn and a submit could wait a long time for one).
    sim.config.update(speed=3.0, enforce_rate_limit=False)
    # [sim:slow]: ten times longer, so that neither job ends while the other's submit waits its turn (loaded machine)
    grid = studio.compare(prompt=["slow a [sim:slow]", "slow b [sim:slow]"], duration=1, display=False)
    view = grid.view
    deadline = time.monotonic() + 20
    while not all(r.request_id for r in grid.runs) and time.monotonic() < deadline:
        time.sleep(0.02)
    view._on_msg(view.widget, {"type": "stop_all"}, [])
    grid.wait(timeout=30)
    # Each job marks itself stopped as its waiting task ends; on a loaded machine give the marks a moment.
    deadline = time.monotonic() + 10
    while [t["kind"] for t in view.tiles()] != ["stopped", "stopped"] and time.monotonic() < deadline:
        time.sleep(0.05)
    kinds = [t["kind"] for t in view.tiles()]
    assert kinds == ["stopped", "stopped"], [(k, r.status, r.stopped, r.request_id) for k, r in zip(kinds, grid.runs, strict=True)]
    assert "2 stopped (resumable)" in view.summary()["text"]
    assert all(r.request_id for r in grid.runs)  # resumable by request id


@pytest.mark.slow
def test_every_view_reads_one_ledger_after_a_stop_and_a_resume(studio, sim):
    """A grid's bar, a card and the key status say the same spent, reserved and left, which add up to the limit."""
    studio.client.budget.set_limit(5.0)
    card = studio.generate("quick", duration=1, display=False)
    card.result(timeout=60)
    # Slow enough to stop mid-way; the server's own rate limit off (at this speed it allows 3 requests a second,
    # the client was told 300: its polls would take every turn and a submit could wait a long time for one).
    sim.config.update(speed=3.0, enforce_rate_limit=False)
    grid = studio.compare(prompt=["slow a [sim:slow]", "slow b [sim:slow]"], duration=1, display=False)
    deadline = time.monotonic() + 20
    while not all(r.request_id for r in grid.runs) and time.monotonic() < deadline:
        time.sleep(0.02)
    grid.view.stop()
    grid.wait(timeout=30)

    def lines() -> dict[str, str]:
        time.sleep(0.6)  # the views redraw at most 4 times a second
        found = {"grid": grid.view.widget.summary["parts"][-1], "card": card.card.stats.value,
                 "status": repr(studio.status())}
        return {k: re.search(r"budget.\$[^<]*left", v).group(0).replace("\u00a0", " ") for k, v in found.items()}

    def add_up(line: str) -> None:
        limit, spent, held, left = (float(x) for x in re.findall(r"\$([\d.]+)", line))
        assert abs(spent + held + left - limit) < 0.005 and limit == 5.0, line

    stopped = lines()
    assert len(set(stopped.values())) == 1, stopped  # one ledger, one line
    add_up(stopped["grid"])
    handles = studio.resume(display=False)  # the stopped jobs, waited for again (still rendering at the server)
    assert len(handles) == 2
    resumed = {**lines(), "resumed card": handles[0].card.stats.value}
    resumed["resumed card"] = re.search(r"budget.\$[^<]*left", resumed["resumed card"]).group(0).replace("\u00a0", " ")
    try:
        assert len(set(resumed.values())) == 1, resumed
        add_up(resumed["resumed card"])
    finally:
        for handle in handles:
            handle.stop_waiting()


@pytest.mark.slow
def test_confirm_bar_goes_away_and_cancel_really_cancels(studio, sim, monkeypatch):
    from grok_nb.notebook import studio as studio_module

    shown = []
    monkeypatch.setattr(studio_module, "_in_kernel", lambda: True)
    monkeypatch.setattr(studio_module, "_display", shown.append)
    grid = studio.compare(prompt=["a", "b", "c"], resolution=["480p", "720p"], duration=[6, 8])
    bar, view = shown
    bar.cancel.click()
    bar.go.click()  # too late: the answer was Cancel
    assert bar.widget.layout.display == "none" and grid.started_at is None and len(sim.simulator.requests) == 0
    assert "cancelled: nothing sent" in view.widget.summary["text"]
    assert all(t["kind"] == "not_sent" for t in view.widget.tiles)
    shown.clear()
    grid = studio.compare(prompt=["a", "b", "c"], resolution=["480p", "720p"], duration=[6, 8])
    bar, view = shown
    bar.go.click()
    assert bar.widget.layout.display == "none" and grid.started_at is not None
    grid.stop() if hasattr(grid, "stop") else view.stop()
    grid.wait(timeout=60)


@pytest.mark.slow
def test_updates_are_throttled_and_the_last_state_is_drawn(studio):
    grid = studio.compare(prompt=["a"], duration=1, display=False)
    grid.wait(timeout=60)
    from grok_nb.notebook.gridview import VideoGrid

    clock = [0.0]
    view = VideoGrid(grid, clock=lambda: clock[0])
    start = view.draws
    for i in range(200):  # 200 changes within 2 s of clock time
        clock[0] = i * 0.01
        view.update()
    view.update(force=True)
    assert view.draws - start <= 2.0 * 4 + 2


@pytest.mark.slow
def test_grid_displays_itself_with_a_static_shadow(studio, monkeypatch):
    import IPython.display

    shown = []
    monkeypatch.setattr(IPython.display, "display", lambda obj, **kw: shown.append((obj, kw)))
    grid = studio.compare(prompt=["a", "b"], duration=1, display=False)
    grid.wait(timeout=60)
    grid._ipython_display_()  # what Jupyter calls for `grid` as the last expression of a cell
    (view_data, view_kw), (shadow, shadow_kw) = shown
    assert "application/vnd.jupyter.widget-view+json" in view_data and "text/html" not in view_data
    # No text/plain beside the live view (nbconvert printed "<grok_nb grid of 2 jobs>" above the static copy).
    assert view_data["text/plain"] == "" and view_kw["display_id"] != shadow_kw["display_id"]
    html = shadow["text/html"]
    assert html.count("grok-static-tile") == 2 and html.count("data:image/jpeg;base64,") == 2
    import os
    import re

    players = re.findall(r"<video.*?</video>", html)
    sources = [re.findall(r'<source src="([^"]+)"', p)[0] for p in players]  # the first: where it plays from
    assert len(sources) == 2 and not [s for s in sources if "://" in s]  # relative paths, no live or result URL
    assert all(os.path.isfile(s) for s in sources)  # relative to the working directory: the notebook's folder
    assert ":has(> .jp-OutputArea-output.jupyter-widgets):not(:has(> .jp-OutputArea-output *))" in html  # no
    # "model not found" beside it
    key = grid.view._display.key
    assert f"grok-shadow-{key}" in html and f".grok-shadow-{key}" in grid.view.widget.hide_css
    bundle, _ = grid._repr_mimebundle_()
    assert "grok-static-grid" in bundle["text/html"] and "application/vnd.jupyter.widget-view+json" in bundle


def test_wait_with_a_timeout_bounds_the_whole_grid_and_looks_at_each_job_once_more(studio, sim):
    sim.config.update(speed=3.0, enforce_rate_limit=False)  # [sim:slow] jobs at this speed run for minutes
    grid = studio.compare(prompt=[f"slow {c} [sim:slow]" for c in "abc"], duration=1, display=False)
    try:
        deadline = time.monotonic() + 20
        while not all(r.request_id for r in grid.runs) and time.monotonic() < deadline:
            time.sleep(0.02)
        polls = [r.polls for r in grid.runs]
        started = time.monotonic()
        table = grid.wait(timeout=2)
        waited = time.monotonic() - started
        # The timeout is the whole grid's (not each job's, one after another), with no wait after it for a
        # grid that is not finished; each job was polled once more before the wait gave up on it.
        assert waited < 6, waited
        assert all(r.polls > p for r, p in zip(grid.runs, polls, strict=True)), (polls, [r.polls for r in grid.runs])
        assert list(table["status"]) == ["pending"] * 3
    finally:
        grid.stop()
