"""Widget logic without a browser: card values, throttling, grids, the browser, the Studio's guards."""

from __future__ import annotations

import datetime as dt
import time

import pytest

import grok_nb
from grok_nb.api.pricing import CostEstimate
from grok_nb.jobs.budget import Budget
from grok_nb.jobs.results import Run
from grok_nb.notebook import present
from grok_nb.notebook.throttle import Throttle
from grok_nb.notebook.widgets import JobCard


def _run(**kw) -> Run:
    base = dict(run_id="r", kind="generate", model="grok-imagine-video", prompt="a fox",
                params={"duration": 4, "resolution": "480p", "aspect_ratio": "16:9"},
                estimate=CostEstimate(0.2), request_id="req-1", status="pending",
                submitted_at=dt.datetime.now(dt.timezone.utc) - dt.timedelta(seconds=10))
    base.update(kw)
    return Run(**base)


def test_throttle_draws_at_most_every_interval_and_keeps_the_last_state():
    t = Throttle(0.25)
    assert t.offer(0.0) is None
    assert t.offer(0.1) == pytest.approx(0.15)  # schedule one trailing draw
    assert t.offer(0.2) == float("inf")  # already scheduled
    assert t.flushed(0.25) is True and t.flushed(0.3) is False
    assert t.offer(0.3, force=True) is None


def test_card_view_states():
    v = present.card_view(_run(progress=None))
    assert (v.bar_style, v.bar_value, v.finished) == ("info", 0.0, False) and "ETA —" in v.stats
    v = present.card_view(_run(progress=40))
    assert v.bar_style == "" and v.bar_value == 40 and "40%" in v.state and "ETA 15.0 s" in v.stats
    v = present.card_view(_run(status="done", progress=100, latency_s=12.5, cost_actual_usd=0.2, path="/tmp/x.mp4"))
    assert (v.bar_style, v.bar_value) == ("success", 100.0) and "cost $0.20" in v.stats and "est. $0.20" in v.stats
    err = grok_nb.JobFailedError("internal_error", "x", request_id="req-1")
    v = present.card_view(_run(status="failed", error=err))
    assert v.bar_style == "danger" and v.failed
    v = present.card_view(_run(stopped=True))
    assert v.bar_style == "warning" and "resumable" in v.state


def test_eta_and_formatting():
    assert present.eta_s(25, 10.0) == 30.0 and present.eta_s(None, 3) is None and present.eta_s(100, 3) is None
    assert present.seconds(125) == "2 min 05 s" and present.usd(0.7) == "$0.70" and present.usd(None) == "—"
    # Two decimals; more only below a cent, where two would say nothing.
    assert [present.usd(v) for v in (2.84, 1234.5, 0.005, 0.0042, 0)] == ["$2.84", "$1,234.50", "$0.005", "$0.0042",
                                                                          "$0.00"]


def test_card_widgets_follow_the_run_and_end_in_a_player():
    card = JobCard(max_rate=1e9)
    card.update(_run(progress=30))
    assert card.bar.value == 30 and card.bar.bar_style == "" and "a fox" in card.header.value
    media = present.Media("http://x/v.mp4", 848, 480, 4.0)
    card.update(_run(status="done", progress=100, latency_s=3.0, path="/tmp/x.mp4"), media)
    assert card.bar.value == 100 and card.bar.bar_style == "success"
    player = card.player.value
    assert 'class="grok-video"' in player and "autoplay" not in player and "loop" not in player
    assert "aspect-ratio:848/480" in player and "download" in player
    card.update(_run(status="done", progress=100, latency_s=3.1, path="/tmp/x.mp4"), media)
    assert card.player.value is player  # never re-set: that would restart playback
    assert "grok-card" in card.widget._dom_classes and "grok-progress" in card.bar._dom_classes


def test_a_narrow_card_wraps_its_figures_between_parts_never_inside_one():
    budget = Budget(20.0)
    budget.settle(budget.reserve([0.05, 0.5])[0], 0.05)
    card = JobCard(max_rate=1e9, budget=budget)
    card.update(_run(status="done", progress=100, latency_s=3.0, path="/tmp/x.mp4"))
    stats = card.stats.value
    # The ledger's three figures, which add up to the limit; each figure is whole (non-breaking spaces inside it).
    assert "budget\u00a0$20.00: $0.05\u00a0spent +\u00a0$0.50\u00a0reserved +\u00a0$19.45\u00a0left" in stats
    assert stats.count("white-space:nowrap") == stats.count(" · ")  # every part but the long budget line


def test_every_card_follows_the_one_ledger():
    budget = Budget(5.0)
    first, second = JobCard(max_rate=1e9, budget=budget), JobCard(max_rate=1e9, budget=budget)
    for card in (first, second):
        card.update(_run(status="done", progress=100, latency_s=3.0, path="/tmp/x.mp4"))
    held = budget.reserve([0.5, 0.3])  # another grid starts: both cards say so at once
    budget.settle(held[0], 0.4)
    for card in (first, second):
        text = card.stats.value.replace("\u00a0", " ")
        assert "budget $5.00: $0.40 spent + $0.30 reserved + $4.30 left" in text, text


def test_failed_card_shows_the_error_and_request_id():
    card = JobCard()
    err = grok_nb.JobFailedError("invalid_argument", "Prompt cannot be empty.", request_id="req-9")
    card.update(_run(status="failed", request_id="req-9", error=err))
    assert card.bar.bar_style == "danger" and "req-9" in card.player.value and "invalid_argument" in card.player.value


def test_two_hundred_status_changes_send_a_bounded_number_of_updates():
    clock = [0.0]
    card = JobCard(clock=lambda: clock[0])
    sent = []
    original = card.bar.send_state
    card.bar.send_state = lambda key=None: (sent.append(key), original(key))[1]
    for i in range(200):  # 200 changes within 2 s of clock time
        clock[0] = i * 0.01
        card.update(_run(progress=i // 2))
    card.update(_run(status="done", progress=100, path="/tmp/x.mp4"))  # the final state is always drawn
    assert card.draws <= 2.0 * 4 + 2 and len(sent) <= card.draws
    assert card.bar.value == 100 and card.bar.bar_style == "success"


@pytest.mark.slow
def test_studio_generate_returns_at_once_and_the_card_finishes(studio):
    handle = studio.generate("card", duration=1, display=False)
    assert isinstance(handle, grok_nb.JobHandle)
    run = handle.result(timeout=60)
    # The card's last draw is flushed before result() returns, within 5 s: a loaded machine may take longer.
    deadline = time.monotonic() + 20
    while (handle.card.bar.value, handle.card.bar.bar_style) != (100, "success") and time.monotonic() < deadline:
        # (the job's thread sets the value, then the style: read both)
        time.sleep(0.05)
    assert run.ok and handle.card.bar.value == 100 and handle.card.bar.bar_style == "success"
    assert "grok-video" in handle.card.player.value and "/videos/" in handle.card.player.value
    # The card lists the latest exchanges: under load the test's 0.05-s polling pushes the POST off the list.
    http = handle.card.http.value
    assert run.exchanges[0]["method"] == "POST" and "/v1/videos/" in http
    assert "POST" in http or "earlier exchanges (all are in the history)" in http


def test_grid_estimate_budget_and_confirmation_send_nothing(studio, sim):
    with pytest.raises(grok_nb.BudgetExceeded):
        studio.compare(prompt=["a", "b"], duration=[5, 10], budget_usd=0.5, display=False)
    with pytest.raises(grok_nb.ConfirmationRequired):
        studio.compare(prompt=["a", "b", "c"], resolution=["480p", "720p"], duration=[6, 8], display=False)
    with pytest.raises(grok_nb.ValidationError):
        studio.compare(prompt=["a", "b"], duration=[5, 99], display=False)
    assert len(sim.simulator.requests) == 0 and studio.history().empty


@pytest.mark.slow
def test_grid_runs_all_cells_with_labels_table_and_report(studio, tmp_path):
    grid = studio.compare(prompt=["cat", "dog"], resolution=["480p", "720p"], duration=1, takes=2,
                          confirm=True, display=False)
    assert len(grid.cells) == 4 and grid.columns == ["prompt", "resolution"] and grid.jobs == 8
    assert grid.plan_text == "4 cells × 2 takes = 8 jobs"
    table = grid.wait(timeout=120)
    assert len(table) == 4 and (table["status"] == "done").all() and (table["done"] == 2).all()
    assert grid.estimate_usd == pytest.approx(sum(r.estimate.usd for r in grid.runs)) and len(grid.runs) == 8
    assert grid.total_cost_usd == pytest.approx((table["cost_usd"] * table["takes"]).sum()) and grid.wall_time_s > 0
    takes = grid.takes_table()
    assert len(takes) == 8 and takes["take"].tolist() == [1, 2] * 4 and takes["request_id"].nunique() == 8
    view = grid.view.widget
    assert view.rows == ["cat", "dog"] and view.cols == ["480p", "720p"]
    assert "duration" not in " ".join(view.cols + view.rows + [view.axes])  # fixed values are not labels
    assert "4 cells × 2 takes = 8 jobs" in view.axes
    # Each take's state goes to the page once: in the tile's takes, not again at its top.
    assert all(set(t) == {"index", "row", "col", "label", "take", "takes"} and t["take"] == 0 for t in view.tiles)
    assert all(k["kind"] == "done" and k["src"] and k["poster"].startswith("data:image/jpeg") for t in view.tiles
               for k in t["takes"])
    assert all(k["metrics"]["m_motion"][0] != "—" for t in grid.view.tiles() for k in t["takes"])  # every take measured
    assert len({k["src"] for t in view.tiles for k in t["takes"]}) == 8  # every take its own video
    assert [t["src"] for t in grid.view.tiles()] == [t["takes"][0]["src"] for t in view.tiles]  # the chosen one
    assert view.summary["text"].startswith("8 of 8 done") and view.summary["finished"]
    shown = table._repr_html_()  # grid.wait() displays itself once, formatted: dollars, seconds, no None
    assert "$0.0" in shown and " s<" in shown and "None" not in shown and "nan" not in shown
    assert ">m_motion<" in shown and " ± " in shown and ">takes<" in shown and ">m_motion_sd<" not in shown
    per_take = takes._repr_html_()  # each take's request id, whole
    assert "request_id" in per_take and all(r.request_id in per_take for r in grid.runs)
    assert ">path<" not in shown + per_take and ">cost_basis<" not in shown + per_take
    report = grid.to_html(tmp_path / "r.html")
    text = report.read_text()
    assert text.count("data:video/mp4;base64,") == 8 and '"rows": ["cat", "dog"]' in text
    assert '"metric_names": [["m_motion", "motion"]' in text and "4 cells × 2 takes = 8 jobs" in text
    linked = grid.to_html(tmp_path / "linked.html", embed=False)
    assert len(list((tmp_path / "linked_files").glob("*.mp4"))) == 8 and "linked_files/" in linked.read_text()


def test_grid_layout_single_axis_is_one_row(tmp_path):
    from grok_nb.notebook.compare import Grid, plan, short

    assert short("An A/B test of a fox") == "An A/B test of a fox"  # a prompt, not a path
    (tmp_path / "cat.png").write_bytes(b"x")
    assert short(str(tmp_path / "cat.png")) == "cat.png" and short(tmp_path / "cat.png") == "cat.png"
    assert short("C:\\photos\\dog.JPG") == "dog.JPG"
    assert short("Animate the fox in fox.png") == "Animate the fox in fox.png"  # a prompt that names a file

    cells, varying = plan({"prompt": ["a", "b", "c"], "duration": 2})
    assert varying == ["prompt"] and [c["prompt"] for c in cells] == ["a", "b", "c"]
    assert all(c["duration"] == 2 for c in cells)
    with pytest.raises(grok_nb.ValidationError, match="takes"):
        Grid(None, {"prompt": "a"}, takes=0)


@pytest.mark.slow
def test_experiment_tags_history_filters_and_browser(studio, monkeypatch):
    import IPython.display

    with studio.experiment("exp-a"):
        studio.generate("inside alpha", duration=1, display=False).result()
    studio.generate("outside", duration=1, display=False).result()
    studio.experiment("exp-b")
    studio.generate("set beta", duration=1, display=False).result()
    assert studio.history(experiment="exp-a")["prompt"].tolist() == ["inside alpha"]
    assert studio.history(experiment="exp-b")["prompt"].tolist() == ["set beta"]
    assert studio.history(text="ALPHA")["prompt"].tolist() == ["inside alpha"]
    assert len(studio.history(status="done", kind="generate", since="2000-01-01")) == 3
    html = studio.history()._repr_html_()
    assert "$0.05" in html and "$0.050" not in html and " s" in html

    browser = studio.browse(live=False)
    assert (browser.status.value, browser.kind.value, browser.tag.value) == ("all", "all", "all")
    assert len(browser.runs.options) == 3
    browser.search.value = "beta"
    assert len(browser.runs.options) == 1
    browser.search.value = ""
    ids = [value for _, value in browser.runs.options][:2]
    browser.runs.value = tuple(ids)
    tiles = [browser.tiles[i] for i in ids]
    assert len(browser.players.children) == 2 and "grok-video" in tiles[0].box.children[0].value
    players = browser.players.children
    tiles[0].rating.value, tiles[0].note.value = 4, "sharp and steady"
    tiles[1].rating.value, tiles[1].note.value = 2, "too dark"
    browser.save.click()
    rows = [studio.client.store.get(i) for i in ids]
    assert (rows[0]["rating"], rows[0]["note"]) == (4, "sharp and steady")  # each run its own note
    assert (rows[1]["rating"], rows[1]["note"]) == (2, "too dark")
    assert browser.runs.value == tuple(ids) and browser.players.children == players  # selection and players kept
    assert "4/5" in dict((v, k) for k, v in browser.runs.options)[ids[0]]
    browser.sort.value = "rating"
    assert browser.runs.options[0][1] == ids[0] and browser.runs.value == tuple(ids)
    assert "rating▼" in browser.head.value
    # Shown as every live view is: the widget, then its static copy (what a saved notebook shows without a
    # kernel), which the widget's CSS hides while it lives and which hides the widget's "model not found" after.
    shown = []
    monkeypatch.setattr(IPython.display, "display", lambda obj, **kw: shown.append(obj))
    browser._ipython_display_()
    live, static = shown
    assert "application/vnd.jupyter.widget-view+json" in live and "sharp and steady" in static["text/html"]
    assert "★★★★☆" in static["text/html"] and "grok-browser-static" in static["text/html"]
    assert "jupyter-widgets):not(:has(" in static["text/html"]  # hides a dead widget beside it
    assert f".grok-shadow-{browser._key}" in browser.widget.children[0].value  # the live view hides the copy

    # A run made after the browser opened appears without touching a filter.
    studio.generate("arrives later", duration=1, display=False).result()
    assert browser.feed.poll_once() and any("arrives later" in label for label, _ in browser.runs.options)
    assert browser.runs.value == tuple(ids) and not browser.feed.poll_once()
    browser.close()


@pytest.mark.slow
def test_plots_are_figures(studio):
    studio.generate("plot me", duration=1, display=False).result()
    from matplotlib.figure import Figure

    assert isinstance(studio.plot_latency(), Figure) and isinstance(studio.plot_cost(), Figure)
    run = studio.client.get(studio.history()["request_id"].iloc[0])
    exchanges = studio.exchanges(run)
    assert len(exchanges) >= 3 and list(exchanges["method"][:2]) == ["POST", "GET"]


@pytest.mark.slow
def test_an_error_on_a_card_is_not_logged_again(studio, caplog):
    import logging

    caplog.set_level(logging.WARNING, logger="grok_nb")
    shown = studio.generate("A storm [sim:fail=internal_error]", duration=1, display=False)
    assert shown.result(timeout=60).status == "failed"
    assert "internal_error" in shown.card.player.value
    assert not any(shown.request_id in r.getMessage() for r in caplog.records)  # the card says it, once
    bare = studio.client.generate("A storm [sim:fail=internal_error]", duration=1, wait=False)  # no card
    assert bare.result(timeout=60).status == "failed"
    assert any(bare.request_id in r.getMessage() for r in caplog.records)


def test_a_cards_static_copy_is_drawn_again_when_its_video_arrives():
    # The engine changes a Run in place: a draw can see it done before the video (and its poster) is handed over.
    card = JobCard(max_rate=1e9)

    class Live:
        shadows: list[str] = []

        def refresh(self):
            self.shadows.append(card.static_html())

    card._live = live = Live()
    done = _run(status="done", progress=100, path="/tmp/x.mp4")
    card.update(done)
    assert len(live.shadows) == 1 and "<video" not in live.shadows[0]
    card.update(done, present.Media("http://127.0.0.1:1/v.mp4", 848, 480, 4.0, "data:image/jpeg;base64,AA", "v.mp4"))
    assert len(live.shadows) == 2 and '<source src="v.mp4" type="video/mp4"' in live.shadows[1]
    card.update(done)
    assert len(live.shadows) == 2  # nothing new: no redraw of the shadow
